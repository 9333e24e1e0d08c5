"""Sending one message to many people: within Telegram's limits, resumable, never twice.

Shared by invitation broadcasts, reminders and outcome messages. The recipients of a
broadcast are resolved once into `Delivery` rows (`pending`). Each send is framed by two
commits: `sending` before the request, `sent` (or `failed`, `stopped`, ...) after it. A sender
that dies between the two leaves the row in `sending`; the next run, which holds the sender
lease (so the dead one is really dead), marks it `uncertain` and does not send it again: a
missing message is better than a second copy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Container, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import Database
from bot.models import Broadcast, Delivery, Participant, utcnow
from bot.services import participants
from bot.services.participants import Keys

log = logging.getLogger(__name__)

STATES = ("pending", "sending", "sent", "failed", "stopped", "skipped", "uncertain")
FINAL = ("sent", "failed", "stopped", "skipped", "uncertain")
# Lateness the pace makes up (see RateLimiter): about three sends at 30/s.
CATCH_UP = 0.1
MAX_FLOODS = 20
TELEGRAM_TEXT_LIMIT = 4096


# --------------------------------------------------------------------------- rate limiting

class RateLimiter:
    """Evenly paced sends, never more than `rate` in any second, one per chat per interval.

    Pure: the caller passes the time, so the rules are tested without sleeping. A send may go
    when all of these allow it:

    - **Pace** (a GCRA, the virtual-scheduling form of a leaky bucket): one send every
      `interval` = 1/rate s, rather than `rate` at once and then a wait. Sends that went late
      (the event loop was busy, no worker was ready; a millisecond lost per send is 3% at
      30/s) keep the schedule if they are at most `catch_up` (0.1 s) late: the next sends make
      it up, never closer than half an interval to each other. A longer delay, or a quiet
      spell, is forgiven and the schedule starts again: never paid back in a burst.
    - **Cap**: at most `capacity` (= floor(rate)) sends in any `window` (one second) of our
      clock, a sliding window, whatever the pace would allow.
    - **Per chat**: `per_chat_interval` seconds between two messages to one chat.
    - **Pause**: after a 429 nobody sends until its retry_after has passed, and the pace
      starts afresh from there (no making up across a pause).

    Network jitter of J seconds can move about J x rate evenly paced sends into a neighbouring
    second at Telegram, which its tolerance of short bursts absorbs; the default rate (25/s,
    under Telegram's 30) is the margin for that, taken once. Guaranteeing the limit in every
    window at Telegram instead costs J/(1+J) of the rate in every window (the former 0.1 s
    margin per 1-second window: 9%); `margin` still does that, the pace slowing to match.

    Args:
        rate: Messages per second for the whole bot (below 1: one message per 1/rate s).
        per_chat_interval: Seconds between two messages to the same chat.
        margin: Seconds added to the cap's window (0: exactly one second).
        catch_up: Seconds of lateness the following sends may make up.
    """

    def __init__(self, rate: float, per_chat_interval: float = 1.0, margin: float = 0.0,
                 catch_up: float = CATCH_UP) -> None:
        if rate <= 0:
            raise ValueError("the rate must be above 0 messages a second")
        base = max(1.0, 1.0 / rate)
        # floor: 25.5/s may not become 26 in some second
        self.capacity = max(1, math.floor(rate * base + 1e-9))
        self.window = base + max(0.0, margin)
        self.interval = self.window / self.capacity
        self.catch_up = max(0.0, catch_up)
        self.min_gap = self.interval / 2
        self.per_chat_interval = max(0.0, per_chat_interval)
        self.paused_until = 0.0
        self._due = -math.inf  # when the next send is due by the pace
        self._previous = -math.inf  # the last send
        self._sent: deque[float] = deque()
        self._last: dict[Hashable, float] = {}

    @property
    def ceiling(self) -> float:
        """The most messages a second this limiter lets out in the long run."""
        return 1.0 / self.interval

    def delay(self, chat: Hashable, now: float) -> float:
        """Seconds to wait before a message to `chat` may go (0: now)."""
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()
        wait = max(self.paused_until, self._due, self._previous + self.min_gap) - now
        if len(self._sent) >= self.capacity:
            # (at least a nanosecond: the sum may round to `now` while the window is still full)
            wait = max(wait, self._sent[-self.capacity] + self.window - now, 1e-9)
        last = self._last.get(chat)
        if last is not None:
            wait = max(wait, last + self.per_chat_interval - now)
        return max(0.0, wait)

    def record(self, chat: Hashable, now: float) -> None:
        """Count a message sent to `chat` at `now` (after `delay` said 0)."""
        self._sent.append(now)
        # up to `catch_up` late: keep the schedule (the next sends make it up); later, or the
        # first send after a quiet spell: the schedule starts again from this send
        self._due = (self._due if now - self._due <= self.catch_up else now) + self.interval
        self._previous = now
        self._last[chat] = now
        if len(self._last) > 4096:  # forget chats whose interval is long over
            horizon = now - self.per_chat_interval
            self._last = {k: t for k, t in self._last.items() if t > horizon}

    def pause(self, seconds: float, now: float) -> None:
        """Telegram said 429: nobody sends until `seconds` have passed, then the pace restarts."""
        self.paused_until = max(self.paused_until, now + seconds)
        self._due = max(self._due, self.paused_until)


class Throttle:
    """The rate limiter on a clock, for many concurrent senders in one event loop."""

    def __init__(self, limiter: RateLimiter, clock: Callable[[], float] = time.monotonic) -> None:
        self.limiter = limiter
        self.clock = clock

    async def acquire(self, chat: Hashable) -> None:
        # No await between delay() and record(): the check and the count are one step.
        while True:
            now = self.clock()
            wait = self.limiter.delay(chat, now)
            if wait <= 0:
                self.limiter.record(chat, now)
                return
            await asyncio.sleep(wait)

    async def wait_unpaused(self) -> None:
        while (wait := self.limiter.paused_until - self.clock()) > 0:
            await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds, self.clock())


# --------------------------------------------------------------------------- messages

@dataclass(frozen=True)
class Outgoing:
    """One person's message: HTML text (already escaped) and an optional link button."""

    text: str
    button: tuple[str, str] | None = None  # (label, https url)

    def markup(self) -> InlineKeyboardMarkup | None:
        if self.button is None:
            return None
        label, url = self.button
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=label, url=url)]])


