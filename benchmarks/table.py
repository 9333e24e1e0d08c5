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
    for name, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        bench = f"Answer path, {label}"
        if name not in ap:
            if name in ap.get("skipped", {}):
                rows.append(_row([bench, "skipped", ap["skipped"][name], "", "", "", ""]))
            continue
        r, t = ap[name], ap[name]["targets"]
        if name == "postgresql":  # two targets on one figure: each says whether it is met
            target = "≥ 300/s; ≥ 0.5 of baseline"
            met = f"{_yes(t['answers_per_s_at_least_300'])}; {_yes(t['ratio_at_least_0.5'])}"
        else:
            target, met = "≥ 0.5 of baseline", _yes(t["ratio_at_least_0.5"])
        rows.append(_row([
            bench, "answers/s per process", spread(r["answers_per_s"], "{:.0f}"),
            spread(base["answers_per_s"], "{:.0f}") + " (one-Select aiogram-dialog bot)",
            spread(r["ratio_to_baseline"], "{:.2f}"), target, met]))
        for key, label_p in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
            target = key == "p99_ms"
            rows.append(_row([
                bench, f"latency per update {label_p}, ms", spread(r[key]), spread(base[key]),
                _times(r[key], base[key]), "≤ 50 ms" if target else "",
                _yes(t["p99_at_most_50_ms"]) if target else "–"]))
        rows.append(_row([
            bench, "CPU per update, ms (whole process)", spread(r["cpu_ms_per_answer"], "{:.2f}"),
            spread(base["cpu_ms_per_answer"], "{:.2f}"),
            _times(r["cpu_ms_per_answer"], base["cpu_ms_per_answer"]), "", "–"]))
    return rows


def _times(value: dict[str, Any], base: dict[str, Any]) -> str:
    """How many times the baseline's median (for costs, where the ratio reads that way round)."""
    if not value.get("median") or not base.get("median"):
        return ""
    return f"{value['median'] / base['median']:.1f}×"


def _broadcast_rows(b: dict[str, Any]) -> list[str]:
    c, t = b["config"], b["targets"]
    name = f"Broadcast, {c['recipients']:,} recipients"
    return [
        _row([name, "messages/s: whole run; 10 s windows", f"{b['achieved_per_s']:.1f}; "
              + spread(b["rate_per_10s_window"]), f"{c['configured_rate']:.0f} configured",
              f"{b['share_of_configured']:.3f}", "≥ 0.9", _yes(t["share_at_least_0.9"])]),
        _row([name, "duplicates / losses", f"{b['duplicates']} / {b['losses']}", "", "", "0 / 0",
              _yes(t["no_duplicates"] and t["no_losses"])]),
        _row([name, "busiest second at the Bot API", str(b["peak_in_any_second"]),
              f"{b['limiter_ceiling_per_s']:.1f}/s (limiter's ceiling)", "", "", "–"]),
        _row([name, "CPU per message, ms (sender and sandbox)", f"{b['cpu_ms_per_message']:.1f}", "",
              "", "", "–"]),
    ]


def _analysis_rows(a: dict[str, Any]) -> list[str]:
    n = f"{a['config']['answers']:,} answers"
    base = a["baseline"]
    group_by = spread(base["seconds"], "{:.2f}") + " (SQL GROUP BY)"
    rows = []
    for key, bench, limit in (("export", f"Long export (CSV), {n}", 15), ("report", f"Report (HTML), {n}", 30)):
        r, t = a[key], a[key]["targets"]
        rows.append(_row([bench, "seconds", spread(r["seconds"]), group_by,
                          spread(r["ratio_to_baseline"]) + "×", f"≤ {limit} s",
                          _yes(t[f"seconds_at_most_{limit}"])]))
        mem_ok = t.get("peak_at_most_400_mb")
        rows.append(_row([bench, "peak memory, MB", spread(r["peak_rss_mb"], "{:.0f}"),
                          spread(base["peak_rss_mb"], "{:.0f}"), "", "≤ 400 MB" if mem_ok is not None else "",
                          _yes(mem_ok)]))
    return rows


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
        "with the interquartile range in brackets; each baseline was measured in the same run, "
        "interleaved with what it is compared to.",
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
