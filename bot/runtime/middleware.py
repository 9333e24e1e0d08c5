"""Per-update middleware: one database session, the participant behind the update, exactly-once."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Answer, DialogState, Participant, ProcessedUpdate, Response
from bot.runtime import storage as state_storage
from bot.runtime.storage import PseudonymousStorage, current_session
from bot.services.participants import Keys
from bot.services.responses import prime_answers
from dialogs.i18n import base_language

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Every update starts with the same lookups, in one round trip: the participant, "was this update
# processed already?", the chat's dialog-state rows and the answers of the participant's unfinished
# responses (a survey screen needs them all). The statement is built once per dialect.
_PARTICIPANT = select(Participant).where(Participant.pseudonym == bindparam("pseudonym"))
_SEEN = select(literal(1)).where(ProcessedUpdate.update_id == bindparam("update_id"),
                                 ProcessedUpdate.bot_key == bindparam("bot_key")).exists()
_ONE_ROW = select(literal(1).label("one")).subquery("one_row")


@functools.cache
def _first_read(dialect: str) -> Any:
    """The update's first query (see above), for one dialect's JSON aggregate functions."""
    state, answer, response = DialogState.__table__.c, Answer.__table__.c, Response.__table__.c
    if dialect == "postgresql":
        agg, row = func.json_agg, func.json_build_array
        value = answer.value
    else:
        agg, row = func.json_group_array, func.json_array
        value, state_data = func.json(answer.value), func.json(state.data)
    states = (select(agg(row(state.key, state.state, state.data if dialect == "postgresql" else state_data)))
              .where(state.key >= bindparam("lo"), state.key < bindparam("hi")).scalar_subquery())
    answers = (select(agg(row(response.id, answer.question_id, value, answer.status)))
               .select_from(Response.__table__.outerjoin(Answer.__table__, answer.response_id == response.id))
               .where(response.participant_id == Participant.id, response.completed_at.is_(None))
               .correlate(Participant).scalar_subquery())
    return (select(Participant, _SEEN.label("seen"), states.label("states"), answers.label("answers"))
            .select_from(_ONE_ROW)
            .outerjoin(Participant, Participant.pseudonym == bindparam("pseudonym")))


_NO_ROWS = {"lo": "", "hi": ""}  # an empty key range: no dialog-state rows wanted


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


class UpdateSessionMiddleware(BaseMiddleware):
    """Opens the update's session, finds the participant, commits once at the end.

    With `dedupe`, the update id is recorded in the same transaction as the answers and the
    dialog state, so a redelivered or replayed update is applied exactly once.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], keys: Keys,
                 storage: PseudonymousStorage, dedupe: bool = True) -> None:
        self.sessions = sessions
        self.keys = keys
        self.storage = storage
        self.dedupe = dedupe

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if current_session.get() is not None:  # nested (a dialog event inside an update)
            return await handler(event, data)
        # aiogram's FSM middleware runs after this one; if the database fails here, the dialogs'
        # error handling still needs the storage
        data.setdefault("fsm_storage", self.storage)
        redis = self.storage.redis_writes  # None when the dialog state is in the database
        async with self.sessions() as session:
            token = current_session.set(session)
            held = redis.hold() if redis is not None else None
            try:
                user: User | None = data.get("event_from_user")
                pseudonym = self.keys.pseudonym(user.id) if user is not None and not user.is_bot else None
                marker = None
                fingerprint = ""
                if self.dedupe and isinstance(event, Update):
                    bot = data.get("bot")
                    marker = {"update_id": event.update_id,
                              "bot_key": str(bot.id) if bot is not None else "0"}
                    chat = data.get("event_chat")
                    prefix = self.storage.chat_prefix(chat.id, user.id) \
                        if chat is not None and user is not None else None
                    participant, seen, states, answers = (await session.execute(
                        _first_read(session.bind.dialect.name),
                        {"pseudonym": pseudonym, **marker,
                         **(state_storage.key_range(prefix) if prefix else _NO_ROWS)})).one()
                    if redis is not None:  # the marker is written with the dialog state, in Redis
                        fingerprint = self._fingerprint(event)
                        seen = await redis.seen(marker, fingerprint)
                    if seen:
                        log.info("update %s was already processed; skipped", event.update_id)
                        return None
                    if prefix is not None:
                        state_storage.SqlStorage.prime(session, prefix, _json(states) or ())
                    if answers:
                        prime_answers(session, _json(answers))
                else:
                    participant = await session.scalar(_PARTICIPANT, {"pseudonym": pseudonym}) \
                        if pseudonym is not None else None
                self._identify(data, user, participant)
                data["session"] = session
                data["coassess_storage"] = self.storage
                # work that must run after the dialogs saved their state, before the commit
                after: list[Callable[[], Awaitable[None]]] = []
                data["after_update"] = after
                state_storage.defer(session)
                result = await handler(event, data)
                for job in after:
                    await job()
                # the dialog state and, last, the marker, in the final commit: a replay after a
                # crash re-runs the update. With Redis, the state and the marker go there together,
                # once the database has the answers (see RedisUpdateStorage).
                await state_storage.flush(session, marker if redis is None else None)
                await session.commit()
                if redis is not None:
                    await redis.commit(marker, fingerprint)
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                if held is not None:
                    redis.release(held)  # type: ignore[union-attr]
                current_session.reset(token)

    def _fingerprint(self, update: Update) -> str:
        """A keyed digest of the update as Telegram sent it (no id or text can be read back from it)."""
        payload = update.model_dump_json(exclude_none=True, exclude_defaults=True).encode()
        return hmac.new(self.keys.pseudonym_key, b"update:" + payload, hashlib.sha256).hexdigest()[:32]

    def _identify(self, data: dict[str, Any], user: User | None, participant: Participant | None) -> None:
        data["keys"] = self.keys
        data["participant"] = participant
        lang = participant.language if participant and participant.language else None
        data["lang"] = lang or (base_language(user.language_code) if user and user.language_code else "en")
