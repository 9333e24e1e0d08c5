"""`python -m benchmarks.workers`: answers per second with 1, 2 and 4 webhook workers, and a long outage.

    python -m benchmarks.workers                       # 1, 2, 4 workers, 3 interleaved runs, 60 citizens
    python -m benchmarks.workers --citizens 300 --runs 1
    python -m benchmarks.workers --outage 300          # also: PostgreSQL refusing for 5 minutes

Each run starts the sandbox Bot API, N real `coassess webhook` processes behind an alternating
balancer, Redis and a fresh PostgreSQL database; citizens answer the example campaign tapping the
moment a screen arrives. The figure is answers stored per second of wall time, with the one-worker
figure of the same run as the baseline. Results go to benchmarks/workers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.campaigns.check import check_file
from bot.pseudonym import pseudonym
from bot.sandbox import Limits, Sandbox, SandboxClient
from bot.simulation import Citizen, make_personas

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


async def one_run(workers: int, citizens: int, seed: int, outage: float = 0.0) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    from tests.conftest import create_pg_database, drop_pg_database
    from tests.faults import TcpProxy
    from tests.live import PSEUDONYM_KEY, prepare_campaign, stored_by_person
    from tests.workers import apologies, callbacks_report, fleet, tally

    spec = check_file(ROOT / "examples" / "clinic-access.yaml").spec  # every question type
    assert spec is not None
    db_url = await create_pg_database()
    proxy = None
    try:
        await prepare_campaign(db_url, spec)
        url = db_url
        if outage:
            real = make_url(db_url)
            proxy = await TcpProxy(real.host or "127.0.0.1", real.port or 5432).start()
            url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        people = make_personas(spec, citizens, seed=seed, start_id=800_000_001)
        for p in people:
            p.blocks, p.stop_after = False, None
        with tempfile.TemporaryDirectory() as tmp:
            async with Sandbox(limits=Limits(global_per_second=None, per_chat_per_second=None)) as sb, \
                    fleet(sb, url, Path(tmp), workers, COASSESS_CONCURRENCY="256") as f:
                client = SandboxClient(sb.base_url, timeout=300)
                started = time.monotonic()
                tasks = [asyncio.create_task(Citizen(client, spec, p, think=(0.0, 0.0),
                                                     timeout=max(120.0, outage + 120)).run()) for p in people]
                back = None
                if outage and proxy is not None:
                    await asyncio.sleep(3.0)
                    await proxy.cut()
                    await asyncio.sleep(outage)
                    await proxy.restore()
                    back = time.monotonic()
                results = await asyncio.gather(*tasks)
                seconds = time.monotonic() - started
                caught_up = time.monotonic() - back if back else None
                await client.close()
                taps, in_time, moment = callbacks_report(sb)
                sorry = apologies(sb)
                logs = f.logs()
        stored = await stored_by_person(db_url, None)
        t = tally(results, stored, lambda uid: pseudonym(PSEUDONYM_KEY.encode(), uid))
        return {"workers": workers, **t, "seconds": round(seconds, 1),
                "answers_per_second": round(t["answers"] / seconds, 1), "taps": taps,
                "answered_in_time": in_time, "told_one_moment": moment, "sorry": sorry,
                "error_lines": logs.count(" ERROR "), "outage_seconds": outage or None,
                "seconds_to_finish_after_outage": round(caught_up, 1) if caught_up is not None else None}
    finally:
        if proxy is not None:
            await proxy.close()
        await drop_pg_database(db_url)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for run in range(args.runs):
        for n in args.workers:  # interleaved: the one-worker baseline shares each run's conditions
            result = await one_run(n, args.citizens, seed=200 + run)
            result["run"] = run + 1
            print(json.dumps(result), flush=True)
            runs.append(result)
    summary = {}
    for n in args.workers:
        rates = [r["answers_per_second"] for r in runs if r["workers"] == n]
        base = [r["answers_per_second"] for r in runs if r["workers"] == args.workers[0]]
        summary[str(n)] = {"answers_per_second_median": statistics.median(rates),
                           "ratio_to_one_worker": round(statistics.median(
                               [a / b for a, b in zip(rates, base, strict=True)]), 2)}
    out: dict[str, Any] = {"citizens": args.citizens, "runs": runs, "summary": summary}
    if args.outage:
        out["outage"] = await one_run(2, args.citizens, seed=999, outage=args.outage)
        print(json.dumps(out["outage"]), flush=True)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.workers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--citizens", type=int, default=60)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4],
                   help="comma-separated worker counts, the first is the baseline (default 1,2,4)")
    p.add_argument("--outage", type=float, default=0.0,
                   help="also run two workers through PostgreSQL refusing for this many seconds")
    p.add_argument("--out", type=Path, default=HERE / "workers.json")
    return p


if __name__ == "__main__":
    arguments = _parser().parse_args()
    result = asyncio.run(main(arguments))
    arguments.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
