"""The Markdown table of results.md (and of the README's "Performance" section)."""

from __future__ import annotations

from typing import Any

from benchmarks.measure import spread


def _yes(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _answer_rows(ap: dict[str, Any]) -> list[str]:
    rows = []
    base = ap["baseline"]
    base_rate = spread(base["answers_per_s"], "{:.0f}")
    for name, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        if name not in ap:
            if name in ap.get("skipped", {}):
                rows.append(_row([f"Answer path, {label}", "skipped", ap["skipped"][name], "", "", "", ""]))
            continue
        r, t = ap[name], ap[name]["targets"]
        rows.append(_row([
            f"Answer path, {label}", "answers/s per process", spread(r["answers_per_s"], "{:.0f}"),
            f"{base_rate} (one-Select aiogram-dialog bot)", spread(r["ratio_to_baseline"], "{:.2f}"),
            "≥ 0.5 of baseline" + (", ≥ 300/s" if name == "postgresql" else ""),
            _yes(t["ratio_at_least_0.5"] and (name != "postgresql" or t["answers_per_s_at_least_300"]))]))
        rows.append(_row([
            f"Answer path, {label}", "latency per update p50 / p95 / p99, ms",
            " / ".join(spread(r[k], "{:.1f}") for k in ("p50_ms", "p95_ms", "p99_ms")),
            " / ".join(spread(base[k], "{:.1f}") for k in ("p50_ms", "p95_ms", "p99_ms")),
            "", "p99 ≤ 50 ms", _yes(t["p99_at_most_50_ms"])]))
        cpu, base_cpu = r["cpu_ms_per_answer"]["median"], base["cpu_ms_per_answer"]["median"]
        rows.append(_row([
            f"Answer path, {label}", "CPU per update, ms (whole process)", spread(r["cpu_ms_per_answer"], "{:.2f}"),
            spread(base["cpu_ms_per_answer"], "{:.2f}"), f"{cpu / base_cpu:.1f}×" if base_cpu else "", "", "–"]))
    return rows


def _broadcast_rows(b: dict[str, Any]) -> list[str]:
    c, t = b["config"], b["targets"]
    name = f"Broadcast, {c['recipients']:,} recipients"
    return [
        _row([name, "achieved messages/s (per 10 s window)",
              f"{b['achieved_per_s']:.1f} ({spread(b['rate_per_10s_window'], '{:.1f}')})",
              f"{c['configured_rate']:.0f} configured", f"{b['share_of_configured']:.3f}", "≥ 0.9",
              _yes(t["share_at_least_0.9"])]),
        _row([name, "duplicates / losses", f"{b['duplicates']} / {b['losses']}", "", "", "0 / 0",
              _yes(t["no_duplicates"] and t["no_losses"])]),
        _row([name, "busiest second at the Bot API / CPU per message (sender and sandbox)", f"{b['peak_in_any_second']} / "
              f"{b['cpu_ms_per_message']:.1f} ms", f"{b['limiter_ceiling_per_s']:.1f}/s limiter ceiling", "",
              "", "–"]),
    ]


def _analysis_rows(a: dict[str, Any]) -> list[str]:
    n = f"{a['config']['answers']:,} answers"
    base = a["baseline"]
    e, r = a["export"], a["report"]
    return [
        _row([f"Long export (CSV), {n}", "seconds", spread(e["seconds"]), f"{spread(base['seconds'], '{:.2f}')} (SQL GROUP BY)",
              spread(e["ratio_to_baseline"], "{:.0f}") + "×", "≤ 15 s", _yes(e["targets"]["seconds_at_most_15"])]),
        _row([f"Long export (CSV), {n}", "peak memory, MB", spread(e["peak_rss_mb"], "{:.0f}"),
              spread(base["peak_rss_mb"], "{:.0f}"), "", "≤ 400 MB", _yes(e["targets"]["peak_at_most_400_mb"])]),
        _row([f"Report (HTML), {n}", "seconds", spread(r["seconds"]), f"{spread(base['seconds'], '{:.2f}')} (SQL GROUP BY)",
              spread(r["ratio_to_baseline"], "{:.0f}") + "×", "≤ 30 s", _yes(r["targets"]["seconds_at_most_30"])]),
        _row([f"Report (HTML), {n}", "peak memory, MB", spread(r["peak_rss_mb"], "{:.0f}"),
              spread(base["peak_rss_mb"], "{:.0f}"), "", "", "–"]),
    ]


def table(results: dict[str, Any]) -> str:
    """The results as one Markdown table: median (interquartile range) over the runs."""
    lines = [_row(["Benchmark", "Figure", "Median (IQR)", "Baseline, same run", "Ratio", "Target", "Met"]),
             _row(["---"] * 7)]
    if "answer_path" in results:
        lines += _answer_rows(results["answer_path"])
    if "broadcast" in results:
        lines += _broadcast_rows(results["broadcast"])
    if "analysis" in results:
        lines += _analysis_rows(results["analysis"])
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    parts = [
        "# Benchmarks",
        "",
        f"Measured {results['started']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
        f"{m['platform']}, with `{results['command']}`. Each figure is the median over the runs, "
        "with the interquartile range in brackets; baselines ran in the same process run, interleaved.",
        "",
        table(results),
        "",
    ]
    notes = []
    if "answer_path" in results:
        ap = results["answer_path"]
        c = ap["config"]
        notes.append(f"- **Answer path** ({c['runs']} runs of {c['participants_per_run']} participants, "
                     f"{c['concurrency']} at once, {c['updates_per_participant']} updates each; "
                     f"load average {ap['load_average']['start']}–{ap['load_average']['end']}): "
                     + ap["profile"])
    if "broadcast" in results:
        b = results["broadcast"]
        notes.append(f"- **Broadcast** ({b['seconds']:.0f} s, {b['served_429']} answers 429, "
                     f"{b['send_attempts']:,} sendMessage calls; load average "
                     f"{b['load_average']['start']}–{b['load_average']['end']}): " + b["profile"])
    if "analysis" in results:
        a = results["analysis"]
        notes.append(f"- **Analysis** ({a['config']['responses']:,} responses, {a['config']['runs']} runs, "
                     f"a fresh process each; load average {a['load_average']['start']}–"
                     f"{a['load_average']['end']}): " + a["profile"])
    if notes:
        parts += ["## What the profiles showed", "", *notes, ""]
    parts += ["Reproduce with `make bench` (or `python -m benchmarks --quick` for a short run); "
              "the figures in full are in `benchmarks/results.json`.", ""]
    return "\n".join(parts)
