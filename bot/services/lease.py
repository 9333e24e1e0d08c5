"""One sender at a time per database: the lease a broadcast, a reminder run or an outcome holds.

Two senders working through the same deliveries would each believe a row left in `sending`
was abandoned by a crash; the lease makes that belief true. Every kind of lease is released by
the operating system or the database server when its holder dies (even by `kill -9`), so the
command that resumes after a crash never has to wait for a timeout:

- PostgreSQL: a session-level advisory lock on a connection held open for the whole run;
- SQLite: an exclusive `flock` on a file next to the database (a SQLite database is a local
  file, so every sender runs on this machine);
- Redis (when COASSESS_REDIS_URL is set): a key with a short expiry, renewed while the sender
  runs; a key left by a dead process on this machine is taken over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.db import Database

log = logging.getLogger(__name__)

# A fixed advisory-lock number: "coassess sender" in the 63-bit space PostgreSQL offers.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"coassess:sender-lease").digest()[:8], "big") >> 1
REDIS_TTL_MS = 30_000


class SenderBusy(RuntimeError):
    """Another broadcast, reminder run or outcome is being sent from this database."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "another coassess sender (a broadcast, reminders or an outcome) is sending from this "
            "database right now. Wait for it to finish, then run the command again: it carries "
            "on where it stopped." + (f" ({detail})" if detail else ""))


def _database_key(url: str) -> str:
    """A name for the database that carries no password."""
    safe = make_url(url).render_as_string(hide_password=True)
    return hashlib.sha256(safe.encode()).hexdigest()[:16]


# Locks taken by this process on in-memory SQLite databases (no file to lock).
_memory_locks: set[str] = set()


@contextlib.asynccontextmanager
async def sender_lease(db: Database, redis_url: str | None = None) -> AsyncIterator[None]:
    """Hold the sender lease for the duration of the block, or raise `SenderBusy` at once."""
    if redis_url:
        async with _redis_lease(db, redis_url):
            yield
        return
    if db.engine.dialect.name == "postgresql":
        async with _advisory_lease(db):
            yield
        return
    async with _file_lease(db):
        yield


@contextlib.asynccontextmanager
async def _advisory_lease(db: Database) -> AsyncIterator[None]:
    conn = await db.engine.connect()
    try:
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})).scalar()
        await conn.commit()
        if not got:
            raise SenderBusy()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                await conn.commit()
    finally:
        await conn.close()


def _sqlite_file(db: Database) -> Path | None:
    url = make_url(db.url)
    name = url.database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name)


@contextlib.asynccontextmanager
async def _file_lease(db: Database) -> AsyncIterator[None]:
    path = _sqlite_file(db)
    if path is None:
        key = db.url
        if key in _memory_locks:
            raise SenderBusy()
        _memory_locks.add(key)
        try:
            yield
        finally:
            _memory_locks.discard(key)
        return
    import fcntl

    lock_path = path.with_name(path.name + "-sender.lock")  # beside the -wal and -shm files
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SenderBusy() from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@contextlib.asynccontextmanager
async def _redis_lease(db: Database, redis_url: str) -> AsyncIterator[None]:
    from redis.asyncio import Redis

    redis: Any = Redis.from_url(redis_url)
    key = f"coassess:sender-lease:{_database_key(db.url)}"
    host = socket.gethostname()
    value = f"{host}:{os.getpid()}:{secrets.token_hex(8)}"
    try:
        if not await redis.set(key, value, nx=True, px=REDIS_TTL_MS):
            holder = (await redis.get(key) or b"").decode(errors="replace")
            h, _, rest = holder.partition(":")
            pid_text = rest.partition(":")[0]
            # A holder on this machine that no longer exists died without releasing (kill -9):
            # take over now rather than make the officer wait for the expiry.
            stale = h == host and pid_text.isdigit() and not _process_alive(int(pid_text))
            if not (stale and await redis.eval(_RELEASE, 1, key, holder)
                    and await redis.set(key, value, nx=True, px=REDIS_TTL_MS)):
                raise SenderBusy()

        async def renew() -> None:
            while True:
                await asyncio.sleep(REDIS_TTL_MS / 3000)
                with contextlib.suppress(Exception):
                    await redis.eval(_RENEW, 1, key, value, REDIS_TTL_MS)

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(BaseException):
                await renewer
            with contextlib.suppress(Exception):
                await redis.eval(_RELEASE, 1, key, value)
    finally:
        with contextlib.suppress(Exception):
            await redis.aclose()
