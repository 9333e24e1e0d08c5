"""Reading a campaign's responses as a stream, one response (with its groups and answers) at a time.

Two ordered server-side cursors (responses, answers) are merged in Python, so memory stays
flat whatever the number of answers: only one response and one fetch batch are held at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, Text, cast, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from bot.campaigns.schema import PREFER_NOT, CampaignSpec
from bot.db import Database
from bot.models import Answer, Campaign, Group, Invite, Participant, Response, ResponseGroup

# Rows per fetch: large enough that the per-fetch overhead vanishes, small enough to stay flat.
BATCH = 5000


class UnknownCampaign(LookupError):
    """The campaign id is not in the database."""

    def __init__(self, campaign_id: str, known: list[str]) -> None:
        self.campaign_id = campaign_id
        self.known = known
        listed = ", ".join(known) if known else "none yet"
        super().__init__(f"there is no campaign '{campaign_id}' (campaigns in this database: {listed})")


class UnknownDimension(LookupError):
    """A `by` dimension that the campaign does not have."""

    def __init__(self, dimension: str, known: list[str]) -> None:
        self.dimension = dimension
        self.known = known
        listed = ", ".join(known) if known else "none: this campaign asks no group questions"
        super().__init__(f"the campaign has no group dimension '{dimension}' (its dimensions: {listed})")


class UnknownLanguage(LookupError):
    """A language the campaign has no texts in."""

    def __init__(self, language: str, known: list[str]) -> None:
        self.language = language
        self.known = known
        super().__init__(f"the campaign has no texts in '{language}' (its languages: {', '.join(known)})")


@dataclass(frozen=True, slots=True)
class CampaignContext:
    """What the analysis needs to know about a campaign besides its responses."""

    id: str
    spec: CampaignSpec
    min_group_size: int
    # dimension -> group -> population share, from the campaign's baseline
    baseline: dict[str, dict[str, float]]
    # invite id -> (code, partner)
    invites: dict[int, tuple[str, str]]

    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.spec.groups]

    def check_dimension(self, dimension: str | None) -> None:
        if dimension is not None and dimension not in self.dimension_ids():
            raise UnknownDimension(dimension, self.dimension_ids())

    def check_language(self, language: str | None) -> None:
        if language is not None and language not in self.spec.languages:
            raise UnknownLanguage(language, list(self.spec.languages))

    def group_ids(self, dimension: str) -> list[str]:
        return [o.id for o in self.spec.dimension(dimension).options]


class AnswerRecord:
    """One answer: its question, status (answered | skipped), value (read-only) and time (UTC).

    When the database gave the time as text, the record keeps the contract's ISO text
    (`stamp`) and makes the datetime only if asked: the CSV and JSON exports need only the text.
    """

    __slots__ = ("_at", "_stamp", "question_id", "status", "value")

    def __init__(self, question_id: str, status: str, value: Any, answered_at: datetime | None = None,
                 *, stamp: str | None = None) -> None:
        self.question_id = question_id
        self.status = status
        self.value = value
        self._at = answered_at
        self._stamp = stamp

    @property
    def answered_at(self) -> datetime:
        if self._at is None and self._stamp is not None:
            self._at = datetime.fromisoformat(self._stamp)
        return self._at  # type: ignore[return-value]

    @property
    def stamp(self) -> str | None:
        """`contract.iso(answered_at)`: "2026-03-01T10:02:03.123456Z"."""
        if self._stamp is None and self._at is not None:
            self._stamp = self._at.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
        return self._stamp

    def __repr__(self) -> str:
        return (f"AnswerRecord({self.question_id!r}, {self.status!r}, {self.value!r}, "
                f"answered_at={self.answered_at!r})")


@dataclass(slots=True)
class ResponseRecord:
    """One response with everything the exports and the report need; no contact details exist here."""

    id: int
    participant: str  # the stored keyed pseudonym; exports re-key it per export
    language: str
    invite: str | None
    partner: str | None
    started_at: datetime
    completed_at: datetime | None
    # dimension -> group ids, or [prefer_not_to_say]; a dimension not asked is absent
    groups: dict[str, list[str]] = field(default_factory=dict)
    answers: list[AnswerRecord] = field(default_factory=list)
    key: int = 0  # the response's random record key (cell key method, analysis.disclosure)

    def memberships(self, dimension: str) -> list[str]:
        """The rows this response counts in for a dimension (a multi-choice dimension may give several)."""
        chosen = self.groups.get(dimension)
        if not chosen:
            return [NOT_ASKED]
        if PREFER_NOT in chosen:
            return [PREFER_NOT]
        return chosen


# Group rows that are not groups of the dimension. Parentheses cannot occur in ids, so no clash.
NOT_ASKED = "(not asked)"
ALL = "(all)"


def as_database(database: Database | str) -> tuple[Database, bool]:
    """A Database for a URL or the given one; the flag says whether the caller must dispose it."""
    if isinstance(database, Database):
        return database, False
    return Database(database), True


@asynccontextmanager
async def opened(database: Database | str) -> AsyncIterator[Database]:
    db, own = as_database(database)
    try:
        yield db
    finally:
        if own:
            await db.dispose()


async def load_context(conn: AsyncConnection, campaign_id: str) -> CampaignContext:
    row = (await conn.execute(select(Campaign.definition, Campaign.min_group_size)
                              .where(Campaign.id == campaign_id))).first()
    if row is None:
        known = list((await conn.scalars(select(Campaign.id).order_by(Campaign.id))).all())
        raise UnknownCampaign(campaign_id, known)
    spec = CampaignSpec.model_validate(row.definition)
    baseline: dict[str, dict[str, float]] = {}
    for dim, gid, share in (await conn.execute(
            select(Group.dimension_id, Group.id, Group.baseline_share)
            .where(Group.campaign_id == campaign_id, Group.baseline_share.is_not(None)))).all():
        baseline.setdefault(dim, {})[gid] = float(share)
    invites = {iid: (code, partner) for iid, code, partner in (await conn.execute(
        select(Invite.id, Invite.code, Invite.partner).where(Invite.campaign_id == campaign_id))).all()}
    return CampaignContext(id=campaign_id, spec=spec, min_group_size=int(row.min_group_size or 10),
                           baseline=baseline, invites=invites)


async def count_responses(conn: AsyncConnection, campaign_id: str) -> int:
    return int(await conn.scalar(select(func.count()).select_from(Response)
                                 .where(Response.campaign_id == campaign_id)) or 0)


@asynccontextmanager
async def snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection whose reads all see one state of the database, even while the bot writes."""
    async with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            yield conn


