"""Feeding journalled updates to the dispatcher until each one has been processed.

One lane per chat: updates of a chat go strictly in order, chats run side by side (up to
`concurrency` at once); with several workers, a per-chat Redis lock (`ChatLocks`) keeps the other
workers off the chat until the update's work is committed. What a failure means is decided in
`bot.runtime.failures`: a temporary one (the database or Redis away, Telegram failing) keeps the
update at the head of its lane and in the journal, retried with backoff, and a button tap is told
"One moment…" meanwhile; an update that fails by its own fault is set aside after a few tries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import html
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext, suppress

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import Update

from bot.runtime.failures import DATABASE, REDIS, ChatBusy, DatabaseWaiting, Failure, cause, describe
from bot.runtime.journal import Entry, Journal
from bot.runtime.locks import ChatLocks
from bot.runtime.retry import SentScreens, current_screens
from dialogs.screens import AnsweredTaps, answered_taps

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
UPDATE_TIMEOUT = 120.0  # an update that takes longer is abandoned and retried (a hung connection)
STOP_GRACE = 20.0       # on stop, how long the updates in hand may take; the rest stay journalled
UPDATE_ATTEMPTS = 3     # an update that fails this often by its own fault is set aside
CALLBACK_GRACE = 4.0    # a tap not handled by then is answered "One moment…" (Telegram waits ~15 s)
PROBE_EVERY = 1.0       # in an outage, how often the database and Redis are asked whether they are back
RESCAN_EVERY = 5.0      # how often the journal is read for updates put back by `coassess updates replay`


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


class Outage:
    """One log line when the system's own fault starts holding updates back, one when it ends."""

    def __init__(self) -> None:
        self.part: str | None = None
        self.since = 0.0
        self.waited: set[int] = set()
        self.count = 0  # outages so far (for /healthz and tests)

    @property
    def active(self) -> bool:
        return self.part is not None

    def failed(self, update_id: int, part: str, real: BaseException) -> None:
        self.waited.add(update_id)
        if self.part is None:
            self.part, self.since = part, time.monotonic()
            self.count += 1
            log.warning("%s is not answering (%s): updates wait in the journal and are retried; button "
                        "taps are told \"One moment\"", part, describe(real))

    def succeeded(self) -> None:
        if self.part is None:
            return
        log.warning("%s is answering again after %.0f s; %d updates waited and are being processed",
                    self.part, time.monotonic() - self.since, len(self.waited))
        self.part = None
        self.waited = set()


