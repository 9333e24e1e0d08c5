"""A live bot for end-to-end tests: the real runtime, polling the sandbox Bot API over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import load_and_open
from bot.db import Database
from bot.models import Answer, Response, ResponseGroup
from bot.runtime.runner import Runtime, poll
from bot.sandbox import Limits, Sandbox
from bot.settings import Settings
from bot.simulation import CitizenResult
from dialogs.context import forget_cached_campaigns

PSEUDONYM_KEY = "e2e-pseudonym-key-0123456789abcdefghij"
CONTACT_KEY = "e2e-contact-key-0123456789abcdefghijkl"


@dataclass
class Live:
    sandbox: Sandbox
    runtime: Runtime
    settings: Settings
    stop: asyncio.Event
    task: asyncio.Task[None]


def make_settings(db_url: str, sandbox: Sandbox, journal: Path, **extra: Any) -> Settings:
    return Settings(_env_file=None, database_url=db_url, bot_token=SecretStr(sandbox.token),
                    telegram_api_url=sandbox.api_url, pseudonym_key=SecretStr(PSEUDONYM_KEY),
                    contact_key=SecretStr(CONTACT_KEY), journal_path=str(journal), **extra)


async def prepare_campaign(db_url: str, spec: CampaignSpec) -> None:
    await load_and_open(db_url, spec)
    forget_cached_campaigns()


@asynccontextmanager
async def live_bot(db_url: str, spec: CampaignSpec, tmp: Path, limits: Limits | None = None,
                   sandbox: Sandbox | None = None, **extra: Any) -> AsyncIterator[Live]:
    await prepare_campaign(db_url, spec)
    own = sandbox is None
    sb = sandbox or Sandbox(limits=limits or Limits(global_per_second=None))
    if own:
        await sb.start()
    settings = make_settings(db_url, sb, tmp / "journal.db", **extra)
    runtime = await Runtime.create(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(poll(runtime, stop, timeout=1, signals=False))
    try:
        yield Live(sb, runtime, settings, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await runtime.close()
        if own:
            await sb.stop()


async def stored_by_person(db_url: str, keys: Any) -> dict[str, dict[str, Any]]:
    """participant pseudonym -> {question id: value or None (skipped)}."""
    db = Database(db_url)
    out: dict[str, dict[str, Any]] = {}
    async with db.session() as s:
        from bot.models import Participant

        rows = (await s.execute(
            select(Participant.pseudonym, Answer.question_id, Answer.status, Answer.value)
            .join(Response, Response.participant_id == Participant.id)
            .join(Answer, Answer.response_id == Response.id))).all()
    await db.dispose()
    for pseudo, qid, status, value in rows:
        out.setdefault(pseudo, {})[qid] = value if status == "answered" else None
    return out


def comparable(value: Any) -> Any:
    """Voice notes get their file id from Telegram: compare the duration only."""
    if isinstance(value, dict) and "voice" in value:
        return {"voice": {"duration": value["voice"]["duration"]}}
    return value


def assert_stored_equals_sent(results: list[CitizenResult], stored: dict[str, dict[str, Any]],
                              pseudonym_of: Any) -> int:
    """Every answer a citizen gave is stored exactly once, with exactly the value given."""
    checked = 0
    for r in results:
        assert r.error is None, (r.persona.user_id, r.error)
        got = stored.get(pseudonym_of(r.persona.user_id), {})
        want = {q: comparable(v) for q, v in r.expected.items()}
        have = {q: comparable(v) for q, v in got.items() if q in want or v is not None}
        assert have == want, (r.persona.user_id, want, have)
        checked += len(want)
    return checked


async def groups_by_person(db_url: str) -> dict[int, dict[str, list[str]]]:
    db = Database(db_url)
    async with db.session() as s:
        rows = (await s.execute(select(Response.participant_id, ResponseGroup.dimension_id,
                                       ResponseGroup.groups).join(ResponseGroup))).all()
    await db.dispose()
    out: dict[int, dict[str, list[str]]] = {}
    for pid, dim, groups in rows:
        out.setdefault(pid, {})[dim] = groups
    return out
