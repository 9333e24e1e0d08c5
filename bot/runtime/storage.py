"""FSM storage for dialog state, with no Telegram id in keys or values.

`PseudonymousStorage` wraps any aiogram storage (Redis, or `SqlStorage` in our database):
chat and user ids in keys become keyed hashes, and the user ids aiogram-dialog writes into
`access_settings` are stored as "self" and restored from the key on reading.
`SqlStorage` writes through the update's own database session when one is active, so the
dialog state and the answers of one update commit together, or not at all.
`RedisUpdateStorage` holds an update's Redis writes until its database commit has gone through, then
writes them with the update's processed marker in one MULTI/EXEC (see its docstring).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiogram.exceptions import DataNotDictLikeError

from aiogram.fsm.state import State
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import bindparam, delete, event, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot.models import DialogState, ProcessedUpdate, utcnow

current_session: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar(
    "coassess_update_session", default=None)

_SELF = "self"
# keys in Session.info
_CACHE = "coassess_dialog_state"  # the rows this session has read or written
_LOADED = "coassess_dialog_chats"  # key prefixes of the chats whose rows are all in _CACHE
_PENDING = "coassess_dialog_writes"  # rows to write at the end of the update (see `defer`)


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
    the open dialog's context) and writes back what changed. The rows of one chat share a key
    prefix (its hashed chat and user ids), so they are read together: the update middleware
    fetches them with its first query (`prime`), or the first read here fetches the prefix.
    Within one session the rows are kept as JSON text, so a second read costs no query and an
    unchanged value is not written again. In a session the update middleware runs (`defer`),
    writes wait in the session and are written by `flush` in one statement at the end of the
    update, with the processed-update marker, in the update's final commit.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @staticmethod
    def key_string(key: StorageKey) -> str:
        return f"{key.chat_id}:{key.user_id}:{key.bot_id}:{key.thread_id or ''}:{key.destiny}"

    @staticmethod
    def chat_prefix(chat_hash: int, user_hash: int) -> str:
        """The start of every key of one chat's rows."""
        return f"{chat_hash}:{user_hash}:"

    async def _run(self, fn: Any) -> Any:
        session = current_session.get()
        if session is not None:
            return await fn(session)
        async with self.sessions() as own:
            result = await fn(own)
            await own.commit()
            return result

    @staticmethod
    def prime(session: AsyncSession, prefix: str, rows: Any) -> None:
        """Take a chat's rows (key, state, data), read by someone else's query, as this session's."""
        cache: dict[str, _Row | None] = session.info.setdefault(_CACHE, {})
        for k, state, data in rows:
            if k not in cache:
                cache[k] = _Row(state, json.dumps(data or {}))
        session.info.setdefault(_LOADED, set()).add(prefix)

    async def _row(self, session: AsyncSession, key: StorageKey) -> _Row | None:
        cache: dict[str, _Row | None] = session.info.setdefault(_CACHE, {})
        name = self.key_string(key)
        if name in cache:
            return cache[name]
        prefix = self.chat_prefix(key.chat_id, key.user_id)
        if prefix not in session.info.get(_LOADED, ()):
            rows = await session.execute(_SELECT_CHAT, key_range(prefix))
            self.prime(session, prefix, rows.all())
        return cache.setdefault(name, None)

    async def _write(self, session: AsyncSession, key: StorageKey, state: str | None, text: str) -> None:
        """Insert or replace one row (`text`: its data as JSON), now or at the end of the update."""
        name = self.key_string(key)
        session.info[_CACHE][name] = _Row(state, text)
        pending: dict[str, _Row] | None = session.info.get(_PENDING)
        if pending is not None:
            pending[name] = _Row(state, text)
            return
        await session.execute(_upsert(session.bind.dialect.name, False),
                              {"key": name, "state": state, "data": json.loads(text), "updated_at": utcnow()})

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
                    name = self.key_string(key)
                    s.info.get(_PENDING, {}).pop(name, None)
                    await s.execute(delete(_TABLE).where(_TABLE.c.key == name))
                    s.info[_CACHE][name] = None
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
        prefix = self.chat_prefix(chat_hash, user_hash)

        async def fn(s: AsyncSession) -> None:
            pending: dict[str, _Row] = s.info.get(_PENDING, {})
            for name in [k for k in pending if k.startswith(prefix)]:
                del pending[name]  # or the end of the update would write them back
            await s.execute(delete(_TABLE).where(_TABLE.c.key.startswith(prefix)))
            s.info.pop(_CACHE, None)
            s.info.pop(_LOADED, None)

        await self._run(fn)

    async def close(self) -> None:
        return None


