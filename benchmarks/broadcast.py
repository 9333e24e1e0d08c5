"""Broadcast: an invitation to N recipients through the sandbox Bot API, at Telegram's 30 messages/s.

The real machinery (`plan_invitation`, `send_plan`: the rate limiter, the `Delivery` rows, the
sender's own HTTP session) talks to the sandbox over HTTP; the sandbox enforces 30 messages a
second for the bot and one a second per chat, and answers 429 (retry after 1 s) to one call in
every `flood_every`. Everything is read back from the sandbox's call log: the achieved rate as
a share of the configured one (the baseline), the busiest one-second window, and every
recipient's count of delivered messages (duplicates and losses).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from benchmarks.measure import summary

RATE = 30.0  # messages a second: Telegram's limit for a bot, configured in the sender and the sandbox
FIRST_USER = 700_000_001
BOT_USERNAME = "coassess_sandbox_bot"
# What pyinstrument showed, written by hand.
PROFILE_NOTES = (
    "The sender is idle most of the time (the event loop waits in the rate limiter); each message"
    " costs two short transactions by design (`sending` committed before the request, `sent` "
    "after), aiogram's request and response handling, and in the sandbox the Bot API's own work "
    "(formatting, building the Message). The limiter, not the CPU, sets the rate. It used to be a"
    " sliding window of 30 per 1.1 s (a 0.1 s jitter margin in every window): a ceiling of 0.909,"
    " sent in bursts (median gap 11 ms), 0.889 measured. It now paces one send every 1/30 s "
    "(median gap 33 ms), never more than 30 in any second of its own clock, and lets sends that "
    "went up to 0.1 s late be made up (in the limiter's tests, waits that end up to 10 ms late "
    "cost 13% of the rate without it, 1% with it); each injected 429 still pauses every sender "
    "for 1 s, so 0.97 is the most this run can reach. The claim used to hold SQLite's write lock "
    "while it decrypted and composed (claims of 1.3 s at p99 with the load at 9, the busy handler"
    " sleeping; 0.3-0.4 s after); it now reads first and writes one UPDATE, and at 99% of sends "
    "another of the 12 workers is already waiting for the next slot. The busiest second at the "
    "Bot API can exceed 30 by one or two: network and event-loop jitter moves an evenly paced "
    "send into the next second, which the Bot API's burst allowance absorbs (no 429 besides the "
    "injected ones)."
)


async def _seed(db: Any, keys: Any, sandbox: Any, recipients: int) -> None:
    """Participants with a contact (in bulk), and the same people in the sandbox with an open chat."""
    from bot.models import Contact, Participant

    languages = ("en", "ar", "so", "uk", "fa", "es")
    ids = range(FIRST_USER, FIRST_USER + recipients)
    async with db.session() as s:
        for start in range(0, recipients, 2000):
            chunk = ids[start:start + 2000]
            people = [{"pseudonym": keys.pseudonym(uid), "language": languages[uid % len(languages)]}
                      for uid in chunk]
            pids = (await s.execute(
                insert(Participant).returning(Participant.id, sort_by_parameter_order=True), people)
            ).scalars().all()
            await s.execute(insert(Contact), [
                {"participant_id": pid, "chat_ciphertext": keys.cipher.encrypt_chat_id(uid)}
                for pid, uid in zip(pids, chunk, strict=True)])
        await s.commit()
    world = sandbox.state
    for uid in ids:  # in-process: seeding is not what is measured
        world.upsert_user(uid, language_code=languages[uid % len(languages)])
        world.user_sends(uid, {"type": "text", "text": "/start"})
    world.keep_last(0)  # nobody polls these /start updates


async def _inject_floods(sandbox: Any, every: int, stop: asyncio.Event) -> int:
    """One 429 (retry after 1 s) for the next send each time another `every` sends went out."""
    injected, next_at = 0, every
    while not stop.is_set():
        sent = sandbox.state.counters["calls_by_method"].get("sendMessage", 0)
        if sent >= next_at:
            sandbox.state.add_fault("flood", 1, method="sendMessage", retry_after=1)
            injected += 1
            next_at += every
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except TimeoutError:
            pass
    return injected


def _ceiling() -> float:
    """The most the sender's limiter lets out at RATE in the long run (one send per interval)."""
    from bot.services.delivery import RateLimiter

    return RateLimiter(RATE).ceiling


