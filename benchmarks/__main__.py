"""`python -m benchmarks` (`make bench`): run the benchmarks, write results.json and results.md.

    python -m benchmarks                 # the full run: about 15 minutes (3 more the first time)
    python -m benchmarks --quick         # a short run: fewer participants, recipients and answers
    python -m benchmarks --only answers  # one of: answers, broadcast, analysis (comma-separated)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.measure import load_average, machine
from benchmarks.table import markdown

HERE = Path(__file__).resolve().parent
POSTGRES_URL = os.environ.get("COASSESS_BENCH_POSTGRES_URL",
                              "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
BENCHMARKS = ("answers", "broadcast", "analysis")

# Two participants at once is the knee: four or eight add at most a fifth to the throughput but
# multiply the p99 (queueing behind each other, and on SQLite its busy handler's sleeps).
FULL = {"runs": 5, "participants": 40, "concurrency": 2, "recipients": 10_000, "flood_every": 1000,
        "answers": 1_000_000, "analysis_runs": 3}
QUICK = {"runs": 3, "participants": 12, "concurrency": 2, "recipients": 600, "flood_every": 100,
         "answers": 100_000, "analysis_runs": 2}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short run (minutes, not tens of minutes)")
    p.add_argument("--only", default=",".join(BENCHMARKS),
                   help="comma-separated: answers, broadcast, analysis")
    p.add_argument("--runs", type=int, help="answer-path runs (each: baseline, SQLite, PostgreSQL)")
    p.add_argument("--participants", type=int, help="participants per answer-path run")
    p.add_argument("--concurrency", type=int, help="participants answering at once in one process")
    p.add_argument("--recipients", type=int, help="broadcast recipients (full run: 10,000)")
    p.add_argument("--flood-every", type=int, help="inject one 429 per this many sends")
    p.add_argument("--answers", type=int, help="synthetic answers for the analysis (full run: 1,000,000)")
    p.add_argument("--analysis-runs", type=int, help="runs of the export, report and GROUP BY")
    p.add_argument("--postgres-url", default=POSTGRES_URL,
                   help="a PostgreSQL database to create throwaway databases from "
                        "(COASSESS_BENCH_POSTGRES_URL; default %(default)s)")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--cache-dir", type=Path, help="where the synthetic analysis database is kept")
    p.add_argument("--out", type=Path, default=HERE, help="folder for results.json and results.md")
    p.add_argument("--max-load", type=float, default=float(os.cpu_count() or 1),
                   help="wait (up to --load-wait seconds) before each benchmark while the 1-minute "
                        "load average is above this (default: the number of cores)")
    p.add_argument("--load-wait", type=float, default=300.0)
    return p


def _settle(max_load: float, wait: float) -> float:
    """Wait for a quieter machine (other jobs skew every timing); returns the load at the start."""
    deadline = time.monotonic() + wait
    while load_average() > max_load and time.monotonic() < deadline:
        print(f"  load average {load_average():.1f} > {max_load:.1f}: waiting", flush=True)
        time.sleep(15)
    return round(load_average(), 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every selected benchmark; the results as one JSON-ready dict."""
    preset = QUICK if args.quick else FULL
    cfg = {k: getattr(args, k, None) or v for k, v in preset.items()}
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")
    results: dict[str, Any] = {
        "command": "python -m benchmarks" + (" --quick" if args.quick else "") + (
            f" --only {args.only}" if set(only) != set(BENCHMARKS) else ""),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "preset": "quick" if args.quick else "full",
    }
    with tempfile.TemporaryDirectory(prefix="coassess-bench-") as tmp:
        work = Path(tmp)
        if "answers" in only:
            from benchmarks import answer_path

            load = _settle(args.max_load, args.load_wait)
            print(f"answer path: {cfg['runs']} runs x {cfg['participants']} participants, "
                  f"{cfg['concurrency']} at once", flush=True)
            r = asyncio.run(answer_path.run_async(
                runs=cfg["runs"], participants=cfg["participants"], concurrency=cfg["concurrency"],
                postgres_url=None if args.no_postgres else args.postgres_url, work_dir=work))
            r["load_average"] = {"start": load, "end": round(load_average(), 2)}
            results["answer_path"] = r
        if "broadcast" in only:
            from benchmarks import broadcast

            load = _settle(args.max_load, args.load_wait)
            print(f"broadcast: {cfg['recipients']:,} recipients at {broadcast.RATE:.0f}/s", flush=True)
            r = asyncio.run(broadcast.run_async(recipients=cfg["recipients"], flood_every=cfg["flood_every"],
                                                work_dir=work))
            r["load_average"] = {"start": load, "end": round(load_average(), 2)}
            results["broadcast"] = r
        if "analysis" in only:
            from benchmarks import analysis_scale

            load = _settle(args.max_load, args.load_wait)
            print(f"analysis: {cfg['answers']:,} answers, {cfg['analysis_runs']} runs", flush=True)
            r = analysis_scale.run(answers=cfg["answers"], runs=cfg["analysis_runs"],
                                   cache_dir=args.cache_dir, work_dir=work)
            r["load_average"] = {"start": load, "end": round(load_average(), 2)}
            results["analysis"] = r
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "results.json", out / "results.md"
    js.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md.write_text(markdown(results), encoding="utf-8")
    return js, md


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results = run(args)
    js, md = write(results, args.out)
    print()
    print(md.read_text(encoding="utf-8"))
    print(f"Wrote {js} and {md}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
