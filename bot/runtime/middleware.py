"""Per-update middleware: one database session, the participant behind the update, exactly-once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from sqlalchemy import bindparam, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Participant, ProcessedUpdate, utcnow
from bot.runtime.storage import PseudonymousStorage, current_session
from bot.services.participants import Keys
from dialogs.i18n import base_language

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Every update starts with the same lookups: the statements are built once, and the participant
# and "was this update processed already?" come back in one round trip.
_PARTICIPANT = select(Participant).where(Participant.pseudonym == bindparam("pseudonym"))
_SEEN = select(literal(1)).where(ProcessedUpdate.update_id == bindparam("update_id"),
                                 ProcessedUpdate.bot_key == bindparam("bot_key")).exists()
_ONE_ROW = select(literal(1).label("one")).subquery("one_row")
_PARTICIPANT_AND_SEEN = (select(Participant, _SEEN.label("seen")).select_from(_ONE_ROW)
                         .outerjoin(Participant, Participant.pseudonym == bindparam("pseudonym")))
_MARK = insert(ProcessedUpdate.__table__)  # Core, not the ORM's bulk insert path


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
        async with self.sessions() as session:
            token = current_session.set(session)
            try:
                user: User | None = data.get("event_from_user")
                pseudonym = self.keys.pseudonym(user.id) if user is not None and not user.is_bot else None
                marker = None
                if self.dedupe and isinstance(event, Update):
                    bot = data.get("bot")
                    marker = {"update_id": event.update_id,
                              "bot_key": str(bot.id) if bot is not None else "0"}
                    participant, seen = (await session.execute(
                        _PARTICIPANT_AND_SEEN, {"pseudonym": pseudonym, **marker})).one()
                    if seen:
                        log.info("update %s was already processed; skipped", event.update_id)
                        return None
                else:
                    participant = await session.scalar(_PARTICIPANT, {"pseudonym": pseudonym}) \
                        if pseudonym is not None else None
                self._identify(data, user, participant)
                data["session"] = session
                data["coassess_storage"] = self.storage
                # work that must run after the dialogs saved their state, before the commit
                after: list[Callable[[], Awaitable[None]]] = []
                data["after_update"] = after
                result = await handler(event, data)
                for job in after:
                    await job()
                if marker is not None:
                    # last, in the final commit: a replay after a crash re-runs the update
                    await session.execute(_MARK, {**marker, "at": utcnow()})
                await session.commit()
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)

    def _identify(self, data: dict[str, Any], user: User | None, participant: Participant | None) -> None:
        data["keys"] = self.keys
        data["participant"] = participant
        lang = participant.language if participant and participant.language else None
        data["lang"] = lang or (base_language(user.language_code) if user and user.language_code else "en")
