"""End to end: the real bot (polling, journal, dialogs, storage) against the sandbox Bot API over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.pseudonym import pseudonym
from bot.sandbox import Limits
from bot.simulation import Citizen, make_personas
from tests.live import PSEUDONYM_KEY, assert_stored_equals_sent, live_bot, stored_by_person


async def test_citizens_complete_the_campaign_over_http(db_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    personas = make_personas(example_spec, 12, seed=3)
    # Telegram's per-chat limit, three times faster, so the test takes seconds; the bot's
    # retry middleware still meets real 429s on bursts.
    limits = Limits(global_per_second=None, per_chat_per_second=3.0, per_chat_burst=3)
    async with live_bot(db_url, example_spec, tmp_path, limits=limits) as live:
        results = await asyncio.gather(*(Citizen(live.sandbox.client, example_spec, p).run() for p in personas))
        commands = await live.sandbox.client.commands(personas[0].user_id)
        assert {c["command"] for c in commands} >= {"start", "language", "privacy", "forget", "stop", "help"}
        journal = live.runtime.journal.counts()
    stored = await stored_by_person(db_url, None)
    n = assert_stored_equals_sent(results, stored, lambda uid: pseudonym(PSEUDONYM_KEY.encode(), uid))
    assert n > 50
    assert sum(r.finished for r in results) >= 8
    assert journal.get("pending", 0) == 0 and journal.get("done", 0) > 50
    # the one who blocked the bot is marked stopped: no invitations, answers kept
    blocker = next(p for p in personas if p.blocks)
    from bot.db import Database
    from bot.models import Participant
    from sqlalchemy import select

    db = Database(db_url)
    async with db.session() as s:
        row = (await s.scalars(select(Participant).where(
            Participant.pseudonym == pseudonym(PSEUDONYM_KEY.encode(), blocker.user_id)))).one()
        assert row.stopped and not row.allow_invitations
    await db.dispose()