def defer(session: AsyncSession) -> None:
    """Hold this session's dialog-state writes until `flush` (the update middleware's last step)."""
    session.info.setdefault(_PENDING, {})


async def flush(session: AsyncSession, marker: Mapping[str, Any] | None = None) -> None:
    """Write the held dialog-state rows and the processed-update `marker` (both optional).

    On PostgreSQL, one statement writes the marker and the first row (the marker's INSERT rides
    in a WITH clause); most updates change one row. Further rows go in one executemany.
    """
    pending: dict[str, _Row] = session.info.get(_PENDING) or {}
    session.info[_PENDING] = {}
    dialect = session.bind.dialect.name
    now = utcnow()
    rows = [{"key": name, "state": row.state, "data": json.loads(row.text), "updated_at": now}
            for name, row in pending.items()]
    if marker is not None:
        if rows and dialect == "postgresql":
            await session.execute(_upsert(dialect, True), {**rows.pop(0), **marker, "at": now})
        else:
            await session.execute(_MARK, {**marker, "at": now})
    if rows:
        await session.execute(_upsert(dialect, False), rows if len(rows) > 1 else rows[0])


def key_range(prefix: str) -> dict[str, str]:
    """Bounds of the keys that start with `prefix` (which ends in ':'), for an index range scan."""
    return {"lo": prefix, "hi": prefix[:-1] + chr(ord(prefix[-1]) + 1)}


# Built once: constructing a statement (an upsert's `excluded` alias above all) costs more than
# running it.
# On the Table, not the mapped class: the ORM's execution path costs about 0.1 ms a statement.
_TABLE = DialogState.__table__
_CHAT_ROWS = (_TABLE.c.key >= bindparam("lo")) & (_TABLE.c.key < bindparam("hi"))
_SELECT_CHAT = select(_TABLE.c.key, _TABLE.c.state, _TABLE.c.data).where(_CHAT_ROWS)
_MARK = insert(ProcessedUpdate.__table__)


@functools.cache
def _upsert(dialect: str, with_marker: bool) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE of one dialog_state row, for one dialect.

    `with_marker` (PostgreSQL only): the processed-update marker is inserted by the same statement.
    Keyword values only: SQLAlchemy cannot cache the compiled form of a multi-row VALUES list.
    """
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(_TABLE)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={
        "state": stmt.excluded.state, "data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at})
    if with_marker:
        stmt = stmt.add_cte(_MARK.values(update_id=bindparam("update_id"), bot_key=bindparam("bot_key"),
                                         at=bindparam("at")).cte("processed"))
    return stmt


@dataclass(frozen=True)
class _Row:
    state: str | None
    text: str  # the data as JSON


@event.listens_for(Session, "after_rollback")
def _forget_cached_rows(session: Session) -> None:
    """Rows read or written in a transaction that was rolled back may not be what is stored."""
    session.info.pop(_CACHE, None)
    session.info.pop(_LOADED, None)
    if _PENDING in session.info:
        session.info[_PENDING] = {}


KEEP_MARKERS_SECONDS = 48 * 3600  # as long as the journal remembers a processed update's id


@dataclass
class _HeldWrites:
    """One update's dialog-state writes, waiting for its database commit."""

    states: dict[StorageKey, str | None]
    data: dict[StorageKey, str]  # the data as JSON ("{}": delete)
    open: bool = True


_held: contextvars.ContextVar[_HeldWrites | None] = contextvars.ContextVar("coassess_redis_writes", default=None)


