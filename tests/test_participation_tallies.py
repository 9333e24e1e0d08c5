"""The live participation figures come from running tallies the database keeps, and after any
mix of journeys, group changes, completions, consent withdrawals and erasures they say exactly
what counting every response again says."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import delete, event, select, update

from bot.campaigns.schema import PREFER_NOT, CampaignSpec
from bot.campaigns.store import load_campaign
from bot.db import Database
from bot.models import Campaign, Invite, Participant, Response, ResponseGroup
from bot.services.participants import forget
from bot.services.participation import (
    check_tallies,
    participation,
    recount,
    repair_tallies,
    tallied,
)
from bot.services.responses import complete, record_consent, set_groups, start_response
from bot.services.invites import responses_per_invite
from web.campaign import by_invite, by_language
from web.campaigns import started_and_finished

LANGS = ["en", "ar", "uk", "so"]


def _random_groups(rng: random.Random, spec: CampaignSpec, dim_id: str) -> list[str]:
    dim = next(d for d in spec.groups if d.id == dim_id)
    options = [o.id for o in dim.options]
    if rng.random() < 0.15:
        return [PREFER_NOT]
    if dim.multiple:
        return rng.sample(options, rng.choice([1, 1, 2, 3]))
    # most people in a few groups, so that some counts are large enough to be shown
    return [rng.choice(options[:2] if rng.random() < 0.8 else options)]


async def _journeys(db: Database, specs: list[CampaignSpec], seed: int, steps: int) -> None:
    """Random things participants and officers do, in random transactions (some rolled back)."""
    rng = random.Random(seed)
    people: list[int] = []
    async with db.session() as session:
        invites = []
        for spec in specs:
            for code in ("lib", "mosque"):
                inv = Invite(campaign_id=spec.id, code=f"{code}{seed}", partner=f"{code} group", groups={})
                session.add(inv)
                invites.append(inv)
        await session.commit()
        invite_ids = {spec.id: [i.id for i in invites if i.campaign_id == spec.id] for spec in specs}
    step = 0
    while step < steps:
        before = list(people)
        async with db.session() as session:
            for _ in range(rng.randint(1, 8)):
                step += 1
                spec = rng.choice(specs)
                roll = rng.random()
                responses = (await session.scalars(select(Response).where(Response.campaign_id == spec.id))).all()
                if roll < 0.3 or not responses:
                    if people and rng.random() < 0.3:
                        pid = rng.choice(people)  # the same person in the other campaign, or again
                    else:
                        person = Participant(pseudonym=f"p{seed}-{step}")
                        session.add(person)
                        await session.flush()
                        pid = person.id
                        people.append(pid)
                    iid = rng.choice([None, *invite_ids[spec.id]])
                    invite = await session.get(Invite, iid) if iid else None
                    r = await start_response(session, spec.id, pid, rng.choice(LANGS), invite)
                    if rng.random() < 0.8:
                        await record_consent(session, r)
                    continue
                r = rng.choice(responses)
                if roll < 0.65 or roll >= 0.96:
                    dim = rng.choice(spec.groups).id
                    await set_groups(session, r.id, dim, _random_groups(rng, spec, dim),
                                     rng.choice(["asked", "invite", "reused"]))
                elif roll < 0.75:
                    await complete(session, r)
                elif roll < 0.8:
                    await record_consent(session, r)
                elif roll < 0.83:
                    r.consented_at = None  # consent withdrawn: no longer counted
                elif roll < 0.87:
                    r.language = rng.choice(LANGS)
                elif roll < 0.89:
                    await session.execute(delete(ResponseGroup).where(ResponseGroup.response_id == r.id))
                elif roll < 0.91:
                    r.record_key = rng.randrange(2 ** 31)
                elif roll < 0.94 and people:
                    await session.flush()
                    victim = rng.choice(people)
                    await forget(session, victim)  # erasure cascades through responses and groups
                    people.remove(victim)
                    session.expunge_all()
                else:
                    await session.execute(delete(Response).where(Response.id == r.id))
                    session.expunge_all()
            if rng.random() < 0.15:
                await session.rollback()
                people[:] = before
            else:
                await session.commit()
    # an invite deleted: its people now count as "no invite" (ON DELETE SET NULL)
    async with db.session() as session:
        await session.execute(delete(Invite).where(Invite.id == invite_ids[specs[0].id][0]))
        await session.commit()


async def _reach_counted(session: Any, campaign_id: str) -> list[Any]:
    """responses_per_invite as it was before the tallies: counted from every response."""
    from sqlalchemy import case, func

    from bot.services.invites import NO_INVITE, InviteReach

    def keys(*when: Any) -> list[Any]:
        return [func.sum(Response.record_key),
                *(func.sum(case((w.is_not(None), Response.record_key), else_=0)) for w in when)]

    invites = (await session.scalars(select(Invite).where(Invite.campaign_id == campaign_id)
                                     .order_by(Invite.created_at, Invite.id))).all()
    rows = await session.execute(
        select(Response.invite_id, func.count(), func.count(Response.consented_at),
               func.count(Response.completed_at), *keys(Response.consented_at, Response.completed_at))
        .where(Response.campaign_id == campaign_id).group_by(Response.invite_id))
    counts = {iid: (a, b, c, (int(ka or 0), int(kb or 0), int(kc or 0))) for iid, a, b, c, ka, kb, kc in rows.all()}
    out = [InviteReach(i.code, i.partner, dict(i.groups or {}), *counts.get(i.id, (0, 0, 0, (0, 0, 0))))
           for i in invites]
    if None in counts:
        out.append(InviteReach("", NO_INVITE, {}, *counts[None]))
    return out


def _other(spec: CampaignSpec) -> CampaignSpec:
    return spec.model_copy(update={"id": "other-campaign"})


async def test_tallies_equal_a_full_recount_after_random_journeys(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    specs = [example_spec, _other(example_spec)]
    async with db.session() as session:
        for spec in specs:
            await load_campaign(session, spec)
        await session.commit()
    for seed in (1, 2):
        await _journeys(db, specs, seed, 250)
        async with db.session() as session:
            for spec in specs:
                counted = await recount(session, spec.id)
                assert await tallied(session, spec.id) == counted
                assert await participation(session, spec, "en") == await participation(
                    session, spec, "en", counts=counted)
                assert await check_tallies(session, spec.id) == []
                assert await responses_per_invite(session, spec.id) == await _reach_counted(session, spec.id)
    async with db.session() as session:
        counted = await recount(session, example_spec.id)
    # the journeys made real figures: people agreed, chose groups, finished, and some were erased
    assert counted.agreed[0] > 20 and counted.finished[0] > 0
    assert sum(n for combos in counted.groups.values() for n, _ in combos.values()) > 20
    assert None in counted.invites and len(counted.languages) > 1


async def test_erasing_a_participant_takes_them_out_of_every_figure(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    async with db.session() as session:
        await load_campaign(session, example_spec)
        person = Participant(pseudonym="erased")
        session.add(person)
        await session.flush()
        r = await start_response(session, example_spec.id, person.id, "ar")
        await record_consent(session, r)
        for dim in example_spec.groups:
            await set_groups(session, r.id, dim.id, [dim.options[0].id])
        await complete(session, r)
        await session.commit()
        pid = person.id
    async with db.session() as session:
        counts = await tallied(session, example_spec.id)
        assert counts.agreed[0] == 1 and counts.finished[0] == 1 and counts.languages == {"ar": (1, r.record_key)}
        await forget(session, pid)
        await session.commit()
    async with db.session() as session:
        assert await tallied(session, example_spec.id) == await recount(session, example_spec.id)
        assert (await tallied(session, example_spec.id)).agreed == (0, 0)


async def test_the_campaign_page_reads_tallies_not_responses(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    """The console's live figures cost a few dozen rows however many people answered: no query
    of the campaign page's figures reads the response or group answer tables."""
    async with db.session() as session:
        await load_campaign(session, example_spec)
        await session.commit()
    await _journeys(db, [example_spec], 3, 60)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.session() as session:
            c = await session.get(Campaign, example_spec.id)
            assert c is not None
            counts = await tallied(session, c.id)
            await participation(session, example_spec, "en", counts=counts)
            by_language(c, counts)
            await by_invite(session, c, counts)
            # the invites page and the campaign list: people per link, from the same tallies
            await responses_per_invite(session, c.id)
            await started_and_finished(session)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    reads = [s for s in statements if " FROM response" in s or "JOIN response" in s]
    assert reads == []
    assert any("participation_tally" in s for s in statements)


