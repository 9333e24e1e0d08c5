"""Analysis at scale: the long export and the report over a million synthetic answers.

Each measurement runs in a fresh Python process (`python -m benchmarks.analysis_scale measure
...`), so its peak memory (ru_maxrss) is its own; the time is the call alone, without the
interpreter start and imports (reported separately). The baseline, measured in the same run,
is one SQL GROUP BY that computes the per-group counts of every question's options: what any
analysis has to read, with nothing else done.

The synthetic database takes minutes to make, so it is kept in the system's temporary folder,
named by everything it depends on (answers wanted, seed, campaign file, migrations, synth).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.measure import summary

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "clinic-access"
OUTPUTS = {"group_by": "counts.txt", "export": "answers.csv", "report": "report.html"}
TIMINGS = {"seconds", "peak_rss_mb", "rss_after_imports_mb", "imports_seconds"}
# What pyinstrument showed, written by hand.
PROFILE_NOTES = (
    "Both stream every response once; the export's memory stays flat (its peak is about 35 MB "
    "above the 150 MB that importing pandas, pyarrow and the rest takes), the report's grows with "
    "the tallies and matplotlib. Before issue 8 the long export spent about half its time "
    "formatting CSV cells (`writers._csv_cell`: an isinstance chain per cell, `strftime` for every "
    "timestamp), a fifth in SQLAlchemy's JSON and datetime result processing, a tenth merging the "
    "two cursors and a tenth building rows (two HMACs per response); the report about 70% in "
    "`tally._count_answer` (a loop per answer and group row) and a quarter decoding JSON. Changed: "
    "the long CSV export writes finished lines: the leading columns are rendered once per "
    "response, question and type once per question, option (and its text) once per option, status "
    "and time once per answer, by the writer's own csv writer so the bytes are the csv module's; "
    "per row only `value` is converted (`contract.LongRows.lines`). Answer JSON and group JSON are "
    "read as text and decoded with `json.loads` behind a bounded memo (most texts repeat); on "
    "SQLite the answer time is read as text and becomes the ISO text by slicing (other shapes and "
    "PostgreSQL go through the column type's processor); the HMAC ids use `hmac.digest`. The "
    "tally counts each answer once per combination of rows (everyone, a group per dimension) and "
    "adds the combinations into the rows at the end (whole numbers, so the totals are exact). After: "
    "the export's main thread is about a third `LongRows.lines`, a third reading (the merge, "
    "AnswerRecord, JSON), the rest the csv writer for the row-specific cells and the HMACs; the "
    "two cursors were kept (one joined query repeats the response columns on every answer). "
    "Measured in one sitting on 2 shared cores (load 1.0-1.1), fresh processes, 1,000,825 answers: "
    "export 15.1 s / 185 MB (before: 38.5 s / 182 MB), report 20.4 s / 363 MB (before: 30.2 s / "
    "391 MB), SQL GROUP BY baseline 8.4 s; two later runs of the export: 13.7 s and 12.3 s "
    "(the baseline beside them took 11.0 s and 11.2 s: timings on this shared machine vary by a "
    "third), report 19.6 s; the same before-code gave 30.4 s for the export when "
    "the baseline took 7.05 s. The SQL GROUP BY baseline does the counting inside SQLite "
    "(json_each, json_extract)."
)

# The per-group counts every analysis starts from: for each group of each dimension, how many
# answered each option of each question (single-choice values, and each option of a multi).
BASELINE_SQL = """
WITH given AS (
    SELECT rg.dimension_id AS dim, g.value AS grp, a.question_id AS q, a.value AS v
    FROM answer a
    JOIN response r ON r.id = a.response_id
    JOIN response_group rg ON rg.response_id = r.id, json_each(rg.groups) g
    WHERE r.campaign_id = :campaign AND a.status = 'answered'
)
SELECT dim, grp, q, coalesce(json_extract(v, '$.option'), json_extract(v, '$.value')) AS opt, count(*)
FROM given WHERE json_extract(v, '$.options') IS NULL GROUP BY dim, grp, q, opt
UNION ALL
SELECT dim, grp, q, o.value, count(*)
FROM given, json_each(given.v, '$.options') o GROUP BY dim, grp, q, o.value
"""


def _cache_name(answers: int, seed: int) -> str:
    h = hashlib.sha256(f"{answers}:{seed}".encode())
    for path in [ROOT / "examples" / "clinic-access.yaml", ROOT / "analysis" / "synth.py",
                 *sorted((ROOT / "bot" / "migrations" / "versions").glob("*.py"))]:
        h.update(path.read_bytes())
    return f"coassess-analysis-{answers}-{h.hexdigest()[:12]}.db"


async def _synthesize(url: str, answers: int, seed: int, log: Callable[[str], None]) -> int:
    """Synthetic responses until the campaign has at least `answers` answers."""
    from analysis.synth import synthesize_async
    from benchmarks.answer_path import prepare_database

    await prepare_database(url)
    total = rounds = 0
    while total < answers:
        per_response = total / rounds if rounds else 7.0
        want = max(200, int((answers - total) / per_response) + 1)
        result = await synthesize_async(url, CAMPAIGN, min(want, 25_000), seed=seed + rounds,
                                        append=rounds > 0)
        total += result.answers
        rounds += result.responses
        log(f"  analysis: synthesized {total:,} answers")
    return total


async def _count(url: str) -> tuple[int, int]:
    from sqlalchemy import text

    from bot.db import Database

    db = Database(url)
    try:
        async with db.session() as s:
            answers = int(await s.scalar(text("SELECT count(*) FROM answer")) or 0)
            responses = int(await s.scalar(text("SELECT count(*) FROM response")) or 0)
    finally:
        await db.dispose()
    return answers, responses


def database(answers: int, seed: int, cache_dir: Path | None,
             log: Callable[[str], None]) -> tuple[Path, int, int]:
    """The synthetic database (made once, then reused); returns its path and its counts."""
    folder = cache_dir or Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _cache_name(answers, seed)
    url = f"sqlite+aiosqlite:///{path}"
    if path.exists():
        got, responses = asyncio.run(_count(url))
        if got >= answers:
            return path, got, responses
        path.unlink()
    partial = path.with_suffix(".partial")
    for leftover in folder.glob(partial.name + "*"):
        leftover.unlink()
    asyncio.run(_synthesize(f"sqlite+aiosqlite:///{partial}", answers, seed, log))
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.replace(path)
    got, responses = asyncio.run(_count(url))
    return path, got, responses


# --------------------------------------------------------------------------- one measurement (child)

async def _measure(what: str, url: str, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    if what == "export":
        from analysis.exports import export_async

        result = await export_async(url, CAMPAIGN, out, "long", "csv", actor="benchmark")
        return {"seconds": time.perf_counter() - started, "rows": result.rows, "responses": result.responses}
    if what == "report":
        from analysis.report import build_report_async

        model = await build_report_async(url, CAMPAIGN, out, "html")
        return {"seconds": time.perf_counter() - started, "bytes": out.stat().st_size,
                "sections": len(model)}
    if what == "group_by":
        from sqlalchemy import text

        from bot.db import Database

        db = Database(url)
        try:
            async with db.engine.connect() as conn:
                rows = (await conn.execute(text(BASELINE_SQL), {"campaign": CAMPAIGN})).all()
        finally:
            await db.dispose()
        return {"seconds": time.perf_counter() - started, "cells": len(rows),
                "counted": int(sum(r[-1] for r in rows))}
    raise ValueError(f"unknown measurement {what!r}")


def _peak_mb() -> float:
    """This process's peak resident memory.

    VmHWM, not ru_maxrss: on Linux a fresh process's ru_maxrss starts from its parent's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(what: str, url: str, out: str) -> None:
    """Run one measurement in this (fresh) process and print its figures as JSON."""
    started = time.perf_counter()
    import analysis  # noqa: F401 - the imports every analysis command pays, timed apart
    import bot.db  # noqa: F401

    imports = time.perf_counter() - started
    after_imports = _peak_mb()
    figures = asyncio.run(_measure(what, url, Path(out)))
    figures.update(imports_seconds=imports, rss_after_imports_mb=after_imports, peak_rss_mb=_peak_mb())
    print(json.dumps(figures))