class RedisUpdateStorage(BaseStorage):
    """Dialog state in Redis that never disagrees with the answers in the database after a crash.

    The answers of an update are committed to the database (before each Bot API call, and at its
    end); its dialog state goes to Redis. Written as they come, a crash between the two would leave
    Redis ahead of the database (the replay then runs on the next screen's state: a tick ticked
    twice is unticked) or behind it. So, inside an update (`hold`), writes wait in memory (reads
    see them) and `commit` writes them after the database commit, in one MULTI/EXEC together with
    the update's processed marker, which is what tells a replay that the update is done (`seen`):

    - a crash before the database commit: nothing of the update is kept; the replay runs it again;
    - between the database commit and EXEC: Redis still has the state before the update and no
      marker, so the replay runs in that state and stores the same answers again (idempotent);
    - after EXEC: the marker is there and the replay is skipped.

    Outside an update (a background dialog start, an error handler) writes go straight to Redis.
    """

    def __init__(self, inner: RedisStorage, keep_seconds: int = KEEP_MARKERS_SECONDS) -> None:
        self.inner = inner
        self.keep_seconds = keep_seconds

    @property
    def redis(self) -> Any:
        return self.inner.redis

    @staticmethod
    def hold() -> contextvars.Token[_HeldWrites | None]:
        """Start holding this update's writes (give the token to `release`)."""
        return _held.set(_HeldWrites({}, {}))

    @staticmethod
    def release(token: contextvars.Token[_HeldWrites | None]) -> None:
        held = _held.get()
        if held is not None:
            held.open = False  # a task the update left behind writes straight to Redis
        _held.reset(token)

    @staticmethod
    def marker_key(marker: Mapping[str, Any]) -> str:
        return f"coassess:done:{marker['bot_key']}:{marker['update_id']}"

    async def seen(self, marker: Mapping[str, Any], fingerprint: str) -> bool:
        """Whether the update's state was written (and so the update fully processed) before.

        The marker holds a keyed digest of the update (`fingerprint`): an update id alone may come
        again with another update (a bot's ids restart at random after a quiet week; a test server's
        from 1), and such an update must not be taken for one already processed.
        """
        stored = await self.inner.redis.get(self.marker_key(marker))
        return stored is not None and stored == fingerprint.encode()

    async def commit(self, marker: Mapping[str, Any] | None = None, fingerprint: str = "") -> None:
        """Write the held state and the update's marker at once; call after the database commit."""
        held = _held.get()
        if held is None or not held.open:
            return
        held.open = False
        if not held.states and not held.data and marker is None:
            return
        build = self.inner.key_builder.build
        async with self.inner.redis.pipeline(transaction=True) as pipe:
            for key, state in held.states.items():
                if state is None:
                    pipe.delete(build(key, "state"))
                else:
                    pipe.set(build(key, "state"), state, ex=self.inner.state_ttl)
            for key, text in held.data.items():
                if text == "{}":
                    pipe.delete(build(key, "data"))
                else:
                    pipe.set(build(key, "data"), text, ex=self.inner.data_ttl)
            if marker is not None:
                pipe.set(self.marker_key(marker), fingerprint.encode(), ex=self.keep_seconds)
            await pipe.execute()

    def forget_held(self, chat_hash: int, user_hash: int) -> None:
        """Drop held writes of one chat (its state is being erased)."""
        held = _held.get()
        if held is None or not held.open:
            return
        for table in (held.states, held.data):
            for key in [k for k in table if k.chat_id == chat_hash and k.user_id == user_hash]:
                del table[key]

    @staticmethod
    def _open() -> _HeldWrites | None:
        held = _held.get()
        return held if held is not None and held.open else None

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        held = self._open()
        if held is None:
            await self.inner.set_state(key, state)
            return
        held.states[key] = _state_name(state)

    async def get_state(self, key: StorageKey) -> str | None:
        held = self._open()
        if held is not None and key in held.states:
            return held.states[key]
        return await self.inner.get_state(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        held = self._open()
        if held is None:
            await self.inner.set_data(key, data)
            return
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        held.data[key] = self.inner.json_dumps(data) if data else "{}"

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        held = self._open()
        if held is not None and key in held.data:
            return self.inner.json_loads(held.data[key])  # a fresh copy: callers change it in place
        return await self.inner.get_data(key)

    async def close(self) -> None:
        await self.inner.close()


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

    @property
    def redis_writes(self) -> RedisUpdateStorage | None:
        """The Redis storage whose writes wait for the update's database commit, if that is the storage."""
        return self.inner if isinstance(self.inner, RedisUpdateStorage) else None

    def chat_prefix(self, chat_id: int, user_id: int) -> str | None:
        """The key prefix of one chat's rows in `SqlStorage` (None for other storages)."""
        if not isinstance(self.inner, SqlStorage):
            return None
        return SqlStorage.chat_prefix(hashed_id(self.secret, chat_id), hashed_id(self.secret, user_id))

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
        if isinstance(self.inner, RedisUpdateStorage):
            self.inner.forget_held(hashed_id(self.secret, chat_id), hashed_id(self.secret, user_id))
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
