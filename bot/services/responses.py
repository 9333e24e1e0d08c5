"""Responses and answers: stored as they are given, idempotent under replays and double taps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.flow import validate_answer
from bot.campaigns.schema import CampaignSpec, Question
from bot.models import Answer, Invite, Response, ResponseGroup, utcnow
from bot.scrub import scrub

CONSENT_VERSION = "2026-11-1"


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def find_response(session: AsyncSession, campaign_id: str, participant_id: int) -> Response | None:
    return await session.scalar(select(Response).where(
        Response.campaign_id == campaign_id, Response.participant_id == participant_id))


async def start_response(session: AsyncSession, campaign_id: str, participant_id: int,
                         language: str, invite: Invite | None = None) -> Response:
    """The participant's response to the campaign, created once (a replay finds the same row)."""
    ins = _insert(session)
    await session.execute(
        ins(Response).values(campaign_id=campaign_id, participant_id=participant_id,
                             language=language, invite_id=invite.id if invite else None,
                             started_at=utcnow(), wants_outcome=False)
        .on_conflict_do_nothing(index_elements=["campaign_id", "participant_id"])
    )
    r = await find_response(session, campaign_id, participant_id)
    assert r is not None
    if r.language != language:
        r.language = language
    if invite is not None and r.invite_id is None:
        r.invite_id = invite.id
    return r


async def record_consent(session: AsyncSession, response: Response, version: str = CONSENT_VERSION) -> None:
    response.consent_version = version
    response.consented_at = utcnow()


async def set_groups(session: AsyncSession, response_id: int, dimension_id: str,
                     groups: list[str], source: str = "asked") -> None:
    ins = _insert(session)
    stmt = ins(ResponseGroup).values(response_id=response_id, dimension_id=dimension_id,
                                     groups=groups, source=source, answered_at=utcnow())
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["response_id", "dimension_id"],
        set_={"groups": stmt.excluded.groups, "source": stmt.excluded.source,
              "answered_at": stmt.excluded.answered_at}))


async def groups_of(session: AsyncSession, response_id: int) -> dict[str, list[str]]:
    rows = await session.scalars(select(ResponseGroup).where(ResponseGroup.response_id == response_id))
    return {r.dimension_id: list(r.groups) for r in rows}


async def earlier_groups(session: AsyncSession, participant_id: int, exclude_response: int | None
                         ) -> dict[str, list[str]]:
    """Group answers this participant gave in other campaigns, newest first wins."""
    rows = await session.execute(
        select(ResponseGroup.dimension_id, ResponseGroup.groups)
        .join(Response, Response.id == ResponseGroup.response_id)
        .where(Response.participant_id == participant_id, Response.id != (exclude_response or -1))
        .order_by(ResponseGroup.answered_at.desc())
    )
    out: dict[str, list[str]] = {}
    for dim, groups in rows.all():
        out.setdefault(dim, list(groups))
    return out


async def answers_of(session: AsyncSession, response_id: int) -> dict[str, Any]:
    """Question id -> stored value (None when skipped)."""
    rows = await session.execute(select(Answer.question_id, Answer.value, Answer.status)
                                 .where(Answer.response_id == response_id))
    return {qid: (value if status == "answered" else None) for qid, value, status in rows.all()}


async def record_answer(session: AsyncSession, response_id: int, question: Question,
                        value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Store (or replace) the answer to one question; None records a skip.

    Free text is scrubbed of contact details first. The same value again is a no-op, so a
    double tap or a replayed update never makes two answers.
    """
    if value is None:
        if not question.optional and question.type != "info":
            raise ValueError(f"question '{question.id}' cannot be skipped")
        status, stored = "skipped", None
    else:
        stored = validate_answer(question, value)
        if "text" in stored:
            stored = {**stored, "text": scrub(stored["text"])}
        status = "answered"
    existing = await session.scalar(select(Answer).where(
        Answer.response_id == response_id, Answer.question_id == question.id))
    if existing is None:
        ins = _insert(session)
        result = await session.execute(
            ins(Answer).values(response_id=response_id, question_id=question.id, status=status,
                               value=stored, answered_at=utcnow(), changes=0)
            .on_conflict_do_nothing(index_elements=["response_id", "question_id"]))
        if result.rowcount:
            return stored
        existing = await session.scalar(select(Answer).where(
            Answer.response_id == response_id, Answer.question_id == question.id))
        assert existing is not None
    if existing.status != status or existing.value != stored:
        existing.status = status
        existing.value = stored
        existing.answered_at = utcnow()
        existing.changes = (existing.changes or 0) + 1
    return stored


async def drop_hidden_answers(session: AsyncSession, response_id: int, spec: CampaignSpec) -> None:
    """After an answer changes, answers to questions that are now hidden by show_if are removed."""
    from bot.campaigns.flow import is_visible

    answers = await answers_of(session, response_id)
    for q in spec.questions:
        if q.id in answers and not is_visible(spec, q, answers):
            await session.execute(Answer.__table__.delete().where(
                Answer.response_id == response_id, Answer.question_id == q.id))
            answers.pop(q.id)


async def complete(session: AsyncSession, response: Response) -> None:
    if response.completed_at is None:
        response.completed_at = utcnow()


async def set_wants_outcome(session: AsyncSession, response_id: int, wants: bool) -> None:
    await session.execute(update(Response).where(Response.id == response_id).values(wants_outcome=wants))
