"""FSM storage for dialog state, with no Telegram id in keys or values.

`PseudonymousStorage` wraps any aiogram storage (Redis, or `SqlStorage` in our database):
chat and user ids in keys become keyed hashes, and the user ids aiogram-dialog writes into
`access_settings` are stored as "self" and restored from the key on reading.
`SqlStorage` writes through the update's own database session when one is active, so the
dialog state and the answers of one update commit together, or not at all.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import bindparam, delete, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot.models import DialogState, utcnow

current_session: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar(
    "coassess_update_session", default=None)

_SELF = "self"
_CACHE = "coassess_dialog_state"  # key in Session.info: the rows this session has read or written
USUAL_CHATS = 20_000  # chats whose usual rows SqlStorage remembers (a few key names each)
USUAL_KEYS = 6  # row names remembered per chat


@functools.lru_cache(maxsize=65_536)
def hashed_id(secret: bytes, value: int) -> int:
    """A stable 62-bit keyed hash of a chat or user id (an int, as aiogram's keys require)."""
    digest = hmac.new(secret, b"fsm:" + str(value).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def _state_name(state: StateType) -> str | None:
    return state.state if isinstance(state, State) else state


class SqlStorage(BaseStorage):
    """aiogram FSM storage in the `dialog_state` table (the default when Redis is not configured).

    Every update of a chat reads the same few rows (aiogram's state, aiogram-dialog's stack and
    the open dialog's context) and writes back what changed. Within one session the rows read
    are kept as JSON text, so a second read costs no query and an unchanged value is not written
    again. The storage also remembers the names (never the contents) of the rows each chat's
    updates used, and fetches them all with the first read of the next update: one query
    instead of three.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._usual: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    @staticmethod
    def key_string(key: StorageKey) -> str:
        return f"{key.chat_id}:{key.user_id}:{key.bot_id}:{key.thread_id or ''}:{key.destiny}"

    async def _run(self, fn: Any) -> Any:
        session = current_session.get()
        if session is not None:
            return await fn(session)
        async with self.sessions() as own:
            result = await fn(own)
            await own.commit()
            return result

    def _remember(self, name: str) -> tuple[str, ...]:
        """Note that this chat uses the row `name`; returns the chat's usual rows."""
        chat = name.partition(":")[0]
        usual = self._usual.pop(chat, ())
        if name not in usual:
            usual = (*usual, name)[-USUAL_KEYS:]
        self._usual[chat] = usual
        if len(self._usual) > USUAL_CHATS:
            self._usual.popitem(last=False)
        return usual

    async def _row(self, session: AsyncSession, key: StorageKey) -> _Row | None:
        cache: dict[str, _Row | None] = session.info.setdefault(_CACHE, {})
        name = self.key_string(key)
        if name in cache:
            return cache[name]
        wanted = [name, *(k for k in self._remember(name) if k != name and k not in cache)]
        rows = await session.execute(_SELECT_ROWS, {"keys": wanted})
        for k in wanted:
            cache[k] = None
        for k, state, data in rows.all():
            cache[k] = _Row(state, json.dumps(data or {}))
        return cache[name]

    async def _write(self, session: AsyncSession, key: StorageKey, state: str | None, text: str) -> None:
        """Insert or replace one row (`text`: its data as JSON) in a single statement."""
        name = self.key_string(key)
        self._remember(name)
        await session.execute(_upsert(session.bind.dialect.name),
                              {"key": name, "state": state, "data": json.loads(text), "updated_at": utcnow()})
        session.info[_CACHE][name] = _Row(state, text)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        async def fn(s: AsyncSession) -> None:
            row = await self._row(s, key)
            name = _state_name(state)
            if row is not None and row.state == name:
                return
            await self._write(s, key, name, row.text if row else "{}")

        await self._run(fn)

    async def get_state(self, key: StorageKey) -> str | None:
        async def fn(s: AsyncSession) -> str | None:
            row = await self._row(s, key)
            return row.state if row else None

        return await self._run(fn)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async def fn(s: AsyncSession) -> None:
            row = await self._row(s, key)
            if not data and (row is None or row.state is None):
                if row is not None:
                    await s.execute(delete(_TABLE).where(_TABLE.c.key == self.key_string(key)))
                    s.info[_CACHE][self.key_string(key)] = None
                return
            text = json.dumps(data)
            if row is not None and row.text == text:
                return  # unchanged: nothing to write
            await self._write(s, key, row.state if row else None, text)

        await self._run(fn)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async def fn(s: AsyncSession) -> dict[str, Any]:
            row = await self._row(s, key)
            return json.loads(row.text) if row else {}  # a fresh copy: callers change it in place

        return await self._run(fn)

    async def forget(self, chat_hash: int, user_hash: int) -> None:
        prefix = f"{chat_hash}:{user_hash}:"

        async def fn(s: AsyncSession) -> None:
            await s.execute(delete(DialogState).where(DialogState.key.startswith(prefix)))
            s.info.pop(_CACHE, None)

        await self._run(fn)

    async def close(self) -> None:
        return None


# Built once: constructing a statement (an upsert's `excluded` alias above all) costs more than
# running it.
# On the Table, not the mapped class: the ORM's execution path costs about 0.1 ms a statement.
_TABLE = DialogState.__table__
_SELECT_ROWS = select(_TABLE.c.key, _TABLE.c.state, _TABLE.c.data).where(
    _TABLE.c.key.in_(bindparam("keys", expanding=True)))


@functools.cache
def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE of a dialog_state row, for one dialect."""
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(_TABLE)
    return stmt.on_conflict_do_update(index_elements=["key"], set_={
        "state": stmt.excluded.state, "data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at})


@dataclass(frozen=True)
class _Row:
    state: str | None
    text: str  # the data as JSON


@event.listens_for(Session, "after_rollback")
def _forget_cached_rows(session: Session) -> None:
    """Rows read or written in a transaction that was rolled back may not be what is stored."""
    session.info.pop(_CACHE, None)


class PseudonymousStorage(BaseStorage):
    """Wraps a storage so that no chat or user id is written into it."""

    def __init__(self, inner: BaseStorage, secret: bytes) -> None:
        self.inner = inner
        self.secret = secret

    def _key(self, key: StorageKey) -> StorageKey:
        return StorageKey(
            bot_id=key.bot_id,
            chat_id=hashed_id(self.secret, key.chat_id),
            user_id=hashed_id(self.secret, key.user_id),
            thread_id=key.thread_id,
            business_connection_id=None,
            destiny=key.destiny,
        )

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await self.inner.set_state(self._key(key), state)

    async def get_state(self, key: StorageKey) -> str | None:
        return await self.inner.get_state(self._key(key))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self.inner.set_data(self._key(key), _strip_ids(data, key))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return _restore_ids(await self.inner.get_data(self._key(key)), key)

    async def forget(self, chat_id: int, user_id: int) -> None:
        """Remove every state row of one private chat (for /forget)."""
        if isinstance(self.inner, SqlStorage):
            await self.inner.forget(hashed_id(self.secret, chat_id), hashed_id(self.secret, user_id))
            return
        redis = getattr(self.inner, "redis", None)
        if redis is not None:
            pattern = f"*:{hashed_id(self.secret, chat_id)}:{hashed_id(self.secret, user_id)}:*"
            async for k in redis.scan_iter(match=pattern, count=500):
                await redis.delete(k)

    async def close(self) -> None:
        await self.inner.close()


def _strip_ids(data: Mapping[str, Any], key: StorageKey) -> dict[str, Any]:
    settings = data.get("access_settings")
    if not isinstance(settings, dict) or not settings.get("user_ids"):
        return dict(data)
    ids = [_SELF for uid in settings["user_ids"] if uid in (key.user_id, key.chat_id)]
    return {**data, "access_settings": {**settings, "user_ids": ids}}


def _restore_ids(data: dict[str, Any], key: StorageKey) -> dict[str, Any]:
    settings = data.get("access_settings")
    if not isinstance(settings, dict) or not settings.get("user_ids"):
        return data
    ids = [key.user_id if uid == _SELF else uid for uid in settings["user_ids"]]
    return {**data, "access_settings": {**settings, "user_ids": ids}}
