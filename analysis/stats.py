"""Small, well-known estimators: a mean with its t interval, a proportion with its Wilson interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Published precision; disclosure control reasons about exactly these roundings.
MEAN_DECIMALS = 1
SHARE_DECIMALS = 3
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    low: float
    high: float


def t_quantile(df: int) -> float:
    """The 97.5 % quantile of Student's t (SciPy), for a two-sided 95 % interval."""
    from scipy.special import stdtrit  # the inverse t distribution, without importing scipy.stats

    return float(stdtrit(df, 0.975))


def mean_ci(n: int, total: float, total_sq: float) -> Estimate | None:
    """Mean and 95 % t interval from the count, sum and sum of squares; None below two values."""
    if n < 2:
        return None
    mean = total / n
    var = max((total_sq - n * mean * mean) / (n - 1), 0.0)
    half = t_quantile(n - 1) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half)


def wilson(k: int, n: int) -> Estimate | None:
    """A proportion with its 95 % Wilson score interval, which behaves near 0 % and 100 %."""
    if n <= 0:
        return None
    p = k / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))