class Composer(Protocol):
    """Writes one participant's message, or returns None when there is nothing for them."""

    async def __call__(self, session: AsyncSession, participant: Participant) -> Outgoing | None: ...


AfterSent = Callable[[AsyncSession, int], Awaitable[None]]


# --------------------------------------------------------------------------- bookkeeping

@dataclass
class Summary:
    """How many deliveries of a broadcast are in each state."""

    counts: dict[str, int] = field(default_factory=dict)
    # per state, the sum of the participants' record keys (to perturb the counts where shown)
    keys: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        if name in STATES:
            return self.counts.get(name, 0)
        raise AttributeError(name)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINAL)

    def line(self) -> str:
        parts = [f"{self.counts.get(s, 0)} {s}" for s in FINAL]
        if self.counts.get("pending"):
            parts.append(f"{self.counts['pending']} not sent yet")
        return ", ".join(parts)


async def summarise(session: AsyncSession, broadcast_id: int) -> Summary:
    rows = (await session.execute(
        select(Delivery.state, func.count(), func.sum(Participant.record_key))
        .join(Participant, Participant.id == Delivery.participant_id)
        .where(Delivery.broadcast_id == broadcast_id).group_by(Delivery.state))).all()
    return Summary({state: n for state, n, _ in rows}, {state: int(key or 0) for state, _, key in rows})


async def find_broadcast(session: AsyncSession, campaign_id: str, key: str) -> Broadcast | None:
    return await session.scalar(select(Broadcast).where(Broadcast.campaign_id == campaign_id,
                                                        Broadcast.key == key))


