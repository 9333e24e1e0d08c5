"""Loading a checked campaign into the database, refusing changes that would orphan answers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.schema import CampaignSpec, as_dict
from bot.models import (
    Answer,
    Campaign,
    Group,
    GroupDimension,
    Invite,
    Question,
    Response,
    utcnow,
)


class CampaignChangeRefused(Exception):
    """A change to a campaign with answers would make stored answers meaningless."""


def campaign_state(c: Campaign, now: datetime | None = None) -> str:
    """draft | scheduled | open | closed, from the status and the opens/closes schedule."""
    now = now or utcnow()
    if c.status == "closed" or (c.closes is not None and now >= c.closes):
        return "closed"
    if c.status == "open":
        return "open"
    if c.opens is not None:
        return "open" if now >= c.opens else "scheduled"
    return "draft"


def is_open(c: Campaign, now: datetime | None = None) -> bool:
    return campaign_state(c, now) == "open"


async def _answer_counts(session: AsyncSession, campaign_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(Answer.question_id, func.count())
        .join(Response, Response.id == Answer.response_id)
        .where(Response.campaign_id == campaign_id)
        .group_by(Answer.question_id)
    )
    return {qid: n for qid, n in rows.all()}


async def _used_options(session: AsyncSession, campaign_id: str, qid: str) -> set[str]:
    rows = await session.execute(
        select(Answer.value)
        .join(Response, Response.id == Answer.response_id)
        .where(Response.campaign_id == campaign_id, Answer.question_id == qid,
               Answer.status == "answered")
    )
    used: set[str] = set()
    for (value,) in rows.all():
        used |= option_ids_in(value)
    return used


def option_ids_in(value: Any) -> set[str]:
    """The option ids an stored answer value refers to."""
    if isinstance(value, dict):
        ids = set()
        if isinstance(value.get("option"), str):
            ids.add(value["option"])
        for key in ("options", "order"):
            if isinstance(value.get(key), list):
                ids |= {x for x in value[key] if isinstance(x, str)}
        if isinstance(value.get("coins"), dict):
            ids |= {k for k, v in value["coins"].items() if v}
        return ids
    return set()


async def load_campaign(session: AsyncSession, spec: CampaignSpec) -> tuple[Campaign, bool]:
    """Create or update a campaign from a checked spec. Returns (campaign, created).

    Raises CampaignChangeRefused, without writing anything, when a question or option that
    has answers would be removed or change type.
    """
    existing = await session.get(Campaign, spec.id)
    if existing is not None:
        await _refuse_breaking_changes(session, existing, spec)
    created = existing is None
    old_codes = {i.get("code") for i in ((existing.definition or {}).get("invites") or [])} if existing else set()
    c = existing or Campaign(id=spec.id, status="draft", version=0)
    c.mode = spec.mode
    c.service = spec.service
    c.languages = list(spec.languages)
    c.min_group_size = spec.min_group_size
    c.title = dict(spec.title)
    c.intro = dict(spec.intro) if spec.intro else None
    c.opens = spec.opens
    c.closes = spec.closes
    c.reminder_after_hours = spec.reminder_after_hours
    c.definition = as_dict(spec)
    c.version = (c.version or 0) + 1
    if created:
        session.add(c)
        await session.flush()
    await _sync_questions(session, spec)
    await _sync_dimensions(session, spec)
    await _sync_invites(session, spec, old_codes)
    await session.flush()
    return c, created


async def _refuse_breaking_changes(session: AsyncSession, c: Campaign, spec: CampaignSpec) -> None:
    counts = await _answer_counts(session, c.id)
    if not counts:
        return
    old = CampaignSpec.model_validate(c.definition)
    new_ids = {q.id: q for q in spec.questions}
    reasons: list[str] = []
    for q in old.questions:
        n = counts.get(q.id, 0)
        if not n:
            continue
        if q.id not in new_ids:
            reasons.append(f"question '{q.id}' has {_answers(n)} and cannot be removed")
            continue
        nq = new_ids[q.id]
        if nq.type != q.type:
            reasons.append(f"question '{q.id}' has {_answers(n)}: its type cannot change "
                           f"from {q.type} to {nq.type}")
            continue
        if q.type == "rating" and nq.rating_scale != q.rating_scale:
            reasons.append(f"question '{q.id}' has {_answers(n)}: its scale cannot change "
                           f"(from {q.rating_scale} to {nq.rating_scale} points)")
        removed = set(q.option_ids) - set(nq.option_ids)
        if removed:
            used = await _used_options(session, c.id, q.id) & removed
            for oid in sorted(used):
                reasons.append(f"option '{oid}' of question '{q.id}' has answers and cannot be removed")
    if reasons:
        raise CampaignChangeRefused(
            f"campaign '{c.id}' already has answers, so this change is refused: "
            + "; ".join(reasons)
            + ". You may add translations, options and new questions. To change more, start a new "
              "campaign with another id."
        )


def _answers(n: int) -> str:
    return f"{n} answer" if n == 1 else f"{n} answers"


async def _sync_questions(session: AsyncSession, spec: CampaignSpec) -> None:
    rows = {q.id: q for q in (await session.scalars(
        select(Question).where(Question.campaign_id == spec.id))).all()}
    for pos, q in enumerate(spec.questions):
        row = rows.pop(q.id, None) or Question(campaign_id=spec.id, id=q.id)
        row.position = pos
        row.type = q.type
        row.optional = q.optional
        row.texts = dict(q.text)
        row.options = [o.model_dump(mode="json") for o in q.options or []]
        row.spec = q.model_dump(mode="json", exclude={"id", "type", "text", "optional", "options"},
                                exclude_none=True)
        session.add(row)
    for row in rows.values():
        await session.delete(row)


async def _sync_dimensions(session: AsyncSession, spec: CampaignSpec) -> None:
    for row in (await session.scalars(select(Group).where(Group.campaign_id == spec.id))).all():
        await session.delete(row)
    for row in (await session.scalars(
            select(GroupDimension).where(GroupDimension.campaign_id == spec.id))).all():
        await session.delete(row)
    await session.flush()
    for pos, d in enumerate(spec.groups):
        session.add(GroupDimension(campaign_id=spec.id, id=d.id, position=pos,
                                   multiple=d.multiple, texts=dict(d.text)))
        shares = spec.baseline.get(d.id, {})
        for gpos, o in enumerate(d.options):
            session.add(Group(campaign_id=spec.id, dimension_id=d.id, id=o.id, position=gpos,
                              texts=dict(o.text), baseline_share=shares.get(o.id)))


RETIRED = "~"  # before the code of an invite taken out of the campaign file; no link can match it


def retired_code(code: str) -> str:
    return RETIRED + code


async def _sync_invites(session: AsyncSession, spec: CampaignSpec, old_codes: set[str] | None = None) -> None:
    """Create the file's invites and update their partner and groups.

    An invite that was in the previously loaded file and is not in this one is retired: its code
    gets a `~` in front, so its link no longer brings anyone in as that partner's (new people
    who use it start as with the campaign's plain link: no partner, groups asked). People who
    already came through it keep their partner and preset groups. Putting it back in the file
    brings the same invite, with its counts, back. Invites made with `coassess invite create`
    (never in the file) are left alone.
    """
    rows = (await session.scalars(select(Invite).where(Invite.campaign_id == spec.id))).all()
    existing = {i.code: i for i in rows}
    wanted = {inv.code for inv in spec.invites}
    for code in sorted((old_codes or set()) - wanted):
        row = existing.get(code)
        if row is not None and retired_code(code) not in existing:
            row.code = retired_code(code)
            session.add(row)
    await session.flush()
    for inv in spec.invites:
        row = existing.get(inv.code) or existing.get(retired_code(inv.code))
        if row is None:
            row = Invite(campaign_id=spec.id, code=inv.code)
        row.code = inv.code
        row.partner = inv.partner
        row.groups = {k: v if isinstance(v, list) else [v] for k, v in inv.groups.items()}
        session.add(row)


async def get_spec(session: AsyncSession, campaign_id: str) -> CampaignSpec | None:
    c = await session.get(Campaign, campaign_id)
    return CampaignSpec.model_validate(c.definition) if c else None


async def load_and_open(database_url: str, spec: CampaignSpec, voice_notes_from: Path | None = None) -> None:
    """Migrate the database, load a campaign and open it now (the demo, `coassess chat`, tests).

    With `voice_notes_from` (the campaign file's folder), its voice notes are made too.
    """
    from bot.db import Database

    db = Database(database_url)
    try:
        await db.upgrade()
        async with db.session() as s:
            c, _ = await load_campaign(s, spec)
            if voice_notes_from is not None:
                from bot.services.spoken import prepare

                await prepare(s, spec, voice_notes_from)
            c.status = "open"
            await s.commit()
    finally:
        await db.dispose()