class UpdatePump:
    def __init__(self, journal: Journal, dp: Dispatcher, bot: Bot, concurrency: int = 64,
                 locks: ChatLocks | None = None, probe: Callable[[], Awaitable[None]] | None = None) -> None:
        self.journal = journal
        self.dp = dp
        self.bot = bot
        self.locks = locks
        self.probe = probe  # raises while the database (or Redis) is away
        self.ready = asyncio.Event()  # cleared while the database could not be upgraded at start
        self.ready.set()
        self.waiting_cause: BaseException | None = None
        self.outage = Outage()
        self._slots = asyncio.Semaphore(concurrency)
        self._lanes: dict[str, deque[Entry]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queued: set[int] = set()
        self._answered: set[int] = set()  # callback queries already told "One moment"
        self.taps = AnsweredTaps()  # every tap answered, by this runtime or by a handler
        self._timers: dict[int, asyncio.Task[None]] = {}  # taps to answer if not handled in time
        self._answers: set[asyncio.Task[None]] = set()
        self._screens: dict[int, SentScreens] = {}  # what an update sent, while it may be retried
        self._recovered: set[int] = set()  # updates found in the journal: an earlier run may have sent screens
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._helpers: list[asyncio.Task[None]] = []
        self.processed = 0
        self.retries = 0
        self.skipped = 0
        self.set_aside = 0
        self.held_callbacks = 0

    def submit(self, entry: Entry) -> None:
        """Queue a journalled update in its chat's lane."""
        if entry.update_id in self._queued or self._stop.is_set():
            return
        self._queued.add(entry.update_id)
        self._lanes.setdefault(entry.lane, deque()).append(entry)
        self._idle.clear()
        self._hold_callback_later(entry)
        if entry.lane not in self._tasks:
            self._tasks[entry.lane] = asyncio.create_task(self._run_lane(entry.lane))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Retry the waiting updates now (the database or Redis is back)."""
        self._wake.set()
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Load what the journal still holds (a crash, a restart), then serve until stopped."""
        for entry in await asyncio.to_thread(self.journal.pending, 100_000):
            self._recovered.add(entry.update_id)
            self.submit(entry)
            # a tap journalled before a crash has waited the whole restart: stop its spinner now
            self._answer_callback(entry)
        self._helpers = [asyncio.create_task(self._watch_outage(), name="coassess-outage-probe"),
                         asyncio.create_task(self._rescan(), name="coassess-journal-rescan")]
        await self._stop.wait()
        await self.drained(finish_current_only=True, timeout=STOP_GRACE)
        for task in [*self._helpers, *self._timers.values(), *self._answers]:
            task.cancel()
        await asyncio.gather(*self._helpers, *self._timers.values(), *self._answers, return_exceptions=True)

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

    async def _sleep(self, seconds: float) -> None:
        """Wait before a retry; cut short by stop, or by the end of an outage."""
        wake = self._wake
        waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _watch_outage(self) -> None:
        """While updates wait for the database or Redis, ask them every second; wake the lanes when back."""
        while not self._stop.is_set():
            await asyncio.sleep(PROBE_EVERY)
            if not (self.outage.part in (DATABASE, REDIS)) or self.probe is None or not self.ready.is_set():
                continue
            try:
                await asyncio.wait_for(self.probe(), 5)
            except Exception:  # noqa: BLE001 - still away
                continue
            self.wake()

    async def _rescan(self) -> None:
        """Updates an administrator put back in line (`coassess updates replay`) while the bot runs."""
        while not self._stop.is_set():
            await asyncio.sleep(RESCAN_EVERY)
            with suppress(Exception):
                for uid in await asyncio.to_thread(self.journal.pending_ids):
                    if uid not in self._queued:
                        entry = await asyncio.to_thread(self.journal.entry, uid)
                        if entry is not None and uid not in self._queued:
                            self._recovered.add(uid)
                            self.submit(entry)

    async def _run_lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        failures = 0
        try:
            while queue and not self._stop.is_set():
                entry = queue[0]
                ok, asked = await self._process(entry)
                if ok:
                    queue.popleft()
                    self._queued.discard(entry.update_id)
                    self._recovered.discard(entry.update_id)
                    self._answered.discard(entry.update_id)
                    if (query_id := _callback_id(entry.payload)) is not None:
                        self.taps.forget(query_id)
                    timer = self._timers.pop(entry.update_id, None)
                    if timer is not None:
                        timer.cancel()
                    failures = 0
                    continue
                failures += 1
                # at least as long as Telegram asked (a flood wait), otherwise a growing backoff
                delay = asked if asked < 0 else max(asked, min(MAX_BACKOFF, 0.25 * 2 ** min(failures, 8)))
                log.debug("update %s not processed yet; retrying in %.1f s", entry.update_id, delay)
                await self._sleep(abs(delay))
        finally:
            self._tasks.pop(lane, None)
            if not queue:
                self._lanes.pop(lane, None)
            if not self._tasks:
                self._idle.set()

    async def _process(self, entry: Entry) -> tuple[bool, float]:
        """Feed one update; (done, seconds to wait before the next try: negative = a fixed short wait)."""
        if not serves(entry.payload):
            await asyncio.to_thread(self.journal.mark_done, entry.update_id)
            self.skipped += 1
            return True, 0.0
        try:
            if not self.ready.is_set():
                raise DatabaseWaiting("the database was not reachable at start") from self.waiting_cause
            update = Update.model_validate(entry.payload, context={"bot": self.bot})
            lock: AbstractAsyncContextManager[None] = self.locks.hold(entry.lane) if self.locks else nullcontext()
            screens = self._screens.get(entry.update_id)
            if screens is None:
                screens = self._screens[entry.update_id] = await self._sent_screens(entry.update_id)
            screens.again()
            token = current_screens.set(screens)
            taps = answered_taps.set(self.taps)
            try:
                async with lock, self._slots:
                    await asyncio.wait_for(self.dp.feed_update(self.bot, update), UPDATE_TIMEOUT)
            finally:
                answered_taps.reset(taps)
                current_screens.reset(token)
        except Exception as exc:  # noqa: BLE001 - every failure is either retried or set aside, none dropped
            self.retries += 1
            done, wait = await self._failed(entry, exc)
            if done:
                self._screens.pop(entry.update_id, None)
            return done, wait
        self._screens.pop(entry.update_id, None)
        await asyncio.to_thread(self.journal.mark_done, entry.update_id)
        self.processed += 1
        self.outage.succeeded()
        return True, 0.0

    async def _sent_screens(self, update_id: int) -> SentScreens:
        """What the update sent so far: kept in the journal, so that a worker killed after a screen
        went out (before the update was done) edits that screen when it replays the update, instead
        of sending a second copy. Only an update found in the journal at start (or put back in line)
        can have sent anything before."""
        earlier: list[tuple[str, int, str]] = []
        if update_id in self._recovered:
            earlier = await asyncio.to_thread(self.journal.sent, update_id)

        async def keep(position: int, chat_id: str, message_id: int, kind: str) -> None:
            try:
                await asyncio.to_thread(self.journal.remember_sent, update_id, position, chat_id, message_id, kind)
            except Exception as exc:  # noqa: BLE001 - the message is out: only a replay after a crash would repeat it
                log.warning("could not note a sent message in the update journal (%s)", describe(exc))

        return SentScreens(sent=earlier, keep=keep)

    async def _failed(self, entry: Entry, exc: BaseException) -> tuple[bool, float]:
        kind, part, real = cause(exc)
        if kind is Failure.TEMPORARY:
            self._answer_callback(entry)
            if isinstance(real, ChatBusy):
                log.debug("update %s waits for another worker to finish its chat", entry.update_id)
                return False, -0.05
            if isinstance(real, TelegramRetryAfter):  # a flood wait, not an outage
                log.info("update %s waits %s s: Telegram asked to slow down", entry.update_id, real.retry_after)
                return False, float(real.retry_after)
            self.outage.failed(entry.update_id, part, real)
            log.debug("update %s not processed: %s", entry.update_id, describe(real))
            return False, 0.0
        attempts = await asyncio.to_thread(self.journal.mark_failed, entry.update_id)
        if attempts < UPDATE_ATTEMPTS:
            log.info("update %s failed (%s); try %d of %d", entry.update_id, describe(exc), attempts,
                     UPDATE_ATTEMPTS)
            return False, 0.0
        reason = describe(exc)
        await asyncio.to_thread(self.journal.set_aside, entry.update_id, reason)
        self.set_aside += 1
        log.error("update %s set aside after %d tries: %s. The chat goes on with its next update; see "
                  "`coassess updates list` to replay or drop it", entry.update_id, attempts, reason)
        self._answer_callback(entry, text=False)
        return True, 0.0

    def _hold_callback_later(self, entry: Entry) -> None:
        """A tap's spinner must stop within Telegram's limit, whatever holds the update up (an
        outage, a slow worker, updates of the same chat before it)."""
        if _callback_id(entry.payload) is None or entry.update_id in self._answered:
            return

        async def later() -> None:
            await asyncio.sleep(CALLBACK_GRACE)
            self._timers.pop(entry.update_id, None)
            self._answer_callback(entry)

        self._timers[entry.update_id] = asyncio.create_task(later())

    def _answer_callback(self, entry: Entry, text: bool = True) -> None:
        """Answer a button tap straight from the journalled update: "One moment…" in the person's language."""
        query_id = _callback_id(entry.payload)
        if query_id is None or entry.update_id in self._answered:
            return
        self._answered.add(entry.update_id)
        if not self.taps.claim(query_id):  # the handler answered it already
            return
        self.held_callbacks += 1
        from dialogs.i18n import base_language, tr

        sender = entry.payload["callback_query"].get("from")
        code = sender.get("language_code") if isinstance(sender, dict) else None
        words = html.unescape(tr(base_language(code if isinstance(code, str) else None)).gettext(
            "One moment…")) if text else None

        async def answer() -> None:
            try:
                await self.bot.answer_callback_query(query_id, text=words)
            except Exception as exc:  # noqa: BLE001 - too late or Telegram away: nothing more to do
                log.debug("could not answer a waiting tap (%s)", exc.__class__.__name__)

        task = asyncio.create_task(answer())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)


def _callback_id(payload: dict[str, Any]) -> str | None:
    query = payload.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("id"), str) and query["id"]:
        return query["id"]
    return None