async def open_broadcast(session: AsyncSession, *, campaign_id: str, kind: str, key: str,
                         filters: dict[str, Any], actor: str,
                         outcome_id: int | None = None) -> tuple[Broadcast, bool]:
    """The broadcast for this campaign and key, created (flushed, not committed) if new."""
    existing = await find_broadcast(session, campaign_id, key)
    if existing is not None:
        return existing, False
    b = Broadcast(campaign_id=campaign_id, kind=kind, key=key, filters=filters,
                  outcome_id=outcome_id, status="running", created_by=actor)
    session.add(b)
    await session.flush()
    return b, True


async def add_deliveries(session: AsyncSession, broadcast_id: int, participant_ids: Iterable[int]) -> int:
    """Add `pending` rows for participants not yet in the broadcast; returns how many were added."""
    have = set((await session.scalars(select(Delivery.participant_id).where(
        Delivery.broadcast_id == broadcast_id))).all())
    new = sorted(set(participant_ids) - have)
    session.add_all([Delivery(broadcast_id=broadcast_id, participant_id=pid, state="pending")
                     for pid in new])
    await session.flush()
    return len(new)


async def recover(session: AsyncSession, broadcast_id: int) -> int:
    """Rows a dead sender left in `sending` become `uncertain` (and are not sent again)."""
    result = await session.execute(
        update(Delivery).where(Delivery.broadcast_id == broadcast_id, Delivery.state == "sending")
        .values(state="uncertain", error="interrupted while sending; not sent again in case it "
                                         "arrived", updated_at=utcnow()))
    return result.rowcount or 0


# Failures worth another run: Telegram was too busy (429 more than MAX_FLOODS times) or had a
# fault of its own (5xx) on every try. A refused request (400: chat not found, text too long)
# would be refused again; 403 is `stopped`; a send that may have arrived is `uncertain`.
PASSING_FAILURES = frozenset({"TelegramRetryAfter", "TelegramServerError", "RestartingTelegram"})


def worth_retrying(error: str | None) -> bool:
    """Whether a `failed` delivery failed for a passing reason (its error as the sender wrote it)."""
    return bool(error) and str(error).split(":", 1)[0].strip() in PASSING_FAILURES


async def requeue_failed(session: AsyncSession, broadcast_id: int,
                         eligible: Container[int] | None = None) -> int:
    """Deliveries that `failed` for a passing reason go back to `pending` (flushed, not committed).

    Only `failed` rows, never `uncertain`, `sent`, `stopped` or `skipped` ones; with `eligible`,
    only those participants. Returns how many.
    """
    rows = (await session.execute(select(Delivery.participant_id, Delivery.error).where(
        Delivery.broadcast_id == broadcast_id, Delivery.state == "failed"))).all()
    ids = sorted(pid for pid, error in rows
                 if worth_retrying(error) and (eligible is None or pid in eligible))
    for start in range(0, len(ids), 500):
        await session.execute(update(Delivery).where(
            Delivery.broadcast_id == broadcast_id, Delivery.state == "failed",
            Delivery.participant_id.in_(ids[start:start + 500])).values(state="pending",
                                                                        updated_at=utcnow()))
    await session.flush()
    return len(ids)


# --------------------------------------------------------------------------- sending

class DeliveryAborted(RuntimeError):
    """The run stopped before the end (Telegram unreachable, wrong token); the rest is pending."""


def _never_reached(exc: TelegramNetworkError) -> bool:
    """A connection that could not even be opened: the message surely did not arrive."""
    return isinstance(exc.__cause__, aiohttp.ClientConnectorError)


