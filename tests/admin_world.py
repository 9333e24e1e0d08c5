"""Participants seeded straight into the database, reachable as citizens of a sandbox."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select

from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import load_campaign
from bot.db import Database
from bot.models import Campaign, Delivery, Response, ResponseGroup, utcnow
from bot.runtime.app import make_bot
from bot.sandbox import Sandbox
from bot.services import participants
from bot.services.participants import Keys
from dialogs.context import forget_cached_campaigns

FIRST_USER = 500_001


@dataclass
class Someone:
    """One seeded participant and what they did in the campaign."""

    user_id: int
    language: str | None = "en"
    consented_hours_ago: float | None = None  # None: never started
    completed: bool = False
    wants_outcome: bool = False
    groups: dict[str, list[str]] = field(default_factory=dict)
    stopped: bool = False
    chat: bool = True  # opened a chat with the bot in the sandbox


async def load_open(db: Database, spec: CampaignSpec, **changes: object) -> Campaign:
    async with db.session() as s:
        c, _ = await load_campaign(s, spec)
        c.status = "open"
        for k, v in changes.items():
            setattr(c, k, v)
        await s.commit()
    forget_cached_campaigns()
    return c


async def seed(db: Database, keys: Keys, campaign_id: str, people: list[Someone],
               sandbox: Sandbox | None = None) -> None:
    now = utcnow()
    async with db.session() as s:
        for p in people:
            person = await participants.ensure(s, keys, p.user_id, p.user_id, p.language)
            person.stopped = p.stopped
            person.allow_invitations = not p.stopped
            if p.consented_hours_ago is not None or p.groups:
                at = now - timedelta(hours=p.consented_hours_ago or 0)
                r = Response(campaign_id=campaign_id, participant_id=person.id, language=p.language or "en",
                             started_at=at, consented_at=at if p.consented_hours_ago is not None else None,
                             consent_version="t" if p.consented_hours_ago is not None else None,
                             completed_at=now if p.completed else None, wants_outcome=p.wants_outcome)
                s.add(r)
                await s.flush()
                for dim, groups in p.groups.items():
                    s.add(ResponseGroup(response_id=r.id, dimension_id=dim, groups=groups))
        await s.commit()
    if sandbox is not None:
        for p in people:
            await sandbox.client.create_user(p.user_id, language_code=p.language)
            if p.chat:
                await sandbox.client.send_command(p.user_id, "start")


def people(n: int, languages: tuple[str, ...] = ("en", "ar", "so"), **kw: object) -> list[Someone]:
    return [Someone(FIRST_USER + i, languages[i % len(languages)], **kw) for i in range(n)]  # type: ignore[arg-type]


def sandbox_bot(sb: Sandbox) -> Bot:
    return make_bot(sb.token, sb.api_url)


def raw_bot(sb: Sandbox) -> Bot:
    return Bot(sb.token, session=AiohttpSession(api=TelegramAPIServer.from_base(sb.api_url)))


async def sends(sb: Sandbox) -> list[dict]:  # type: ignore[type-arg]
    return [c for c in await sb.client.calls(method="sendMessage")]


async def delivered(sb: Sandbox) -> Counter[int]:
    """Messages that reached each chat (successful sendMessage calls)."""
    return Counter(int(c["chat_id"]) for c in await sends(sb) if c["ok"])


async def delivery_states(db: Database) -> Counter[str]:
    async with db.session() as s:
        return Counter((await s.scalars(select(Delivery.state))).all())


def hours_ago(h: float) -> datetime:
    return utcnow() - timedelta(hours=h)
