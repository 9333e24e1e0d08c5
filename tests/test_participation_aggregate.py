"""The live participation table is counted in the database, and says exactly what counting person by person says."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from bot.campaigns.schema import PREFER_NOT
from bot.campaigns.store import load_campaign
from bot.db import Database
from bot.models import Participant, Response, ResponseGroup, new_record_key
from bot.services.participation import participation, protect_participation


async def test_participation_from_aggregates_matches_person_by_person(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    dims = {d.id: d for d in example_spec.groups}
    chosen: dict[str, dict[int, list[str]]] = {d: {} for d in dims}
    keys: dict[int, int] = {}
    finished_key = finished = 0
    async with db.session() as session:
        await load_campaign(session, example_spec)
        now = datetime.now(UTC)
        for i in range(140):
            person = Participant(pseudonym=f"p{i:04d}")
            session.add(person)
            await session.flush()
            agreed = i % 9 != 0  # some never agreed: they are not counted at all
            done = agreed and i % 3 != 0
            r = Response(campaign_id=example_spec.id, participant_id=person.id, language="en",
                         consented_at=now if agreed else None, completed_at=now if done else None,
                         record_key=new_record_key())
            session.add(r)
            await session.flush()
            for did, dim in dims.items():
                options = [o.id for o in dim.options]
                roll = rng.random()
                if roll < 0.1:
                    continue  # never asked
                if roll < 0.2:
                    groups = [PREFER_NOT]
                elif dim.multiple:
                    groups = rng.sample(options, rng.choice([1, 1, 2]))
                else:
                    groups = [rng.choice(options[:2] if rng.random() < 0.8 else options)]
                session.add(ResponseGroup(response_id=r.id, dimension_id=did, groups=groups, source="asked"))
                if agreed:
                    chosen[did][r.id] = groups
            if agreed:
                keys[r.id] = r.record_key
                if done:
                    finished += 1
                    finished_key += r.record_key
        await session.commit()
    async with db.session() as session:
        live = await participation(session, example_spec, "en")
    expected = protect_participation(example_spec, len(keys), chosen, "en", finished, keys=keys,
                                     finished_key=finished_key)
    assert live == expected
    # the figures are real ones: large groups shown, not everything hidden
    assert any(c.shown.isdigit() and int(c.shown) >= 10 for _, cells in live.dimensions for c in cells)