def _short(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {message}"[:300]


ProgressHook = Callable[[str], None]


def plain_bot(bot: Bot) -> tuple[Bot, bool]:
    """A bot on the same Bot API server without the session's request middlewares.

    The runtime's bot retries timeouts by itself; for a broadcast a timeout may mean the
    message arrived, and a 429 retried inside the session would slip past the rate limiter.
    The sender decides both itself, so it sends through a session of its own. Returns the bot
    and whether the caller must close its session. Test doubles are used as they are.
    """
    if type(bot) is not Bot or not isinstance(bot.session, AiohttpSession):
        return bot, False
    return Bot(bot.token, session=AiohttpSession(api=bot.session.api), default=bot.default), True


class Sender:
    """Works through a broadcast's pending deliveries with a few concurrent workers.

    Args:
        db: The database.
        keys: To decrypt each recipient's chat id, just before sending.
        bot: The bot that sends.
        rate: Messages per second overall (COASSESS_BROADCAST_RATE).
        per_chat_interval: Seconds between two messages to one chat.
        max_attempts: Tries for errors that are worth retrying (Telegram's 5xx, no connection).
        backoff: First wait between tries, doubled each time.
        request_timeout: Seconds to wait for Telegram's answer to one send.
        workers: Concurrent sends (default: enough to reach the rate).
        on_result: Called with the final state of each delivery (for a progress bar).
    """

    def __init__(self, db: Database, keys: Keys, bot: Bot, *, rate: float = 25.0,
                 per_chat_interval: float = 1.0, max_attempts: int = 3, backoff: float = 0.5,
                 request_timeout: int = 20, workers: int | None = None,
                 on_result: ProgressHook | None = None, margin: float = 0.0) -> None:
        self.db = db
        self.keys = keys
        self.given_bot = bot
        self.bot = bot
        self.throttle = Throttle(RateLimiter(rate, per_chat_interval, margin))
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.request_timeout = request_timeout
        self.workers = workers or max(1, min(16, math.ceil(rate / 2.5)))
        self.on_result = on_result
        # this run's own results: earlier runs of the same broadcast are not this run's figures
        self.tally: Counter[str] = Counter()

    async def run(self, broadcast_id: int, compose: Composer, after_sent: AfterSent | None = None) -> Summary:
        """Send every pending delivery; mark the broadcast done when none is left.

        Returns this run's figures (what it sent, skipped, ...), with `pending` for what is
        still left of the whole broadcast.
        """
        self.tally = Counter()
        async with self.db.session() as s:
            pending = list((await s.scalars(select(Delivery.participant_id).where(
                Delivery.broadcast_id == broadcast_id, Delivery.state == "pending")
                .order_by(Delivery.participant_id))).all())
        queue: asyncio.Queue[int] = asyncio.Queue()
        for pid in pending:
            queue.put_nowait(pid)

        async def worker() -> None:
            while True:
                try:
                    pid = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                state = await self._deliver(broadcast_id, pid, compose, after_sent)
                if state:
                    self.tally[state] += 1
                if state and self.on_result:
                    self.on_result(state)

        self.bot, own = plain_bot(self.given_bot)
        tasks = [asyncio.create_task(worker()) for _ in range(min(self.workers, max(1, len(pending))))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            if own:
                await self.bot.session.close()
            self.bot = self.given_bot
        async with self.db.session() as s:
            summary = await summarise(s, broadcast_id)
            if not summary.pending and not summary.sending:
                await s.execute(update(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.status != "done")
                                .values(status="done", finished_at=utcnow()))
                await s.commit()
        return self.run_summary(summary.pending)

    def run_summary(self, left: int = 0) -> Summary:
        """This run's figures, and how many of the broadcast are still to send."""
        counts = {state: n for state, n in self.tally.items() if n}
        if left:
            counts["pending"] = left
        return Summary(counts)

    async def _set(self, broadcast_id: int, pid: int, state: str, error: str | None = None,
                   stop_participant: bool = False, after_sent: AfterSent | None = None) -> None:
        async with self.db.session() as s:
            await s.execute(update(Delivery).where(
                Delivery.broadcast_id == broadcast_id, Delivery.participant_id == pid)
                .values(state=state, error=error, updated_at=utcnow()))
            if stop_participant:
                await s.execute(update(Participant).where(Participant.id == pid)
                                .values(stopped=True, allow_invitations=False))
            if after_sent is not None:
                await after_sent(s, pid)
            await s.commit()

    async def _claim(self, broadcast_id: int, pid: int,
                     compose: Composer) -> tuple[int, Outgoing] | str | None:
        """Mark the row `sending` and write the message; a string is the reason to skip."""
        async with self.db.session() as s:
            # Read first, then write: the write transaction is one UPDATE and its commit, so
            # concurrent workers do not queue for SQLite's single write lock while this one
            # decrypts and composes. (A /stop in between is as if it came just after the claim.)
            person = await s.get(Participant, pid)
            reason = None
            chat = outgoing = None
            if person is None or person.stopped:
                reason = "the participant asked for no more messages"
            else:
                chat = await participants.chat_id(s, self.keys, pid)
                if chat is None:
                    reason = "no way to reach this participant"
                else:
                    outgoing = await compose(s, person)
                    if outgoing is None:
                        reason = "no message for this participant's language or group"
            await s.rollback()  # end the read before the write
            skip = reason is not None or chat is None or outgoing is None
            claimed = await s.execute(update(Delivery).where(
                Delivery.broadcast_id == broadcast_id, Delivery.participant_id == pid,
                Delivery.state == "pending").values(
                    state="skipped" if skip else "sending", error=reason if skip else None,
                    attempts=Delivery.attempts + (0 if skip else 1), updated_at=utcnow()))
            # `sending` is on disk before the request leaves: a crash after this never resends.
            await s.commit()
            if not claimed.rowcount:
                return None  # gone (erased with /forget) or taken care of already
            if skip or chat is None or outgoing is None:
                return reason or "skipped"
            return chat, outgoing

    async def _deliver(self, broadcast_id: int, pid: int, compose: Composer,
                       after_sent: AfterSent | None) -> str | None:
        tries = floods = 0
        while True:
            # Wait out a 429 before claiming, so a crash during the pause leaves rows pending.
            await self.throttle.wait_unpaused()
            claim = await self._claim(broadcast_id, pid, compose)
            if claim is None:
                return None
            if isinstance(claim, str):
                return "skipped"
            chat, outgoing = claim
            await self.throttle.acquire(pid)
            tries += 1
            try:
                await self.bot.send_message(chat, outgoing.text, reply_markup=outgoing.markup(),
                                            request_timeout=self.request_timeout)
            except TelegramRetryAfter as exc:
                self.throttle.pause(exc.retry_after)
                floods += 1
                tries -= 1  # Telegram's pace, not a fault of this message
                if floods > MAX_FLOODS:
                    await self._set(broadcast_id, pid, "failed", _short(exc))
                    return "failed"
                await self._set(broadcast_id, pid, "pending", f"Telegram asked to wait {exc.retry_after} s")
                continue
            except TelegramForbiddenError as exc:
                # Blocked or deleted account: never message this person again.
                await self._set(broadcast_id, pid, "stopped", _short(exc), stop_participant=True)
                return "stopped"
            except TelegramUnauthorizedError as exc:
                await self._set(broadcast_id, pid, "pending", _short(exc))
                raise DeliveryAborted("Telegram refused the bot token (401 Unauthorized). Check "
                                      "COASSESS_BOT_TOKEN; nothing more was sent.") from exc
            except TelegramBadRequest as exc:
                # The same request would be refused again: record why and move on.
                await self._set(broadcast_id, pid, "failed", _short(exc))
                return "failed"
            except TelegramNetworkError as exc:
                if not _never_reached(exc):
                    # Timed out or cut off after sending: it may have arrived. Do not repeat it.
                    await self._set(broadcast_id, pid, "uncertain", _short(exc))
                    return "uncertain"
                await self._set(broadcast_id, pid, "pending", _short(exc))
                if tries >= self.max_attempts:
                    raise DeliveryAborted(f"cannot reach Telegram ({_short(exc)}). Nothing is lost: "
                                          "run the same command again later to carry on.") from exc
                await asyncio.sleep(self.backoff * 2 ** (tries - 1))
                continue
            except TelegramAPIError as exc:  # 5xx and anything else Telegram answered
                if tries >= self.max_attempts:
                    await self._set(broadcast_id, pid, "failed", _short(exc))
                    return "failed"
                await self._set(broadcast_id, pid, "pending", _short(exc))
                await asyncio.sleep(self.backoff * 2 ** (tries - 1))
                continue
            await self._set(broadcast_id, pid, "sent", None, after_sent=after_sent)
            return "sent"


def visible_length(parts: Iterable[str]) -> int:
    """Characters Telegram counts for plain (unescaped) parts of a message."""
    return sum(len(p) for p in parts)