class _Decoded:
    """JSON text decoded with `json.loads`, remembering the texts that repeat (ratings, choices, groups).

    The decoded values are shared between the records that hold the same text, so they are
    read-only. The memory is bounded: past `limit` texts the memory starts afresh.
    """

    __slots__ = ("limit", "memo")

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self.memo: dict[str, Any] = {}

    def __call__(self, text: Any) -> Any:
        if text is None:
            return None
        if text.__class__ is not str:  # a driver that decodes JSON itself
            return text
        value = self.memo.get(text)
        if value is None:
            value = json.loads(text)
            if len(self.memo) >= self.limit:
                self.memo.clear()
            self.memo[text] = value
        return value


def _answer_maker(conn: AsyncConnection) -> Callable[[str, str, Any, Any], AnswerRecord]:
    """AnswerRecords from (question, status, value, answered_at read as text) rows.

    SQLite stores the text SQLAlchemy wrote ("2026-03-01 10:02:03.123456", UTC): that shape
    becomes the ISO text directly; anything else (and PostgreSQL's datetimes) goes through the
    column type's own processor, so the time is always what SQLAlchemy would have given.
    """
    column_type = Answer.__table__.c.answered_at.type
    exact = column_type.result_processor(conn.dialect, None) or (lambda v: v)

    def make(question_id: str, status: str, value: Any, at: Any) -> AnswerRecord:
        if at.__class__ is str and len(at) == 26 and at[10] == " " and at[19] == "." and at[:4].isdigit():
            return AnswerRecord(question_id, status, value, stamp=f"{at[:10]}T{at[11:]}Z")
        return AnswerRecord(question_id, status, value, exact(at))

    return make


