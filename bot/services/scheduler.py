"""The bot's clock: campaigns open and close on their dates, and due reminders go out.

Runs inside the bot process (`scheduler_loop`) and once from the command line
(`coassess remind`). Reminders take the sender lease like any broadcast; when another sender
holds it, this tick's reminders wait for the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiogram import Bot
from sqlalchemy import select

from bot.campaigns.store import campaign_state
from bot.db import Database
from bot.models import Campaign, utcnow
from bot.services import audit
from bot.services.broadcasts import plan_reminders, send_plan
from bot.services.delivery import DeliveryAborted, Summary
from bot.services.invites import resolve_bot_username
from bot.services.lease import SenderBusy, sender_lease
from bot.services.participants import Keys
from bot.settings import ConfigurationError, Settings, get_settings

log = logging.getLogger(__name__)

SCHEDULER_ACTOR = "scheduler"


def scheduled_status(c: Campaign, now: datetime) -> str | None:
    """The status the schedule asks for, when it differs from the stored one (pure)."""
    state = campaign_state(c, now)
    if state in ("open", "closed") and c.status != state:
        # An officer who closed a campaign early keeps it closed: campaign_state says closed.
        return state
    return None


async def apply_schedule(db: Database, now: datetime | None = None) -> list[tuple[str, str]]:
    """Store open/closed for campaigns whose `opens`/`closes` passed; returns (id, status) changed."""
    now = now or utcnow()
    changed: list[tuple[str, str]] = []
    async with db.session() as s:
        for c in (await s.scalars(select(Campaign))).all():
            status = scheduled_status(c, now)
            if status is None:
                continue
            c.status = status
            await audit.record(s, SCHEDULER_ACTOR, "open" if status == "open" else "close", c.id,
                               reason="opens" if status == "open" else "closes")
            changed.append((c.id, status))
        await s.commit()
    for cid, status in changed:
        log.info("campaign %s is now %s (its schedule)", cid, status)
    return changed


@dataclass
class ReminderRun:
    """Reminders sent per campaign by one run; `busy` when another sender held the lease."""

    summaries: dict[str, Summary] = field(default_factory=dict)
    busy: bool = False


async def send_due_reminders(db: Database, keys: Keys, bot: Bot, *, campaign_id: str | None = None,
                             settings: Settings | None = None, actor: str = SCHEDULER_ACTOR,
                             bot_username: str | None = None, now: datetime | None = None,
                             on_plan: Callable[[str, int], None] | None = None,
                             on_result: Callable[[str], None] | None = None) -> ReminderRun:
    """One reminder at most per participant who consented and has not finished, once due."""
    settings = settings or get_settings()
    run = ReminderRun()
    async with db.session() as s:
        stmt = select(Campaign).where(Campaign.reminder_after_hours.is_not(None))
        if campaign_id:
            stmt = stmt.where(Campaign.id == campaign_id)
        campaigns = [c for c in (await s.scalars(stmt)).all() if campaign_state(c, now or utcnow()) == "open"]
    if not campaigns:
        return run
    username = await resolve_bot_username(bot_username or settings.bot_username, bot)
    try:
        async with sender_lease(db, settings.redis_url):
            for campaign in campaigns:
                async with db.session() as s:
                    plan = await plan_reminders(s, campaign, actor, username, now)
                if on_plan:
                    on_plan(campaign.id, plan.to_send)
                if not plan.to_send:
                    continue
                run.summaries[campaign.id] = await send_plan(
                    db, keys, bot, plan, actor, campaign.id, rate=settings.broadcast_rate,
                    per_chat_interval=settings.broadcast_per_chat_interval, on_result=on_result)
    except SenderBusy:
        run.busy = True
    return run


@dataclass(frozen=True)
class Upcoming:
    """Reminders not due yet in one open campaign: how many, the first due, the last sent by the bot."""

    campaign_id: str
    people: int
    first_due: datetime | None
    min_group_size: int
    last_sent_by_scheduler: datetime | None = None
    key: int = 0  # the people's record keys summed: `people` is shown perturbed with it


async def upcoming_reminders(db: Database, campaign_id: str | None = None,
                             now: datetime | None = None) -> list[Upcoming]:
    """Per open campaign with reminders: who will be reminded later, and when the first falls due."""
    from datetime import timedelta

    from bot.models import AuditEvent
    from bot.services.broadcasts import load_candidates, reminder_due

    now = now or utcnow()
    out: list[Upcoming] = []
    async with db.session() as s:
        stmt = select(Campaign).where(Campaign.reminder_after_hours.is_not(None))
        if campaign_id:
            stmt = stmt.where(Campaign.id == campaign_id)
        for c in (await s.scalars(stmt)).all():
            if campaign_state(c, now) != "open":
                continue
            delay = timedelta(hours=c.reminder_after_hours or 0)
            waiting = [cand for cand in await load_candidates(s, c.id)
                       if cand.consented_at is not None and not reminder_due(cand, c, now)
                       and reminder_due(cand, c, max(now, cand.consented_at + delay))]
            later = [cand.consented_at + delay for cand in waiting if cand.consented_at is not None]
            last = await s.scalar(select(AuditEvent.at).where(
                AuditEvent.action == "remind_sent", AuditEvent.campaign_id == c.id,
                AuditEvent.actor == SCHEDULER_ACTOR).order_by(AuditEvent.at.desc()).limit(1))
            out.append(Upcoming(c.id, len(later), min(later) if later else None, c.min_group_size, last,
                                sum(cand.key for cand in waiting)))
    return out


async def scheduler_tick(db: Database, keys: Keys, bot: Bot, settings: Settings | None = None,
                         now: datetime | None = None) -> ReminderRun:
    await apply_schedule(db, now)
    return await send_due_reminders(db, keys, bot, settings=settings, now=now)


async def scheduler_loop(db: Database, keys: Keys, bot: Bot, stop_event: asyncio.Event,
                         interval: float = 60, settings: Settings | None = None) -> None:
    """Every `interval` seconds until `stop_event` is set: the schedule, then due reminders.

    A failing tick is logged and the next one tries again; the bot keeps answering meanwhile.
    """
    while not stop_event.is_set():
        try:
            run = await scheduler_tick(db, keys, bot, settings)
            if run.busy:
                log.info("reminders wait: another sender is running")
        except (ConfigurationError, DeliveryAborted) as exc:
            log.warning("reminders not sent: %s", exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the clock running; say what failed
            from bot.runtime.failures import describe, is_temporary

            if is_temporary(exc):  # an outage: the pump says so once; the next tick tries again
                log.info("scheduler tick waits: %s", describe(exc))
            else:
                log.error("scheduler tick failed: %s", exc.__class__.__name__, exc_info=exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
