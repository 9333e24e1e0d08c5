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
    from scipy.stats import t

    return float(t.ppf(0.975, df))


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


def sum_sq_bounds(n: int, mean: float, low: float, high: float, decimals: int = MEAN_DECIMALS
                  ) -> tuple[float, float]:
    """What a published rounded mean and interval reveal about the sum of squares of the values.

    Used by disclosure control: the sum of squares is linear in the counts per rating, so a
    reader can add it to the equations they solve.
    """
    eps = 0.5 * 10 ** -decimals
    t = t_quantile(n - 1)
    half = (high - low) / 2
    h_lo, h_hi = max(half - eps, 0.0), half + eps
    m_lo, m_hi = max(mean - eps, 0.0), mean + eps

    def ss(h: float, m: float) -> float:
        sd = h * math.sqrt(n) / t
        return (n - 1) * sd * sd + n * m * m

    return ss(h_lo, m_lo), ss(h_hi, m_hi)
