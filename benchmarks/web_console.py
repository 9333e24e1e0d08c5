"""The console at scale: the campaign page and its live participation fragment, and the results
page beside the CLI report, on PostgreSQL with a million synthetic answers.

    python -m benchmarks.web_console                  # 1,000,000 answers (made once, kept)
    python -m benchmarks.web_console --answers 100000 --requests 20

Requests go through the whole ASGI app in-process (session cookie, permission check, templates),
one at a time, after one warm-up request; the figures are the latency of each. The campaign page
and its live fragment are measured twice: on unchanging data, and with one more person agreeing
(committed) before each request, as while a campaign is open. The database is
kept between runs (named by the number of answers) because making it takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks.measure import machine, percentile, summary

ADMIN = 900_001
CAMPAIGN = "clinic-access"
PG = os.environ.get("COASSESS_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def _database(answers: int, log: Any) -> str:
    """A PostgreSQL database with the example campaign and at least `answers` synthetic answers."""
    import asyncpg

    from benchmarks.analysis_scale import _count, _synthesize

    url = make_url(PG)
    name = f"coassess_bench_web_{answers}"
    conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                 password=url.password, database=url.database or "postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    target = url.set(database=name).render_as_string(hide_password=False)
    if exists:
        from bot.db import upgrade

        await upgrade(target)  # a database kept from an older version gets the new schema (tallies)
        got, _ = await _count(target)
        if got >= answers:
            return target
    await _synthesize(target, answers, 7, log)
    return target


async def _timed(client: Any, path: str, n: int, between: Any = None) -> list[float]:
    await client.get(path)  # warm-up: compiled statements, templates
    out = []
    for _ in range(n):
        if between is not None:
            await between()
        t = time.perf_counter()
        r = await client.get(path)
        out.append(time.perf_counter() - t)
        assert r.status_code == 200, (path, r.status_code)
    return out


class _Newcomers:
    """One more person agrees and answers the group questions before each request (committed, as
    the bot would): the figures change every time, so nothing the console remembers (the
    disclosure protection of the same table) can answer for it. Erased again afterwards."""

    def __init__(self, db: Any) -> None:
        import random

        self.db = db
        self.people: list[int] = []
        self.rng = random.Random(13)

    async def __call__(self) -> None:
        import secrets

        from bot.campaigns.schema import CampaignSpec
        from bot.models import Campaign, Participant
        from bot.services.responses import record_consent, set_groups, start_response

        async with self.db.session() as session:
            spec = CampaignSpec.model_validate((await session.get(Campaign, CAMPAIGN)).definition)
            person = Participant(pseudonym=f"bench-live-{secrets.token_hex(8)}")
            session.add(person)
            await session.flush()
            r = await start_response(session, CAMPAIGN, person.id, self.rng.choice(spec.languages))
            await record_consent(session, r)
            for dim in spec.groups:
                await set_groups(session, r.id, dim.id, [self.rng.choice(dim.options).id])
            await session.commit()
            self.people.append(person.id)

    async def erase(self) -> None:
        from bot.services.participants import forget

        async with self.db.session() as session:
            for pid in self.people:
                await forget(session, pid)
            await session.commit()
        self.people.clear()


async def profile(db: Any, n: int = 15) -> dict[str, float]:
    """What one campaign page costs, part by part (median ms): reading the tallies, the
    disclosure protection worked out afresh and remembered, per language and invite; and the full
    recount the tallies replace (what the page did per request before, at this size)."""
    import analysis.disclosure as disclosure
    from bot.campaigns.schema import CampaignSpec
    from bot.models import Campaign
    from bot.services.participation import participation, recount, tallied
    from web.campaign import by_invite, by_language

    async def median(f: Any, runs: int = n, fresh: bool = False) -> float:
        times = []
        for _ in range(runs):
            if fresh:
                disclosure._CACHE.clear()
            t = time.perf_counter()
            await f()
            times.append(time.perf_counter() - t)
        return round(percentile(sorted(times), 50) * 1000, 2)

    async with db.session() as s:
        c = await s.get(Campaign, CAMPAIGN)
        spec = CampaignSpec.model_validate(c.definition)
        counts = await tallied(s, CAMPAIGN)
        await participation(s, spec, "en", counts=counts)  # imports SciPy once

        async def languages() -> None:
            by_language(c, counts)

        return {
            "read the tallies (one query)": await median(lambda: tallied(s, CAMPAIGN)),
            "protect participation, figures changed": await median(
                lambda: participation(s, spec, "en", counts=counts), fresh=True),
            "protect participation, same figures": await median(
                lambda: participation(s, spec, "en", counts=counts)),
            "per language, protected": await median(languages, fresh=True),
            "per invite, protected (one query)": await median(lambda: by_invite(s, c, counts), fresh=True),
            "full recount of every response (coassess db tallies)": await median(
                lambda: recount(s, CAMPAIGN), runs=3),
        }


async def run(answers: int, requests: int) -> dict[str, Any]:
    from pydantic import SecretStr

    from analysis.report import report_model_async
    from benchmarks.analysis_scale import _count
    from bot.db import Database
    from bot.services.participants import Keys
    from bot.settings import Settings
    from tests.web_world import client, officer_signs_in
    from web.app import create_app

    url = await _database(answers, print)
    got, responses = await _count(url)
    keys = Keys(b"bench-pseudonym-key-0123456789abcdef", b"bench-contact-key-0123456789abcdef")
    settings = Settings(_env_file=None, database_url=url, admin_ids=frozenset({ADMIN}),
                        web_public_url="http://testserver", bot_username="BenchBot",
                        web_secret=SecretStr("bench-web-secret-0123456789abcdef"))
    db = Database(url)
    app = create_app(settings, db=db, keys=keys)
    out: dict[str, Any] = {"answers": got, "responses": responses, "requests": requests,
                           "machine": machine()}
    try:
        async with client(app) as c:
            await officer_signs_in(c, db, keys, settings, ADMIN)
            out["profile, median ms"] = await profile(db)
            for part, ms in out["profile, median ms"].items():
                print(f"  {part}: {ms} ms")
            for label, path in (("campaign page", f"/campaigns/{CAMPAIGN}"),
                                ("live participation", f"/campaigns/{CAMPAIGN}/participation"),
                                ("campaigns list", "/")):
                times = sorted(await _timed(c, path, requests))
                out[label] = {"p50_ms": round(percentile(times, 50) * 1000, 1),
                              "p95_ms": round(percentile(times, 95) * 1000, 1),
                              "max_ms": round(times[-1] * 1000, 1)}
                print(f"{label}: p50 {out[label]['p50_ms']} ms, p95 {out[label]['p95_ms']} ms")
            newcomers = _Newcomers(db)
            try:
                for label, path in (("campaign page, one more person each time", f"/campaigns/{CAMPAIGN}"),
                                    ("live participation, one more person each time",
                                     f"/campaigns/{CAMPAIGN}/participation")):
                    times = sorted(await _timed(c, path, requests, newcomers))
                    out[label] = {"p50_ms": round(percentile(times, 50) * 1000, 1),
                                  "p95_ms": round(percentile(times, 95) * 1000, 1),
                                  "max_ms": round(times[-1] * 1000, 1)}
                    print(f"{label}: p50 {out[label]['p50_ms']} ms, p95 {out[label]['p95_ms']} ms")
            finally:
                await newcomers.erase()
            results = await _timed(c, f"/campaigns/{CAMPAIGN}/results", 2)
        report = []
        for _ in range(2):
            t = time.perf_counter()
            await report_model_async(db, CAMPAIGN)
            report.append(time.perf_counter() - t)
        out["results page s"] = summary(results, 2)
        out["report model (CLI) s"] = summary(report, 2)
        print(f"results page {out['results page s']['median']} s; report model alone "
              f"{out['report model (CLI) s']['median']} s")
    finally:
        await db.dispose()
    return out


PAGES = ("campaign page", "live participation", "campaign page, one more person each time",
         "live participation, one more person each time", "campaigns list")


def markdown(result: dict[str, Any]) -> str:
    """web_console.md: the latencies as a table, with when, where and how loaded."""
    m = result["machine"]
    lines = ["# The console at scale", "",
             f"Measured {result['measured_at']} on {m['cores']} cores ({m['cpu']}), load average "
             f"{m['load_average_1m']} when it started, with `python -m benchmarks.web_console`: PostgreSQL, "
             f"{result['answers']:,} synthetic answers in {result['responses']:,} responses; "
             f"{result['requests']} requests per page through the whole app in-process, one at a time, "
             "after a warm-up. Target: p95 ≤ 200 ms for the campaign page and its live fragment.", "",
             "| Page | p50, ms | p95, ms | max, ms |", "| --- | --- | --- | --- |"]
    lines += [f"| {page} | {result[page]['p50_ms']} | {result[page]['p95_ms']} | {result[page]['max_ms']} |"
              for page in PAGES if page in result]
    lines += ["", "One campaign page, part by part (median ms):", "", "| Part | ms |", "| --- | --- |"]
    lines += [f"| {part} | {ms} |" for part, ms in result.get("profile, median ms", {}).items()]
    r, c = result["results page s"], result["report model (CLI) s"]
    lines += ["", f"Results page {r['median']} s (runs {r['runs']}); the report model alone, as "
              f"`coassess report` builds it, {c['median']} s (runs {c['runs']}).", ""]
    return "\n".join(lines)


def main() -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    p = argparse.ArgumentParser(prog="python -m benchmarks.web_console", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--answers", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=30)
    p.add_argument("--out", type=Path, default=None,
                   help="write web_console.json and web_console.md into this folder (benchmarks/)")
    args = p.parse_args()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    result = {"measured_at": started, **asyncio.run(run(args.answers, args.requests))}
    print(json.dumps(result, indent=2))
    if args.out is not None:
        (args.out / "web_console.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (args.out / "web_console.md").write_text(markdown(result), encoding="utf-8")


if __name__ == "__main__":
    main()