def _run_child(what: str, url: str, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.analysis_scale", "measure", what, url, str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the {what} measurement failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the benchmark

def run(*, answers: int = 1_000_000, runs: int = 3, seed: int = 0, cache_dir: Path | None = None,
        work_dir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Interleaved runs of the GROUP BY baseline, the long export and the report, each in its own process."""
    path, got, responses = database(answers, seed, cache_dir, log)
    url = f"sqlite+aiosqlite:///{path}"
    results: dict[str, list[dict[str, Any]]] = {"group_by": [], "export": [], "report": []}
    for i in range(runs):
        for what in results:
            out = work_dir / OUTPUTS[what]
            r = _run_child(what, url, out)
            results[what].append(r)
            out.unlink(missing_ok=True)
        log(f"  analysis run {i + 1}/{runs}: " + ", ".join(
            f"{k} {v[-1]['seconds']:.1f} s / {v[-1]['peak_rss_mb']:.0f} MB" for k, v in results.items()))

    def figures(name: str) -> dict[str, Any]:
        rs = results[name]
        base = results["group_by"]
        return {
            "seconds": summary([r["seconds"] for r in rs], 2),
            "peak_rss_mb": summary([r["peak_rss_mb"] for r in rs], 1),
            "rss_after_imports_mb": summary([r["rss_after_imports_mb"] for r in rs], 1),
            "imports_seconds": summary([r["imports_seconds"] for r in rs], 2),
            "ratio_to_baseline": summary([r["seconds"] / b["seconds"] for r, b in zip(rs, base, strict=True)
                                          if b["seconds"]], 1),
            "detail": {k: v for k, v in rs[-1].items() if k not in TIMINGS},
        }

    out: dict[str, Any] = {
        "config": {"answers": got, "responses": responses, "runs": runs, "database": "SQLite",
                   "export": "long layout, CSV", "report": "HTML, every dimension"},
        "baseline": {k: v for k, v in figures("group_by").items() if k != "ratio_to_baseline"},
        "export": figures("export"),
        "report": figures("report"),
        "profile": PROFILE_NOTES,
    }
    out["export"]["targets"] = {"seconds_at_most_15": out["export"]["seconds"]["median"] <= 15,
                                "peak_at_most_400_mb": out["export"]["peak_rss_mb"]["median"] <= 400}
    out["report"]["targets"] = {"seconds_at_most_30": out["report"]["seconds"]["median"] <= 30}
    return out


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "measure":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: python -m benchmarks.analysis_scale measure export|report|group_by URL OUTPUT")
