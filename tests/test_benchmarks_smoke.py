"""The benchmarks in a tiny configuration: they run and their results are well formed.

Timings are never asserted here (they depend on the machine); `make bench` measures them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import analysis_scale, answer_path, broadcast
from benchmarks.__main__ import main, write
from benchmarks.measure import machine, percentile, summary
from benchmarks.table import markdown
from tests.conftest import PG_URL

pytestmark = pytest.mark.timeout(240)
SUMMARY_KEYS = {"median", "q1", "q3", "min", "max", "runs"}


def _is_summary(s: Any, runs: int | None = None) -> bool:
    if not isinstance(s, dict) or set(s) != SUMMARY_KEYS:
        return False
    if runs is not None and len(s["runs"]) != runs:
        return False
    return all(isinstance(s[k], float) and math.isfinite(s[k]) for k in SUMMARY_KEYS - {"runs"}) \
        and s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"]


def test_summary_and_percentile() -> None:
    s = summary([3.0, 1.0, 2.0, 4.0, 5.0])
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 5.0 and s["q1"] == 2.0 and s["q3"] == 4.0
    assert s["runs"] == [3.0, 1.0, 2.0, 4.0, 5.0]  # in the order measured
    assert summary([2.0, 1.0])["q1"] == 1.0  # fewer than four runs: the range
    assert summary([])["median"] is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([7.0], 99) == 7.0


async def test_answer_path_tiny(tmp_path: Path) -> None:
    r = await answer_path.run_async(runs=2, participants=2, concurrency=2, postgres_url=None,
                                    work_dir=tmp_path, log=lambda _: None)
    assert r["config"]["runs"] == 2 and r["skipped"] == {}
    for name in ("baseline", "sqlite"):
        fig = r[name]
        for key in ("answers_per_s", "cpu_ms_per_answer", "p50_ms", "p95_ms", "p99_ms"):
            assert _is_summary(fig[key], runs=2), (name, key, fig[key])
        assert fig["errors"] == 0
    sqlite = r["sqlite"]
    assert sqlite["updates_per_run"] == 2 * len(answer_path.SCRIPT)
    # every participant really finished: the campaign's answers are stored
    assert sqlite["answers_stored"] == [2 * answer_path.ANSWERS_PER_PARTICIPANT] * 2
    assert _is_summary(sqlite["ratio_to_baseline"], runs=2)
    assert set(sqlite["targets"]) == {"answers_per_s_at_least_300", "ratio_at_least_0.5", "p99_at_most_50_ms"}
    assert "postgresql" not in r


async def test_answer_path_reports_an_unreachable_postgres_as_skipped(tmp_path: Path) -> None:
    r = await answer_path.run_async(runs=1, participants=1, concurrency=1,
                                    postgres_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
                                    work_dir=tmp_path, log=lambda _: None)
    assert "postgresql" in r["skipped"] and "postgresql" not in r and "sqlite" in r


@pytest.mark.postgres
async def test_answer_path_on_postgres(tmp_path: Path) -> None:
    from tests.conftest import _pg_admin

    try:
        conn = await _pg_admin()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}")
    await conn.close()
    r = await answer_path.run_async(runs=1, participants=1, concurrency=1, postgres_url=PG_URL,
                                    work_dir=tmp_path, log=lambda _: None)
    assert r["skipped"] == {} and r["postgresql"]["errors"] == 0
    assert r["postgresql"]["answers_stored"] == [answer_path.ANSWERS_PER_PARTICIPANT]


async def test_broadcast_tiny(tmp_path: Path) -> None:
    r = await broadcast.run_async(recipients=12, flood_every=5, work_dir=tmp_path, log=lambda _: None)
    assert r["delivered"] == 12 and r["duplicates"] == 0 and r["losses"] == 0 and r["strangers"] == 0
    assert r["injected_429"] >= 1 and r["served_429"] >= 1
    assert r["send_attempts"] >= 12 + 1  # each 429 is a second try
    assert r["deliveries"] == {"sent": 12}
    assert r["peak_in_any_second"] <= broadcast.RATE
    assert 0 < r["share_of_configured"] and isinstance(r["targets"]["share_at_least_0.9"], bool)
    assert r["targets"]["no_duplicates"] and r["targets"]["no_losses"]


def test_analysis_tiny(tmp_path: Path) -> None:
    r = analysis_scale.run(answers=1500, runs=1, cache_dir=tmp_path / "cache", work_dir=tmp_path,
                           log=lambda _: None)
    assert r["config"]["answers"] >= 1500 and r["config"]["responses"] > 0
    for name in ("baseline", "export", "report"):
        for key in ("seconds", "peak_rss_mb", "rss_after_imports_mb", "imports_seconds"):
            assert _is_summary(r[name][key], runs=1), (name, key)
    assert r["export"]["detail"]["responses"] == r["config"]["responses"]
    assert r["export"]["detail"]["rows"] >= r["config"]["answers"]  # one row per answer value or more
    assert r["baseline"]["detail"]["counted"] > 0 and r["report"]["detail"]["bytes"] > 0
    assert _is_summary(r["export"]["ratio_to_baseline"], runs=1)
    # a second run reuses the synthetic database instead of making it again
    again = analysis_scale.database(1500, 0, tmp_path / "cache", log=lambda _: None)
    assert again[1] == r["config"]["answers"]
    assert len(list((tmp_path / "cache").glob("*.db"))) == 1


def test_results_files_and_table(tmp_path: Path) -> None:
    fake = {"summary": summary([1.0, 2.0, 3.0])}
    s = fake["summary"]
    results = {
        "command": "python -m benchmarks --quick", "started": "2026-01-01T00:00:00+00:00",
        "machine": machine(),
        "answer_path": {
            "config": {"runs": 3, "participants_per_run": 2, "concurrency": 2, "updates_per_participant": 36,
                       "answers_expected_per_run": 16},
            "baseline": {"answers_per_s": s, "cpu_ms_per_answer": s, "p50_ms": s, "p95_ms": s, "p99_ms": s},
            "sqlite": {"answers_per_s": s, "cpu_ms_per_answer": s, "p50_ms": s, "p95_ms": s, "p99_ms": s,
                       "ratio_to_baseline": s,
                       "targets": {"answers_per_s_at_least_300": False, "ratio_at_least_0.5": True,
                                   "p99_at_most_50_ms": True}},
            "skipped": {"postgresql": "not reachable"}, "profile": "profile notes",
            "load_average": {"start": 0.1, "end": 0.2}},
    }
    js, md = write(results, tmp_path)
    assert json.loads(js.read_text(encoding="utf-8"))["answer_path"]["sqlite"]["answers_per_s"] == s
    text = md.read_text(encoding="utf-8")
    assert text == markdown(results)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| Benchmark |") and all(line.count("|") == 8 for line in table)
    assert any("skipped" in line for line in table) and "profile notes" in text


def test_command_line_writes_both_files(tmp_path: Path) -> None:
    assert main(["--quick", "--only", "answers", "--runs", "1", "--participants", "1", "--concurrency", "1",
                 "--no-postgres", "--out", str(tmp_path), "--load-wait", "0"]) == 0
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert set(results) >= {"command", "machine", "answer_path", "started", "finished"}
    assert "| Answer path, SQLite |" in (tmp_path / "results.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["--only", "nonsense", "--out", str(tmp_path)])


async def test_tally_writes_tiny() -> None:
    from benchmarks.tally_writes import measure

    for dialect in ("sqlite", "postgresql"):
        out = await measure(dialect, 3, 1)
        assert out["journeys"] == 3 and out["commits per journey"] >= 4
        assert out["with tallies"]["p50_ms"] > 0 and out["without"]["p95_ms"] > 0


async def test_web_console_markdown_has_every_page_and_part() -> None:
    from benchmarks.web_console import PAGES, markdown

    page = {"p50_ms": 1.0, "p95_ms": 2.0, "max_ms": 3.0}
    result = {"measured_at": "now", "machine": {"cores": 2, "cpu": "x", "load_average_1m": 0.1},
              "answers": 10, "responses": 2, "requests": 3, **dict.fromkeys(PAGES, page),
              "profile, median ms": {"read the tallies (one query)": 1.2},
              "results page s": {"median": 1, "runs": [1]}, "report model (CLI) s": {"median": 1, "runs": [1]}}
    md = markdown(result)
    assert all(f"| {p} | 1.0 | 2.0 | 3.0 |" in md for p in PAGES)
    assert "| read the tallies (one query) | 1.2 |" in md
