"""FSM storage for dialog state, with no Telegram id in keys or values.

`PseudonymousStorage` wraps any aiogram storage (Redis, or `SqlStorage` in our database):
chat and user ids in keys become keyed hashes, and the user ids aiogram-dialog writes into
`access_settings` are stored as "self" and restored from the key on reading.
`SqlStorage` writes through the update's own database session when one is active, so the
dialog state and the answers of one update commit together, or not at all.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import DialogState

current_session: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar(
    "coassess_update_session", default=None)

_SELF = "self"


def hashed_id(secret: bytes, value: int) -> int:
    """A stable 62-bit keyed hash of a chat or user id (an int, as aiogram's keys require)."""
    digest = hmac.new(secret, b"fsm:" + str(value).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def _state_name(state: StateType) -> str | None:
    return state.state if isinstance(state, State) else state


class SqlStorage(BaseStorage):
    """aiogram FSM storage in the `dialog_state` table (the default when Redis is not configured)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

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

    async def _row(self, session: AsyncSession, key: StorageKey) -> DialogState | None:
        return await session.get(DialogState, self.key_string(key))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        async def fn(s: AsyncSession) -> None:
            row = await self._row(s, key)
            if row is None:
                row = DialogState(key=self.key_string(key), data={})
                s.add(row)
            row.state = _state_name(state)
            await s.flush()

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
                    await s.delete(row)
                    await s.flush()
                return
            if row is None:
                row = DialogState(key=self.key_string(key), state=None)
                s.add(row)
            row.data = dict(data)
            await s.flush()

        await self._run(fn)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async def fn(s: AsyncSession) -> dict[str, Any]:
            row = await self._row(s, key)
            return dict(row.data) if row and row.data else {}

        return await self._run(fn)

    async def forget(self, chat_hash: int, user_hash: int) -> None:
        prefix = f"{chat_hash}:{user_hash}:"

        async def fn(s: AsyncSession) -> None:
            await s.execute(delete(DialogState).where(DialogState.key.startswith(prefix)))

        await self._run(fn)

    async def count(self) -> int:
        async with self.sessions() as s:
            return len((await s.scalars(select(DialogState.key))).all())

    async def close(self) -> None:
        return None


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
