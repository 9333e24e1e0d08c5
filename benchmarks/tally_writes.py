"""What the participation tallies cost the bot's writes: one person's journey (start, consent,
every group question, finish; one commit each, as the bot commits per update), timed with the
tally triggers and without them, alternating, on a fresh database.

    python -m benchmarks.tally_writes                 # SQLite and PostgreSQL
    python -m benchmarks.tally_writes --journeys 300 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import random
import tempfile
import time
from typing import Any

from benchmarks.measure import machine, percentile

MIGRATION = importlib.import_module("bot.migrations.versions.0008_participation_tallies")


async def _journeys(db: Any, spec: Any, n: int, tag: str) -> list[float]:
    from bot.models import Participant
    from bot.services.responses import complete, record_consent, set_groups, start_response

    rng, out = random.Random(1), []
    for i in range(n):
        t = time.perf_counter()
        async with db.session() as s:
            person = Participant(pseudonym=f"{tag}{i}")
            s.add(person)
            await s.flush()
            r = await start_response(s, spec.id, person.id, "en")
            await s.commit()
            await record_consent(s, r)
            await s.commit()
            for dim in spec.groups:
                await set_groups(s, r.id, dim.id, [rng.choice(dim.options).id])
                await s.commit()
            await complete(s, r)
            await s.commit()
        out.append(time.perf_counter() - t)
    return out


async def measure(dialect: str, journeys: int, rounds: int) -> dict[str, Any]:
    import yaml

    from bot.campaigns.schema import CampaignSpec
    from bot.campaigns.store import load_campaign
    from bot.db import Database
    from tests.conftest import ROOT, create_pg_database, drop_pg_database

    spec = CampaignSpec.model_validate(yaml.safe_load((ROOT / "examples/clinic-access.yaml").read_text()))
    url = (await create_pg_database() if dialect == "postgresql"
           else f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/tally_writes.db")
    db = Database(url)
    await db.upgrade()
    with_, without = [], []
    try:
        async with db.session() as s:
            await load_campaign(s, spec)
            await s.commit()
        for r in range(rounds):
            with_ += await _journeys(db, spec, journeys, f"with-{r}-")
            async with db.engine.begin() as conn:
                for statement in MIGRATION.drop_triggers(dialect):
                    await conn.exec_driver_sql(statement)
            without += await _journeys(db, spec, journeys, f"without-{r}-")
            async with db.engine.begin() as conn:
                for statement in MIGRATION.create_triggers(dialect):
                    await conn.exec_driver_sql(statement)
    finally:
        await db.dispose()
        if dialect == "postgresql":
            await drop_pg_database(url)

    def ms(times: list[float]) -> dict[str, float]:
        times = sorted(times)
        return {"p50_ms": round(percentile(times, 50) * 1000, 2), "p95_ms": round(percentile(times, 95) * 1000, 2)}

    return {"journeys": journeys * rounds, "commits per journey": 3 + len(spec.groups),
            "with tallies": ms(with_), "without": ms(without)}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tally_writes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--journeys", type=int, default=200, help="per round and per side")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    out: dict[str, Any] = {"machine": machine()}
    for dialect in ("sqlite", "postgresql"):
        out[dialect] = asyncio.run(measure(dialect, args.journeys, args.rounds))
        print(dialect, json.dumps(out[dialect]))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
