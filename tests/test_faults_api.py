"""Faults on Telegram's side and in delivery: Bot API 500s and time-outs for a while, updates delivered
twice or out of order, and a campaign closed while people are mid-way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.models import Campaign
from bot.pseudonym import pseudonym
from bot.sandbox import Limits
from bot.simulation import Citizen, make_personas
from dialogs.context import forget_cached_campaigns
from tests.live import PSEUDONYM_KEY, assert_stored_equals_sent, live_bot, stored_by_person

pytestmark = pytest.mark.slow
FAST = Limits(global_per_second=None, per_chat_per_second=None)


def of(uid: int) -> str:
    return pseudonym(PSEUDONYM_KEY.encode(), uid)


def honest(spec, n: int, seed: int):  # type: ignore[no-untyped-def]
    people = make_personas(spec, n, seed=seed)
    for p in people:
        p.blocks, p.stop_after = False, None
    return people


async def test_bot_api_errors_and_timeouts_for_a_while(db_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people = honest(example_spec, 5, seed=61)
    async with live_bot(db_url, example_spec, tmp_path, limits=FAST, telegram_timeout=2.0) as live:
        client = live.sandbox.client
        tasks = [asyncio.create_task(Citizen(client, example_spec, p, think=(0.05, 0.2), timeout=60).run())
                 for p in people]
        await asyncio.sleep(1.5)
        await client.fail_next(12, method="editMessageText", status=500)     # Telegram has a bad minute
        await asyncio.sleep(2.0)
        await client.hang_next(3, method="editMessageText", seconds=3.0)     # ... and is slow to answer
        await client.fail_next(4, method="getUpdates", status=502, description="Bad Gateway")
        results = await asyncio.gather(*tasks)
        stats = await client.stats()
    assert stats["errors_by_code"].get("500", 0) >= 12
    stored = await stored_by_person(db_url, None)
    assert assert_stored_equals_sent(results, stored, of) > 30


async def test_updates_delivered_twice_or_out_of_order(db_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people = honest(example_spec, 2, seed=62)
    async with live_bot(db_url, example_spec, tmp_path, limits=FAST) as live:
        updates: list[dict] = []
        original = live.runtime.journal.append

        def keep(update):  # type: ignore[no-untyped-def]
            updates.append(update)
            return original(update)

        live.runtime.journal.append = keep  # type: ignore[method-assign]
        results = await asyncio.gather(*(Citizen(live.sandbox.client, example_spec, p, think=(0.0, 0.05)).run()
                                         for p in people))
        await live.runtime.pump.drained(timeout=10)
        assert len(updates) > 20
        # Telegram sends every one of those updates again, newest first.
        for update in reversed(updates):
            assert original(update) is False  # already in the journal: ignored
        processed_before = live.runtime.pump.processed
        # the journal was lost (e.g. another worker): the database still recognises each update
        for update in reversed(updates):
            await live.runtime.dp.feed_raw_update(live.runtime.bot, update)
        assert live.runtime.pump.processed == processed_before
    stored = await stored_by_person(db_url, None)
    assert_stored_equals_sent(results, stored, of)


async def test_campaign_closed_while_people_are_mid_way(db_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    early = honest(example_spec, 3, seed=63)
    async with live_bot(db_url, example_spec, tmp_path, limits=FAST) as live:
        client = live.sandbox.client
        tasks = [asyncio.create_task(Citizen(client, example_spec, p, think=(0.2, 0.4), timeout=60).run())
                 for p in early]
        await asyncio.sleep(3.0)  # they have consented and are answering
        async with live.runtime.db.session() as s:
            c = (await s.scalars(select(Campaign))).one()
            c.status = "closed"
            await s.commit()
        forget_cached_campaigns()
        await asyncio.sleep(5.5)  # past the campaign cache
        results = await asyncio.gather(*tasks)
        newcomer = 888_000_111
        await client.create_user(newcomer, language_code="en")
        sent = await client.send_command(newcomer, "start", example_spec.id)
        reply = await client.wait_for_bot(newcomer, after=sent, timeout=10)
    assert all(r.finished for r in results)  # those who had started could finish
    stored = await stored_by_person(db_url, None)
    assert_stored_equals_sent(results, stored, of)
    assert any("closed" in t for t in reply.texts)  # the newcomer is told kindly
    assert of(newcomer) not in stored
