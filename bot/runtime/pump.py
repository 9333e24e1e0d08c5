"""Feeding journalled updates to the dispatcher until each one has been processed.

Updates of one chat go strictly in order; chats run side by side. An update whose processing
fails for a transient reason (the database is away) stays in the journal and is retried with
backoff; nothing behind it in the same chat overtakes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from aiogram import Bot, Dispatcher

from bot.runtime.journal import Entry, Journal

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


class UpdatePump:
    def __init__(self, journal: Journal, dp: Dispatcher, bot: Bot, concurrency: int = 32) -> None:
        self.journal = journal
        self.dp = dp
        self.bot = bot
        self.concurrency = concurrency
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = defaultdict(int)
        self.processed = 0
        self.retries = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Process until stopped; the update in hand is always finished first."""
        while not self._stop.is_set():
            did = await self.drain_once()
            if not did:
                self._wake.clear()
                delay = self._next_retry_delay()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                except TimeoutError:
                    pass

    def _next_retry_delay(self) -> float:
        if not self._retry_at:
            return 1.0
        return max(0.05, min(self._retry_at.values()) - time.monotonic())

    async def drain_once(self) -> int:
        """One pass over the pending updates; returns how many were processed."""
        entries = await asyncio.to_thread(self.journal.pending, 1000)
        if not entries:
            return 0
        lanes: dict[str, list[Entry]] = defaultdict(list)
        for e in entries:
            lanes[e.lane].append(e)
        now = time.monotonic()
        ready = [lane for lane in lanes if self._retry_at.get(lane, 0) <= now]
        sem = asyncio.Semaphore(self.concurrency)
        done = 0

        async def run_lane(lane: str) -> None:
            nonlocal done
            async with sem:
                for entry in lanes[lane]:
                    if self._stop.is_set():
                        return
                    if not await self._process(entry):
                        return  # keep order: the rest of this chat waits for the retry
                    done += 1

        await asyncio.gather(*(run_lane(lane) for lane in ready))
        return done

    async def _process(self, entry: Entry) -> bool:
        try:
            await self.dp.feed_raw_update(self.bot, entry.payload)
        except Exception as exc:  # noqa: BLE001 - every failure is retried, none is dropped
            n = self._failures[entry.lane] = self._failures[entry.lane] + 1
            delay = min(MAX_BACKOFF, 0.25 * 2 ** min(n, 8))
            self._retry_at[entry.lane] = time.monotonic() + delay
            self.retries += 1
            await asyncio.to_thread(self.journal.mark_failed, entry.update_id)
            log.warning("update %s not processed yet (%s); retrying in %.1f s", entry.update_id,
                        exc.__class__.__name__, delay)
            return False
        self._failures.pop(entry.lane, None)
        self._retry_at.pop(entry.lane, None)
        await asyncio.to_thread(self.journal.mark_done, entry.update_id)
        self.processed += 1
        return True
