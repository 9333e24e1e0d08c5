"""Reminders go once, after the campaign's delay, while it is open; the schedule opens and closes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.models import AuditEvent, Campaign, Response, utcnow
from bot.services.scheduler import apply_schedule, scheduler_loop, send_due_reminders
from bot.settings import Settings
from tests.admin_world import FIRST_USER, Someone, load_open, seed
from tests.participants import RecordingBot

SETTINGS = Settings(_env_file=None, bot_username="CouncilSurveyBot", broadcast_rate=100,
                    broadcast_per_chat_interval=0)
A, B, C, D, E, F = (FIRST_USER + i for i in range(6))


async def test_reminders_go_once_after_the_delay(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec, reminder_after_hours=48.0)
    await seed(db, keys, campaign.id, [
        Someone(A, "ar", consented_hours_ago=50),                  # due
        Someone(B, "en", consented_hours_ago=10),                  # not yet
        Someone(C, "en", consented_hours_ago=50, completed=True),  # finished
        Someone(D, "en", consented_hours_ago=50, stopped=True),    # said /stop
        Someone(E, "en", groups={"age": ["over64"]}),              # never agreed to take part
        Someone(F, "so"),                                          # never started
    ])
    bot = RecordingBot()
    first = await send_due_reminders(db, keys, bot, settings=SETTINGS)
    again = await send_due_reminders(db, keys, bot, settings=SETTINGS)
    assert first.summaries[campaign.id].sent == 1 and not again.summaries
    assert [int(m.chat_id) for m in bot.calls] == [A]
    reminder = bot.calls[0]
    assert "رأيك في مركز" in reminder.text  # in the participant's language
    assert reminder.reply_markup.inline_keyboard[0][0].url == "https://t.me/CouncilSurveyBot?start=clinic-access"

    later = utcnow() + timedelta(hours=40)  # B's delay has passed too
    await send_due_reminders(db, keys, bot, settings=SETTINGS, now=later)
    await send_due_reminders(db, keys, bot, settings=SETTINGS, now=later)
    assert sorted(int(m.chat_id) for m in bot.calls) == [A, B]
    async with db.session() as s:
        reminded = {r.participant_id: r.reminded_at for r in (await s.scalars(select(Response))).all()}
        actions = [e.action for e in (await s.scalars(select(AuditEvent).order_by(AuditEvent.id)))]
    assert sum(1 for at in reminded.values() if at is not None) == 2
    assert actions == ["remind", "remind_sent", "remind", "remind_sent"]


async def test_no_reminders_when_closed_or_not_configured(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec, reminder_after_hours=1.0, status="closed")
    await seed(db, keys, campaign.id, [Someone(A, consented_hours_ago=5)])
    bot = RecordingBot()
    assert not (await send_due_reminders(db, keys, bot, settings=SETTINGS)).summaries
    await load_open(db, example_spec, reminder_after_hours=None)
    assert not (await send_due_reminders(db, keys, bot, settings=SETTINGS)).summaries
    assert bot.calls == []


async def test_schedule_opens_and_closes_with_an_audit_event(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec, status="draft", opens=utcnow() - timedelta(minutes=1),
                               closes=utcnow() + timedelta(hours=1))
    assert await apply_schedule(db) == [(campaign.id, "open")]
    assert await apply_schedule(db) == []
    assert await apply_schedule(db, utcnow() + timedelta(hours=2)) == [(campaign.id, "closed")]
    async with db.session() as s:
        assert (await s.get(Campaign, campaign.id)).status == "closed"
        events = [(e.actor, e.action) for e in (await s.scalars(select(AuditEvent).order_by(AuditEvent.id)))]
    assert events == [("scheduler", "open"), ("scheduler", "close")]


async def test_scheduler_loop_ticks_until_stopped(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec, status="draft", opens=utcnow() - timedelta(minutes=1),
                               reminder_after_hours=1.0)
    await seed(db, keys, campaign.id, [Someone(A, consented_hours_ago=2)])
    bot = RecordingBot()
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler_loop(db, keys, bot, stop, interval=0.05, settings=SETTINGS))
    for _ in range(200):
        if bot.calls:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [int(m.chat_id) for m in bot.calls] == [A]
    async with db.session() as s:
        assert (await s.get(Campaign, campaign.id)).status == "open"
