"""Where the answer path spends its time: `python -m benchmarks.profiling [--backend postgresql]`.

Runs participants one at a time through the real dispatcher, as the benchmark does, writes a
pyinstrument profile (text and HTML) to benchmarks/results/profiles/ (not kept in git), then
prints the main thread's CPU time per update by library (cProfile with a thread-time clock, so
waiting on the database does not count): the bot next to the one-Select baseline. Profiling
slows everything several times over; compare the shares, not the milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import pstats
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import answer_path as ap
from benchmarks.__main__ import POSTGRES_URL

LIBRARIES = ("sqlalchemy", "aiogram_dialog", "aiogram", "pydantic", "asyncpg", "aiosqlite", "asyncio",
             "babel", "phonenumbers", "json", "copy.py")
OURS = {"/bot/": "coassess bot/", "/dialogs/": "coassess dialogs/", "/benchmarks/": "benchmark harness"}


def library(filename: str) -> str:
    for key in LIBRARIES:
        if f"/{key}" in filename:
            return key.removesuffix(".py")
    for key, name in OURS.items():
        if key in filename:
            return name
    return "builtins and the rest" if filename == "~" else "stdlib and the rest"


async def _cpu_split(dp: Any, mm: Any, bot: Any, script: Any, first: int, n: int,
                     ids: Any) -> tuple[int, Counter[str]]:
    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    r = await ap.drive(dp, mm, bot, script, first, n, 1, ids)
    prof.disable()
    split: Counter[str] = Counter()
    for (filename, _, _), (_, _, own, _, _) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        split[library(filename)] += own
    return r.updates, split


async def profile(backend: str, participants: int, out: Path, postgres_url: str) -> None:
    from pyinstrument import Profiler

    from dialogs.context import forget_cached_campaigns

    pg = None
    if backend == "postgresql":
        pg = ap.postgres_database(postgres_url)
        url = await pg.__aenter__()
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='coassess-profile-')}/profile.db"
    try:
        await ap.prepare_database(url)
        forget_cached_campaigns()
        bot = ap.SurveyBot(url)
        base_mm = ap.LatestMessages()
        base_dp, base_bot = ap.baseline_dispatcher(base_mm), ap.LocalBot()
        counter = itertools.count(1)
        ids = lambda: next(counter)  # noqa: E731
        await ap.drive(bot.dp, bot.mm, bot.bot, ap.SCRIPT, 10, len(ap.LANGUAGES), 1, ids)  # warm up
        await ap.drive(base_dp, base_mm, base_bot, ap.BASELINE_SCRIPT, 10, 2, 1, ids)
        p = Profiler(interval=0.0005)
        p.start()
        await ap.drive(bot.dp, bot.mm, bot.bot, ap.SCRIPT, 1000, participants, 1, ids)
        p.stop()
        out.mkdir(parents=True, exist_ok=True)
        (out / f"answer_path-{backend}.txt").write_text(p.output_text(color=False, unicode=True),
                                                       encoding="utf-8")
        (out / f"answer_path-{backend}.html").write_text(p.output_html(), encoding="utf-8")
        n_bot, split_bot = await _cpu_split(bot.dp, bot.mm, bot.bot, ap.SCRIPT, 5000, participants, ids)
        n_base, split_base = await _cpu_split(base_dp, base_mm, base_bot, ap.BASELINE_SCRIPT, 9000,
                                              participants, ids)
        await bot.close()
    finally:
        if pg is not None:
            await pg.__aexit__(None, None, None)
    total_bot, total_base = sum(split_bot.values()) / n_bot * 1000, sum(split_base.values()) / n_base * 1000
    print(f"Main-thread CPU per update, profiled ({backend}): bot {total_bot:.2f} ms, "
          f"baseline {total_base:.2f} ms")
    for name, own in split_bot.most_common():
        print(f"  {name:28} {own / n_bot * 1000:7.3f} ms  {own / sum(split_bot.values()):6.1%}"
              f"   baseline {split_base.get(name, 0) / n_base * 1000:7.3f} ms")
    print(f"Profiles written to {out}/answer_path-{backend}.txt and .html")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--participants", type=int, default=8)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "profiles")
    args = parser.parse_args()
    asyncio.run(profile(args.backend, args.participants, args.out, args.postgres_url))


if __name__ == "__main__":
    main()
