"""The rate limiter's rules on a simulated clock: paced, never over the limit in any window."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sandbox import peak_rate
from bot.services.delivery import RateLimiter, Throttle


def simulate(limiter: RateLimiter, chats: list[int], arrivals: list[float],
             oversleep: float = 0.0, seed: int = 0) -> list[tuple[float, int]]:
    """Each request arrives at its time and waits as long as the limiter says; returns the sends.

    `oversleep`: each wait ends up to this many seconds late, as a busy event loop wakes late.
    """
    late = random.Random(seed)
    sent = []
    now = 0.0
    for chat, arrival in zip(chats, arrivals, strict=True):
        now = max(now, arrival)
        while (wait := limiter.delay(chat, now)) > 0:
            now += wait + late.uniform(0, oversleep)
        limiter.record(chat, now)
        sent.append((now, chat))
    return sent


def times(sent: list[tuple[float, int]]) -> list[float]:
    return [t for t, _ in sent]


def peak(ts: list[float], window: float = 1.0) -> int:
    return peak_rate([{"time": t} for t in ts], window)


@settings(max_examples=120, deadline=None)
@given(rate=st.sampled_from([0.5, 1, 3, 10, 25, 25.5, 30]),
       chats=st.lists(st.integers(0, 6), min_size=1, max_size=150),
       gaps=st.lists(st.floats(0, 0.3), min_size=150, max_size=150),
       interval=st.sampled_from([0.0, 0.5, 1.0]),
       catch_up=st.sampled_from([0.0, 0.1, 3.0]),
       margin=st.sampled_from([0.0, 0.1]),
       oversleep=st.sampled_from([0.0, 0.05]))
def test_never_over_the_limit_in_any_window(rate, chats, gaps, interval, catch_up, margin,  # type: ignore[no-untyped-def]
                                            oversleep) -> None:
    arrivals = [sum(gaps[: i + 1]) for i in range(len(chats))]
    limiter = RateLimiter(rate, interval, margin=margin, catch_up=catch_up)
    sent = simulate(limiter, chats, arrivals, oversleep)
    ts = times(sent)
    capacity = max(1, int(rate))
    assert peak(ts, 1.0) <= capacity
    assert peak(ts, 1.0 + margin) <= capacity   # the margin widens the window the cap counts in
    if rate < 1:
        assert peak(ts, 1 / rate) <= 1
    # never two at once, however much there is to make up
    assert all(b - a >= limiter.interval / 2 - 1e-9 for a, b in zip(ts, ts[1:], strict=False))
    last: dict[int, float] = {}
    for t, chat in sent:
        if chat in last:
            assert t - last[chat] >= interval - 1e-9
        last[chat] = t


def test_sends_are_spaced_evenly_from_the_start() -> None:
    limiter = RateLimiter(25, per_chat_interval=1.0)
    ts = times(simulate(limiter, list(range(100)), [0.0] * 100))
    gaps = {round(b - a, 9) for a, b in zip(ts, ts[1:], strict=False)}
    assert gaps == {0.04}                          # one every 1/25 s: no burst, no wait
    assert abs(ts[-1] - 99 / 25) < 1e-9            # 100 in 3.96 s: the full rate
    assert peak(ts) == 25


def test_late_wake_ups_are_made_up_within_the_cap() -> None:
    """Waits that end up to 10 ms late (a busy event loop) cost 1% at 30/s, not 13%."""
    n = 3000

    def share(catch_up: float) -> float:
        ts = times(simulate(RateLimiter(30, catch_up=catch_up), list(range(n)), [0.0] * n,
                            oversleep=0.01, seed=1))
        assert peak(ts) <= 30
        return (n - 1) / (ts[-1] - ts[0]) / 30

    assert share(0.1) >= 0.99      # the default
    assert share(0.0) < 0.9        # every late send lost for good


def test_a_long_stall_is_forgiven_not_paid_back_in_a_burst() -> None:
    limiter = RateLimiter(10, per_chat_interval=0)  # one every 0.1 s
    arrivals = [0.0] * 5 + [2.0] * 20               # nothing to send for 1.6 s
    ts = times(simulate(limiter, list(range(25)), arrivals))
    after = [t for t in ts if t >= 2.0]
    # the schedule starts again from the first send after the quiet spell: nothing made up
    assert [round(t, 9) for t in after[:4]] == [2.0, 2.1, 2.2, 2.3]
    assert peak(after, 1.0) <= 10


def test_a_429_pauses_everyone_and_the_pace_restarts_after_it() -> None:
    limiter = RateLimiter(25)
    limiter.record("x", 9.9)
    limiter.pause(3, now=10.0)
    assert limiter.delay("a", 10.0) == 3.0 and limiter.delay("b", 12.5) == 0.5
    assert limiter.delay("c", 13.0) == 0.0
    # no sends were made during the pause, and none of them is made up after it
    ts = times(simulate(limiter, list(range(10)), [10.0] * 10))
    assert ts[0] == 13.0 and all(abs((b - a) - 0.04) < 1e-9 for a, b in zip(ts, ts[1:], strict=False))


def test_the_margin_slows_the_pace_to_match_the_wider_window() -> None:
    limiter = RateLimiter(30, margin=0.1)
    assert limiter.capacity == 30 and abs(limiter.ceiling - 30 / 1.1) < 1e-9
    assert abs(RateLimiter(30).ceiling - 30) < 1e-9 and RateLimiter(25.5).ceiling == 25


def test_throttle_on_a_fake_clock() -> None:
    clock = [0.0]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    async def run() -> list[float]:
        throttle = Throttle(RateLimiter(2, per_chat_interval=0), clock=lambda: clock[0])
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

    assert asyncio.run(run()) == [0.0, 0.5, 1.0, 1.5, 2.0]