async def test_repair_rebuilds_tallies_that_went_wrong(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    async with db.session() as session:
        await load_campaign(session, example_spec)
        await session.commit()
    await _journeys(db, [example_spec], 4, 60)
    async with db.session() as session:
        from bot.models import ParticipationTally

        await session.execute(update(ParticipationTally).values(n=ParticipationTally.n + 1))
        await session.commit()
    async with db.session() as session:
        problems = await check_tallies(session, example_spec.id)
        assert any(p.startswith("agreed: kept") for p in problems)
        await repair_tallies(session, example_spec.id)
        await session.commit()
    async with db.session() as session:
        assert await check_tallies(session, example_spec.id) == []
        assert await tallied(session, example_spec.id) == await recount(session, example_spec.id)
    # the triggers go on from the repaired tallies: erasures and changes after it are exact too
    await _journeys(db, [example_spec], 8, 120)
    async with db.session() as session:
        assert await check_tallies(session, example_spec.id) == []


async def _migrate(db: Database, revision: str, down: bool = False) -> None:
    from alembic import command

    from bot.db import _alembic_config

    def run(sync_conn: Any) -> None:
        cfg = _alembic_config(db.url)
        cfg.attributes["connection"] = sync_conn
        (command.downgrade if down else command.upgrade)(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def test_the_migration_counts_the_responses_already_there(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    """A database made before the tallies gets them from its responses when it is upgraded, and
    the triggers keep them from then on; downgrading takes table and triggers away."""
    async with db.session() as session:
        await load_campaign(session, example_spec)
        await session.commit()
    await _migrate(db, "0006", down=True)
    await _journeys(db, [example_spec], 5, 150)  # nothing tallies these: as before the upgrade
    await _migrate(db, "head")
    async with db.session() as session:
        counted = await recount(session, example_spec.id)
        assert counted.agreed[0] > 3
        assert await tallied(session, example_spec.id) == counted
    await _journeys(db, [example_spec], 6, 80)
    async with db.session() as session:
        assert await tallied(session, example_spec.id) == await recount(session, example_spec.id)


async def test_db_tallies_command_checks_and_repairs(db_url: str, db: Database, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from bot.models import ParticipationTally
    from tests.test_admin_invites import cli

    async with db.session() as session:
        await load_campaign(session, example_spec)
        await session.commit()
    await _journeys(db, [example_spec], 7, 60)
    fine = await cli(db_url, keys, "db", "tallies")
    assert fine.exit_code == 0, fine.output
    assert "agree with a full recount" in fine.output
    async with db.session() as session:
        await session.execute(update(ParticipationTally).where(ParticipationTally.kind == "agreed")
                              .values(n=ParticipationTally.n + 3))
        await session.commit()
    wrong = await cli(db_url, keys, "db", "tallies")
    said = " ".join(wrong.output.split())
    assert wrong.exit_code == 1, said
    assert f"{example_spec.id}: agreed: kept" in said and "coassess db tallies --repair" in said
    repaired = await cli(db_url, keys, "db", "tallies", "--repair")
    assert repaired.exit_code == 0, repaired.output
    async with db.session() as session:
        assert await check_tallies(session, example_spec.id) == []


async def test_people_agreeing_at_the_same_moment_are_all_counted(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    """Many participants' transactions at once (each its own connection, as the bot's workers):
    none waits forever on a shared row or fails, and every one is counted."""
    import asyncio

    async with db.session() as session:
        await load_campaign(session, example_spec)
        await session.commit()

    async def one(i: int) -> None:
        rng = random.Random(i)
        async with db.session() as session:
            person = Participant(pseudonym=f"same-moment-{i}")
            session.add(person)
            await session.flush()
            r = await start_response(session, example_spec.id, person.id, rng.choice(LANGS))
            await record_consent(session, r)
            for dim in example_spec.groups:
                await set_groups(session, r.id, dim.id, _random_groups(rng, example_spec, dim.id))
            await complete(session, r)
            await session.commit()

    await asyncio.gather(*(one(i) for i in range(24)))
    async with db.session() as session:
        counts = await tallied(session, example_spec.id)
        assert counts == await recount(session, example_spec.id)
        assert counts.agreed[0] == counts.finished[0] == 24


async def test_figures_in_the_wrong_shard_are_found(db: Database, example_spec) -> None:  # type: ignore[no-untyped-def]
    """Totals that add up but sit where no trigger looks would let a later erasure go uncounted:
    the check says so, and the repair puts each response back in its shard."""
    from bot.models import ParticipationTally

    async with db.session() as session:
        await load_campaign(session, example_spec)
        await session.commit()
    await _journeys(db, [example_spec], 9, 60)
    async with db.session() as session:
        t = ParticipationTally
        moved = (await session.execute(select(t).where(t.kind == "agreed", t.n > 0))).scalars().first()
        assert moved is not None
        n, key = moved.n, moved.key_sum
        moved.n, moved.key_sum = 0, 0
        session.add(ParticipationTally(campaign_id=moved.campaign_id, kind="agreed", dimension_id="", value="",
                                       shard=99, n=n, key_sum=key))
        await session.commit()
    async with db.session() as session:
        assert await check_tallies(session, example_spec.id) == [
            "the figures add up, but some are kept in other shards than the triggers use"]
        await repair_tallies(session, example_spec.id)
        await session.commit()
    async with db.session() as session:
        assert await check_tallies(session, example_spec.id) == []


def test_the_service_and_the_triggers_use_the_same_shards() -> None:
    import importlib

    from bot.services.participation import TALLY_SHARDS

    migration = importlib.import_module("bot.migrations.versions.0008_participation_tallies")
    assert migration.SHARDS == TALLY_SHARDS
