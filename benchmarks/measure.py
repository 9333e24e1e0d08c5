"""Summaries every benchmark shares: median and spread of repeated runs, percentiles, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from typing import Any


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """Median, quartiles and range of repeated measurements (the runs are kept too).

    The spread is the interquartile range (q1–q3) and the full range (min–max); with fewer
    than four runs the quartiles are the range.
    """
    vals = sorted(float(v) for v in values)
    if not vals:
        return {"median": None, "q1": None, "q3": None, "min": None, "max": None, "runs": []}
    if len(vals) >= 4:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1, q3 = vals[0], vals[-1]
    r = lambda x: round(x, digits)  # noqa: E731
    return {"median": r(statistics.median(vals)), "q1": r(q1), "q3": r(q3), "min": r(vals[0]),
            "max": r(vals[-1]), "runs": [r(v) for v in values]}


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0–100) of already sorted values, by linear interpolation."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def load_average() -> float:
    """The one-minute load average (0 where the system does not say)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(terse=True), "load_average_1m": round(load_average(), 2)}


def spread(s: dict[str, Any], fmt: str = "{:.1f}") -> str:
    """`median (q1–q3)` for a Markdown cell."""
    if s.get("median") is None:
        return "–"
    return f"{fmt.format(s['median'])} ({fmt.format(s['q1'])}–{fmt.format(s['q3'])})"
