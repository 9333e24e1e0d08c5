"""One chat, one update at a time, across every worker: a short Redis lock per chat, renewed while held."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from bot.runtime.failures import ChatBusy

log = logging.getLogger(__name__)

LOCK_TTL = 6.0     # a dead worker's lock is gone this long after its last renewal
RENEW_EVERY = 1.5  # a live worker renews well before the lock would run out
LOCK_WAIT = 15.0   # longer than this and the update goes back to its lane, to be tried again

# PEXPIRE only while the lock still holds our token (never lengthen another worker's lock)
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class ChatLocks:
    """`hold(lane)` keeps every other worker off one chat until the update's work is committed.

    The key is a keyed hash of the lane (the chat id): no Telegram id is written to Redis. The lock
    is redis-py's token lock, so a worker whose lock ran out can never release another's. Renewal
    runs in a thread of its own with a blocking client: a busy event loop (a slow first import, a
    CPU-starved machine) must not let a live worker's locks run out, while a dead worker's thread
    dies with it and its locks expire within `ttl`.
    """

    def __init__(self, redis: Any, secret: bytes, *, url: str | None = None, ttl: float = LOCK_TTL,
                 renew_every: float = RENEW_EVERY, wait: float = LOCK_WAIT) -> None:
        self.redis = redis
        self.secret = secret
        self.url = url
        self.ttl = ttl
        self.renew_every = renew_every
        self.wait = wait
        self.lost = 0  # locks that ran out while held
        self._held: dict[str, bytes] = {}
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def key(self, lane: str) -> str:
        digest = hmac.new(self.secret, b"chat-lock:" + lane.encode(), hashlib.sha256).hexdigest()[:32]
        return f"coassess:chat:{digest}"

    @asynccontextmanager
    async def hold(self, lane: str) -> AsyncIterator[None]:
        name = self.key(lane)
        lock = self.redis.lock(name, timeout=self.ttl, sleep=0.02, blocking=True,
                               blocking_timeout=self.wait, thread_local=False)
        if not await lock.acquire():
            raise ChatBusy("another worker is still busy with this chat")
        token = lock.local.token
        with self._guard:
            self._held[name] = token if isinstance(token, bytes) else str(token).encode()
        self._start_renewing()
        try:
            yield
        finally:
            with self._guard:
                self._held.pop(name, None)
            with suppress(Exception):  # ran out (and maybe taken by another), or Redis away: it expires
                await lock.release()

    def _start_renewing(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._renew_loop, name="coassess-chat-locks", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        import redis as redis_sync

        client = redis_sync.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2) if self.url \
            else redis_sync.Redis(**_sync_kwargs(self.redis))
        extend = client.register_script(_EXTEND)
        ttl_ms = int(self.ttl * 1000)
        while not self._stop.wait(self.renew_every):
            with self._guard:
                held = list(self._held.items())
            for name, token in held:
                try:
                    if not extend(keys=[name], args=[token, ttl_ms]):
                        with self._guard:
                            still = self._held.get(name) == token
                        if still:
                            self.lost += 1
                            log.warning("a chat lock ran out while its update was still running")
                except Exception as exc:  # noqa: BLE001 - Redis away: nobody else can take it either
                    log.debug("could not renew a chat lock (%s)", exc.__class__.__name__)
                    break
        client.close()

    def close(self) -> None:
        self._stop.set()


def _sync_kwargs(async_redis: Any) -> dict[str, Any]:
    """Connection settings of an asyncio Redis client, for a blocking one."""
    kw = dict(async_redis.connection_pool.connection_kwargs)
    return {k: kw[k] for k in ("host", "port", "db", "username", "password") if k in kw} | {
        "socket_timeout": 2, "socket_connect_timeout": 2}