def _windows(times: list[float], seconds: float) -> list[float]:
    """Messages per second in consecutive windows of `seconds` (the last, partial one left out)."""
    if not times:
        return []
    start, out, n = times[0], [], 0
    for t in times:
        while t >= start + seconds:
            out.append(n / seconds)
            start, n = start + seconds, 0
        n += 1
    return out


async def run_async(*, recipients: int = 10_000, flood_every: int = 1000, work_dir: Path,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    from bot.db import Database
    from bot.models import Campaign
    from bot.runtime.app import make_bot
    from bot.sandbox import Limits, Sandbox, peak_rate
    from bot.services.broadcasts import InvitationFilters, plan_invitation, send_plan
    from bot.services.participants import Keys
    from benchmarks.answer_path import prepare_database

    url = f"sqlite+aiosqlite:///{work_dir}/broadcast.db"
    await prepare_database(url)
    db = Database(url)
    keys = Keys(b"bench-pseudonym-key-0123456789abcdef", b"bench-contact-key-0123456789abcdef")
    limits = Limits(global_per_second=RATE, per_chat_per_second=1.0)
    try:
        async with Sandbox(limits=limits, bot_username=BOT_USERNAME) as sb:
            await _seed(db, keys, sb, recipients)
            async with db.session() as s:
                campaign = await s.get(Campaign, "clinic-access")
                plan = await plan_invitation(s, campaign, InvitationFilters(), "benchmark", BOT_USERNAME)
            bot = make_bot(sb.token, sb.api_url)
            stop = asyncio.Event()
            floods = asyncio.create_task(_inject_floods(sb, flood_every, stop))
            done = 0

            def progress(state: str) -> None:
                nonlocal done
                done += 1
                if done % 1000 == 0:
                    log(f"  broadcast: {done}/{recipients}")

            started, cpu = time.perf_counter(), time.process_time()
            try:
                result = await send_plan(db, keys, bot, plan, "benchmark", campaign.id, rate=RATE,
                                         per_chat_interval=1.0, on_result=progress)
            finally:
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                stop.set()
                injected = await floods
                await bot.session.close()
            calls = [c for c in sb.state.calls if c.method.lower() == "sendmessage"]
            served_429 = sb.state.served_429
    finally:
        await db.dispose()
    ok = sorted(c.time for c in calls if c.ok)
    per_chat = Counter(c.chat_id for c in calls if c.ok)
    wanted = set(range(FIRST_USER, FIRST_USER + recipients))
    span = ok[-1] - ok[0] if len(ok) > 1 else 0.0
    achieved = (len(ok) - 1) / span if span else 0.0
    windows = _windows(ok, 10.0)
    return {
        "config": {"recipients": recipients, "configured_rate": RATE, "sandbox_limit_per_s": RATE,
                   "per_chat_per_s": 1.0, "injected_429_every": flood_every},
        "seconds": round(seconds, 1),
        "delivered": len(ok),
        "achieved_per_s": round(achieved, 2),
        "share_of_configured": round(achieved / RATE, 3),
        "rate_per_10s_window": summary(windows, 2),
        "share_per_10s_window": summary([w / RATE for w in windows], 3),
        "peak_in_any_second": peak_rate([c for c in calls if c.ok], 1.0),
        "limiter_ceiling_per_s": round(_ceiling(), 2),
        "cpu_ms_per_message": round(cpu / max(1, len(calls)) * 1000, 2),
        "injected_429": injected,
        "served_429": served_429,
        "send_attempts": len(calls),
        "duplicates": sum(1 for n in per_chat.values() if n > 1),
        "losses": len(wanted - set(per_chat)),
        "strangers": len(set(per_chat) - wanted),
        "deliveries": result.counts,
        "median_gap_ms": round(statistics.median(b - a for a, b in zip(ok, ok[1:], strict=False)) * 1000, 2)
        if len(ok) > 2 else None,
        "targets": {"share_at_least_0.9": achieved / RATE >= 0.9,
                    "no_duplicates": not any(n > 1 for n in per_chat.values()),
                    "no_losses": not (wanted - set(per_chat))},
        "profile": PROFILE_NOTES,
    }
