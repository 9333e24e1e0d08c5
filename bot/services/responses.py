"""Responses and answers: stored as they are given, idempotent under replays and double taps.

Every update of a survey reads the response's answers, often more than once: they are kept in
the session (`Session.info`) from the first read, kept current by `record_answer` and
`drop_hidden_answers`, and forgotten on rollback. The statements of the answer path are built
once, since building one (an upsert above all) costs more than running it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.campaigns.flow import validate_answer
from bot.campaigns.schema import CampaignSpec, Question
from bot.models import Answer, Invite, Response, ResponseGroup, new_record_key, utcnow
from bot.scrub import scrub

CONSENT_VERSION = "2026-11-1"
_ANSWERS = "coassess_answers"  # key in Session.info: response id -> {question id: stored value}

_FIND_RESPONSE = select(Response).where(Response.campaign_id == bindparam("campaign_id"),
                                        Response.participant_id == bindparam("participant_id"))
# Columns of the Tables, not of the mapped classes, where no ORM object is wanted: the ORM's
# execution path costs about 0.1 ms a statement.
_A, _RG = Answer.__table__.c, ResponseGroup.__table__.c
_GROUPS = select(_RG.dimension_id, _RG.groups).where(_RG.response_id == bindparam("response_id"))
_ANSWERS_OF = select(_A.question_id, _A.value, _A.status).where(_A.response_id == bindparam("response_id"))
_ONE_ANSWER = select(_A.status, _A.value).where(
    _A.response_id == bindparam("response_id"), _A.question_id == bindparam("question_id"))
_CHANGE_ANSWER = (update(Answer.__table__).where(_A.response_id == bindparam("the_response"),
                                                 _A.question_id == bindparam("the_question"))
                  .values(changes=_A.changes + 1))


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


@functools.cache
def _new_answer(dialect: str) -> Any:
    """INSERT an answer unless the question has one already (a replay, a double tap)."""
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    return ins(Answer.__table__).on_conflict_do_nothing(index_elements=["response_id", "question_id"])


@functools.cache
def _set_groups(dialect: str) -> Any:
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = ins(ResponseGroup.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["response_id", "dimension_id"],
        set_={"groups": stmt.excluded.groups, "source": stmt.excluded.source,
              "answered_at": stmt.excluded.answered_at})


@event.listens_for(Session, "after_rollback")
def _forget_known_answers(session: Session) -> None:
    """Answers written in a transaction that was rolled back are not stored."""
    session.info.pop(_ANSWERS, None)


async def find_response(session: AsyncSession, campaign_id: str, participant_id: int) -> Response | None:
    return await session.scalar(_FIND_RESPONSE, {"campaign_id": campaign_id,
                                                  "participant_id": participant_id})


async def start_response(session: AsyncSession, campaign_id: str, participant_id: int,
                         language: str, invite: Invite | None = None) -> Response:
    """The participant's response to the campaign, created once (a replay finds the same row)."""
    ins = _insert(session)
    await session.execute(
        ins(Response).values(campaign_id=campaign_id, participant_id=participant_id,
                             language=language, invite_id=invite.id if invite else None,
                             started_at=utcnow(), wants_outcome=False,
                             # the response's random key for perturbing published counts
                             record_key=new_record_key())
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
    await session.execute(_set_groups(session.bind.dialect.name), {
        "response_id": response_id, "dimension_id": dimension_id, "groups": groups, "source": source,
        "answered_at": utcnow()})


async def groups_of(session: AsyncSession, response_id: int) -> dict[str, list[str]]:
    rows = await session.execute(_GROUPS, {"response_id": response_id})
    return {dim: list(groups) for dim, groups in rows.all()}


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


def prime_answers(session: AsyncSession, rows: Any) -> None:
    """Take the answers of some responses, read by someone else's query, as this session's.

    `rows`: (response id, question id, value, status), with a None question id for a response
    that has no answer yet. Responses this session knows already are left as they are.
    """
    known: dict[int, dict[str, Any]] = session.info.setdefault(_ANSWERS, {})
    fresh: dict[int, dict[str, Any]] = {}
    for rid, qid, value, status in rows:
        if rid in known:
            continue
        answers = fresh.setdefault(rid, {})
        if qid is not None:
            answers[qid] = value if status == "answered" else None
    known.update(fresh)


async def answers_of(session: AsyncSession, response_id: int) -> dict[str, Any]:
    """Question id -> stored value (None when skipped).

    Read once per session; the values are shared with later calls, so do not change them in place.
    """
    known: dict[int, dict[str, Any]] = session.info.setdefault(_ANSWERS, {})
    if response_id not in known:
        rows = await session.execute(_ANSWERS_OF, {"response_id": response_id})
        prime_answers(session, [(response_id, None, None, None),
                                *((response_id, *row) for row in rows.all())])
    return dict(known[response_id])


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
    known = session.info.get(_ANSWERS, {}).get(response_id)
    if known is not None and question.id in known and known[question.id] == stored:
        return stored  # the same answer again (a skip is stored as None, an answer never is)
    key = {"response_id": response_id, "question_id": question.id}
    if known is None or question.id not in known:
        result = await session.execute(_new_answer(session.bind.dialect.name), {
            **key, "status": status, "value": stored, "answered_at": utcnow(), "changes": 0})
        if result.rowcount:
            if known is not None:
                known[question.id] = stored
            return stored
    existing = (await session.execute(_ONE_ANSWER, key)).one()
    if existing.status != status or existing.value != stored:
        await session.execute(_CHANGE_ANSWER, {
            "the_response": response_id, "the_question": question.id, "status": status, "value": stored,
            "answered_at": utcnow()})
    if known is not None:
        known[question.id] = stored
    return stored


async def drop_hidden_answers(session: AsyncSession, response_id: int, spec: CampaignSpec) -> None:
    """After an answer changes, answers to questions that are now hidden by show_if are removed."""
    from bot.campaigns.flow import is_visible

    answers = await answers_of(session, response_id)
    known = session.info[_ANSWERS][response_id]
    for q in spec.questions:
        if q.id in answers and not is_visible(spec, q, answers):
            await session.execute(Answer.__table__.delete().where(
                Answer.response_id == response_id, Answer.question_id == q.id))
            answers.pop(q.id)
            known.pop(q.id, None)


async def complete(session: AsyncSession, response: Response) -> None:
    if response.completed_at is None:
        response.completed_at = utcnow()


async def set_wants_outcome(session: AsyncSession, response_id: int, wants: bool) -> None:
    await session.execute(update(Response).where(Response.id == response_id).values(wants_outcome=wants))