async def iter_responses(conn: AsyncConnection, ctx: CampaignContext, batch: int = BATCH, *,
                         in_start_order: bool = False) -> AsyncIterator[ResponseRecord]:
    """Every response of the campaign in id order, each with its groups and its answers.

    `in_start_order`: by the time each response started (then by id) instead, as an analyst
    reading an export expects; ids follow the order rows were stored, which is not the start
    order for imported or synthetic responses, nor quite for several bot workers.

    JSON columns are read as text and decoded here (`_Decoded`), and answer times as text on
    SQLite (`_answer_maker`): SQLAlchemy's per-value result processing was a fifth of an export.
    """
    dims = ctx.dimension_ids()
    group_alias = {d: aliased(ResponseGroup, name=f"rg_{i}") for i, d in enumerate(dims)}
    cols: list[Any] = [Response.id, Participant.pseudonym, Response.language, Response.invite_id,
                       Response.started_at, Response.completed_at, Response.record_key]
    stmt = select(*cols, *[cast(group_alias[d].groups, Text) for d in dims]).join(
        Participant, Participant.id == Response.participant_id)
    # One outer join per dimension keeps the response stream one row per response.
    for d, rg in group_alias.items():
        stmt = stmt.outerjoin(rg, (rg.response_id == Response.id) & (rg.dimension_id == d))
    in_order = (Response.started_at, Response.id) if in_start_order else (Response.id,)
    stmt = stmt.where(Response.campaign_id == ctx.id).order_by(*in_order)
    answers_stmt = (select(Answer.response_id, Answer.question_id, Answer.status, cast(Answer.value, Text),
                           type_coerce(Answer.answered_at, String))
                    .join(Response, Response.id == Answer.response_id)
                    .where(Response.campaign_id == ctx.id)
                    .order_by(*in_order, Answer.id))
    decode = _Decoded()
    decode_groups = _Decoded(limit=1000)
    answer = _answer_maker(conn)
    invites = ctx.invites
    order = {q.id: i for i, q in enumerate(ctx.spec.questions)}
    last = len(order)

    def position(ans: AnswerRecord) -> int:
        return order.get(ans.question_id, last)

    responses = await conn.stream(stmt.execution_options(yield_per=batch))
    answers = await conn.stream(answers_stmt.execution_options(yield_per=batch))
    answer_parts = answers.partitions()
    buffer: Sequence[Any] = ()
    pos = 0
    exhausted = False
    try:
        async for part in responses.partitions():
            for row in part:
                rid = row[0]
                invite = invites.get(row[3], (None, None)) if row[3] is not None else (None, None)
                groups = {}
                for d, text in zip(dims, row[7:], strict=True):
                    g = decode_groups(text)
                    if g is not None:
                        groups[d] = list(g)
                record = ResponseRecord(id=rid, participant=row[1], language=row[2], invite=invite[0],
                                        partner=invite[1], started_at=row[4], completed_at=row[5],
                                        groups=groups, key=row[6] or 0)
                found = record.answers
                while True:
                    if pos >= len(buffer):
                        if exhausted:
                            break
                        try:
                            buffer = await answer_parts.__anext__()
                        except StopAsyncIteration:
                            exhausted, buffer = True, ()
                        pos = 0
                        continue
                    a = buffer[pos]
                    arid = a[0]
                    # Both cursors list responses in the same order: in start order an answer of
                    # another response belongs to a later one (ids are not increasing there).
                    if arid != rid and (in_start_order or arid > rid):
                        break
                    pos += 1
                    if arid == rid:
                        found.append(answer(a[1], a[2], decode(a[3]), a[4]))
                # Questions in campaign order, whatever order they were answered in.
                found.sort(key=position)
                yield record
    finally:
        await answers.close()
        await responses.close()
