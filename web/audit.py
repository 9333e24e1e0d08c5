"""The audit page: every administrative action, filtered by campaign, action and date."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.models import AuditEvent, Campaign
from web.access import Officer, page
from web.app import console_of, render, translator

LIMIT = 500


def _day(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


async def audit_page(request: Request, officer: Officer) -> Response:
    _ = translator(request)
    q = request.query_params
    campaign, act = q.get("campaign") or "", q.get("action") or ""
    since, until = _day(q.get("from")), _day(q.get("to"))
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(LIMIT)
    if campaign:
        stmt = stmt.where(AuditEvent.campaign_id == campaign)
    if act:
        stmt = stmt.where(AuditEvent.action == act)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    if until:
        stmt = stmt.where(AuditEvent.at < until + timedelta(days=1))
    async with console_of(request).db.session() as session:
        events = (await session.scalars(stmt)).all()
        campaigns = (await session.scalars(select(Campaign.id).order_by(Campaign.id))).all()
        actions = (await session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))).all()
    rows = [{"at": e.at, "actor": e.actor, "action": e.action, "campaign": e.campaign_id or "",
             "details": json.dumps(e.details or {}, ensure_ascii=False, sort_keys=True)[:300]} for e in events]
    return render(request, "audit.html", officer=officer, rows=rows, campaigns=campaigns, actions=actions,
                  campaign=campaign, action=act, since=q.get("from") or "", until=q.get("to") or "",
                  limit=LIMIT)


routes = [Route("/audit", page("audit")(audit_page))]
