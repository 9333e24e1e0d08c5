"""One chat, one update at a time, across every worker: a short Redis lock per chat, renewed while held."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from bot.runtime.failures import ChatBusy

log = logging.getLogger(__name__)

LOCK_TTL = 6.0     # a dead worker's lock is gone this long after its last renewal
RENEW_EVERY = 1.5  # a live worker renews well before the lock would run out
LOCK_WAIT = 15.0   # longer than this and the update goes back to its lane, to be tried again


class ChatLocks:
    """`hold(lane)` keeps every other worker off one chat until the update's work is committed.

    The key is a keyed hash of the lane (the chat id): no Telegram id is written to Redis. The lock
    is redis-py's token lock, so a worker whose lock ran out can never release another's.
    """

    def __init__(self, redis: Any, secret: bytes, *, ttl: float = LOCK_TTL, renew_every: float = RENEW_EVERY,
                 wait: float = LOCK_WAIT) -> None:
        self.redis = redis
        self.secret = secret
        self.ttl = ttl
        self.renew_every = renew_every
        self.wait = wait
        self.lost = 0  # locks that ran out while held (a worker frozen longer than the TTL)

    def key(self, lane: str) -> str:
        digest = hmac.new(self.secret, b"chat-lock:" + lane.encode(), hashlib.sha256).hexdigest()[:32]
        return f"coassess:chat:{digest}"

    @asynccontextmanager
    async def hold(self, lane: str) -> AsyncIterator[None]:
        lock = self.redis.lock(self.key(lane), timeout=self.ttl, sleep=0.02, blocking=True,
                               blocking_timeout=self.wait, thread_local=False)
        if not await lock.acquire():
            raise ChatBusy("another worker is still busy with this chat")
        renewer = asyncio.create_task(self._renew(lock))
        try:
            yield
        finally:
            renewer.cancel()
            with suppress(BaseException):
                await renewer
            with suppress(Exception):  # ran out (and maybe taken by another), or Redis away: it expires
                await lock.release()

    async def _renew(self, lock: Any) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await lock.extend(self.ttl, replace_ttl=True)
            except Exception as exc:  # noqa: BLE001 - Redis away: nobody else can take it either
                self.lost += 1
                log.warning("could not renew a chat lock (%s)", exc.__class__.__name__)
                return
