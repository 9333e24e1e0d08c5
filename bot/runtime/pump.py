"""Feeding journalled updates to the dispatcher until each one has been processed.

One lane per chat: updates of a chat go strictly in order, chats run side by side (up to
`concurrency` at once). An update whose processing fails (the database is away) stays at the
head of its lane and in the journal, and is retried with backoff; nothing in that chat
overtakes it, and other chats are not held up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import Update

from bot.runtime.journal import Entry, Journal

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
UPDATE_TIMEOUT = 120.0  # an update that takes longer is abandoned and retried (a hung connection)
STOP_GRACE = 20.0       # on stop, how long the updates in hand may take; the rest stay journalled


def serves(update: dict[str, Any]) -> bool:
    """Whether the bot has anything to do with an update: it works in private chats only.

    Group and channel messages, and the bot being added to or removed from a group, are
    acknowledged and left alone (no reply in a group, where others would see who takes part).
    A tap on an inline-mode message (no `message`) is still answered, to stop its spinner.
    """
    for kind in ("message", "edited_message", "my_chat_member", "callback_query"):
        body = update.get(kind)
        if isinstance(body, dict):
            holder = body.get("message") if kind == "callback_query" else body
            if kind == "callback_query" and not isinstance(holder, dict):
                return True
            chat = holder.get("chat") if isinstance(holder, dict) else None
            return isinstance(chat, dict) and chat.get("type") == "private"
    return False  # channel posts, inline queries, polls, reactions...: nothing here handles them


class UpdatePump:
    def __init__(self, journal: Journal, dp: Dispatcher, bot: Bot, concurrency: int = 64) -> None:
        self.journal = journal
        self.dp = dp
        self.bot = bot
        self._slots = asyncio.Semaphore(concurrency)
        self._lanes: dict[str, deque[Entry]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queued: set[int] = set()
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.processed = 0
        self.retries = 0
        self.skipped = 0

    def submit(self, entry: Entry) -> None:
        """Queue a journalled update in its chat's lane."""
        if entry.update_id in self._queued or self._stop.is_set():
            return
        self._queued.add(entry.update_id)
        self._lanes.setdefault(entry.lane, deque()).append(entry)
        self._idle.clear()
        if entry.lane not in self._tasks:
            self._tasks[entry.lane] = asyncio.create_task(self._run_lane(entry.lane))

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Load what the journal still holds (a crash, a restart), then serve until stopped."""
        for entry in await asyncio.to_thread(self.journal.pending, 100_000):
            self.submit(entry)
        await self._stop.wait()
        await self.drained(finish_current_only=True, timeout=STOP_GRACE)

    async def drained(self, finish_current_only: bool = False, timeout: float | None = None) -> None:
        """Wait until every lane is empty (or, when stopping, until each finished its update in hand)."""
        if finish_current_only:
            tasks = list(self._tasks.values())
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=timeout or STOP_GRACE)
                for task in late:  # still journalled: replayed on the next start
                    task.cancel()
                if late:
                    await asyncio.wait(late, timeout=5)
            return
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _run_lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        failures = 0
        try:
            while queue and not self._stop.is_set():
                entry = queue[0]
                async with self._slots:
                    ok, asked = await self._process(entry)
                if ok:
                    queue.popleft()
                    self._queued.discard(entry.update_id)
                    failures = 0
                    continue
                failures += 1
                # at least as long as Telegram asked (a flood wait), otherwise a growing backoff
                delay = max(asked, min(MAX_BACKOFF, 0.25 * 2 ** min(failures, 8)))
                log.warning("update %s not processed yet; retrying in %.1f s", entry.update_id, delay)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
        finally:
            self._tasks.pop(lane, None)
            if not queue:
                self._lanes.pop(lane, None)
            if not self._tasks:
                self._idle.set()

    async def _process(self, entry: Entry) -> tuple[bool, float]:
        """Feed one update; (done, seconds Telegram asked us to wait before the next try)."""
        if not serves(entry.payload):
            await asyncio.to_thread(self.journal.mark_done, entry.update_id)
            self.skipped += 1
            return True, 0.0
        try:
            update = Update.model_validate(entry.payload, context={"bot": self.bot})
            await asyncio.wait_for(self.dp.feed_update(self.bot, update), UPDATE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - every failure is retried, none is dropped
            self.retries += 1
            await asyncio.to_thread(self.journal.mark_failed, entry.update_id)
            log.info("update %s failed with %s", entry.update_id, exc.__class__.__name__)
            return False, float(exc.retry_after) if isinstance(exc, TelegramRetryAfter) else 0.0
        await asyncio.to_thread(self.journal.mark_done, entry.update_id)
        self.processed += 1
        return True, 0.0
