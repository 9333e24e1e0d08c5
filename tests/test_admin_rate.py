"""The rate limiter's rule, on a simulated clock: never over the limit in any one-second window."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sandbox import peak_rate
from bot.services.delivery import RateLimiter, Throttle


def simulate(limiter: RateLimiter, chats: list[int], arrivals: list[float]) -> list[tuple[float, int]]:
    """Each request arrives at its time and waits as long as the limiter says; returns the sends."""
    sent = []
    now = 0.0
    for chat, arrival in zip(chats, arrivals, strict=True):
        now = max(now, arrival)
        while (wait := limiter.delay(chat, now)) > 0:
            now += wait
        limiter.record(chat, now)
        sent.append((now, chat))
    return sent


@settings(max_examples=80, deadline=None)
@given(rate=st.sampled_from([0.5, 1, 3, 10, 25, 25.5, 30]),
       chats=st.lists(st.integers(0, 6), min_size=1, max_size=120),
       gaps=st.lists(st.floats(0, 0.3), min_size=120, max_size=120),
       interval=st.sampled_from([0.0, 0.5, 1.0]))
def test_never_over_the_limit_in_any_window(rate, chats, gaps, interval) -> None:  # type: ignore[no-untyped-def]
    arrivals = [sum(gaps[: i + 1]) for i in range(len(chats))]
    sent = simulate(RateLimiter(rate, interval, margin=1e-6), chats, arrivals)
    times = [{"time": t} for t, _ in sent]
    assert peak_rate(times, 1.0) <= max(1, int(rate))
    if rate < 1:
        assert peak_rate(times, 1 / rate) <= 1
    last: dict[int, float] = {}
    for t, chat in sent:
        if chat in last:
            assert t - last[chat] >= interval - 1e-9
        last[chat] = t


def test_no_burst_at_the_start_and_full_speed_after() -> None:
    limiter = RateLimiter(25, per_chat_interval=1.0, margin=0.1)
    sent = simulate(limiter, list(range(100)), [0.0] * 100)
    times = [t for t, _ in sent]
    assert times[24] == 0.0 and times[25] == 1.1  # 25 at once, the 26th when the first leaves
    assert 3.3 <= times[-1] <= 3.5                # 100 in about 4 windows of 1.1 s


def test_a_429_pauses_everyone() -> None:
    limiter = RateLimiter(25)
    limiter.pause(3, now=10.0)
    assert limiter.delay("a", 10.0) == 3.0 and limiter.delay("b", 12.5) == 0.5
    assert limiter.delay("c", 13.0) == 0.0


def test_throttle_on_a_fake_clock() -> None:
    clock = [0.0]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    async def run() -> list[float]:
        throttle = Throttle(RateLimiter(2, per_chat_interval=0, margin=0), clock=lambda: clock[0])
        out = []
        original = asyncio.sleep
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            for i in range(5):
                await throttle.acquire(i)
                out.append(clock[0])
        finally:
            asyncio.sleep = original  # type: ignore[assignment]
        return out

    assert asyncio.run(run()) == [0.0, 0.0, 1.0, 1.0, 2.0]
