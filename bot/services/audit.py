"""The audit trail of administrative actions: who (a pseudonym or the CLI user), what, when."""

from __future__ import annotations

import getpass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import AuditEvent


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli:unknown"


async def record(session: AsyncSession, actor: str, action: str, campaign_id: str | None = None,
                 **details: Any) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, campaign_id=campaign_id, details=details)
    session.add(event)
    return event


async def events(session: AsyncSession, campaign_id: str | None = None, limit: int = 200) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if campaign_id:
        stmt = stmt.where(AuditEvent.campaign_id == campaign_id)
    return list((await session.scalars(stmt)).all())
