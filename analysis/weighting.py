"""Weights per respondent: raking to the population (weightipy) and solidarity (need) weights.

Raking (iterative proportional fitting, "rim weighting") adjusts weights until each group
dimension's weighted shares match the baseline; with one dimension it is exactly
post-stratification. We use weightipy (>= 0.4.2, the first release that works with pandas 3)
rather than our own loop: it is maintained, small, and reports convergence.

Respondents whose group in a dimension is unknown (prefer not to say, not asked) or who
named several groups of a multi-choice dimension keep their share of the sample in that
dimension (category "(unknown)"): raking cannot place them, and should not drop them.
A group with a population share but no respondents cannot be weighted up from nothing; it
is listed in `missing` and the other targets are scaled to fill its share.

Weights are capped at 5 (relative to a mean of 1), as the American National Election Studies
do: without a cap, three respondents standing for 30 % of the population would each count two
hundred times, so the weighted result would be their three answers, fragile and close to
disclosing them. A group that cannot reach its share under the cap is listed in `short`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bot.campaigns.schema import PREFER_NOT

from analysis.reading import NOT_ASKED

UNKNOWN = "(unknown)"
CAP = 5.0
SHORT_BY = 0.8  # a group is "short" when its weighted share stays below 80 % of its target
Memberships = Sequence[tuple[tuple[str, ...], ...]]  # per respondent, per dimension: their groups


@dataclass(frozen=True)
class Weights:
    """Per-respondent weights (mean 1) and what the reader should know about them."""

    values: np.ndarray
    effective_size: float
    dimensions: list[str] = field(default_factory=list)  # the dimensions weighted on
    missing: dict[str, list[str]] = field(default_factory=dict)  # groups with no respondents
    short: dict[str, list[str]] = field(default_factory=dict)  # groups the cap kept below target
    converged: bool = True
    note: str = ""


def kish_effective_size(weights: Sequence[float] | np.ndarray) -> float:
    """Kish's effective sample size, (sum w)^2 / sum w^2: how many unweighted answers the
    weighted ones are worth. Equal weights give n; uneven weights give less."""
    w = np.asarray(weights, dtype=float)
    if w.size == 0:
        return 0.0
    sq = float((w * w).sum())
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def categories(memberships: Memberships, dims: Sequence[str], dimension: str,
               groups: Sequence[str]) -> list[str]:
    """One category per respondent in `dimension`: their single listed group, else (unknown)."""
    i = list(dims).index(dimension)
    known = set(groups)
    out = []
    for m in memberships:
        g = m[i]
        out.append(g[0] if len(g) == 1 and g[0] in known and g[0] not in (PREFER_NOT, NOT_ASKED)
                   else UNKNOWN)
    return out


def raking_targets(cats: Sequence[str], shares: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
    """Target percentages for one dimension, and the groups that have a share but no respondents."""
    n = len(cats)
    counts = pd.Series(list(cats)).value_counts()
    present = {g: s for g, s in shares.items() if s > 0 and counts.get(g, 0) > 0}
    missing = [g for g, s in shares.items() if s > 0 and counts.get(g, 0) == 0]
    unknown = counts.get(UNKNOWN, 0) / n if n else 0.0
    total = sum(present.values())
    targets = {g: 100.0 * (1 - unknown) * s / total for g, s in present.items()} if total else {}
    if unknown > 0:
        targets[UNKNOWN] = 100.0 * unknown
    return targets, missing


def rake(frame: pd.DataFrame, targets: Mapping[str, Mapping[str, float]],
         cap: float | None = None) -> tuple[np.ndarray, bool]:
    """Weights (mean 1) so that each column's weighted shares match `targets` (percentages).

    Every category in a column must have a target and at least one respondent. With `cap`,
    no weight exceeds it (and the margins are met as closely as the cap allows).
    """
    import weightipy

    if frame.empty or not targets:
        return np.ones(len(frame)), True
    scheme = weightipy.scheme_from_dict({d: dict(t) for d, t in targets.items()}, name="population",
                                        rim_params={"max_iterations": 1000, "convcrit": 1e-6,
                                                    "cap": cap or 0})
    log = io.StringIO()
    # weightipy prints progress and convergence warnings; keep them off the officer's screen.
    with contextlib.redirect_stdout(log):
        weights = weightipy.weight(frame[list(targets)].astype(str), scheme).to_numpy(dtype=float)
    # Under a cap the margins may stay off by design; convergence is then judged by the caller.
    converged = cap is not None or ("did not occur" not in log.getvalue()
                                    and "partial convergence" not in log.getvalue())
    if not np.all(np.isfinite(weights)) or weights.sum() <= 0:
        return np.ones(len(frame)), False
    return weights * (len(weights) / weights.sum()), converged


def population_weights(memberships: Memberships, dims: Sequence[str],
                       baseline: Mapping[str, Mapping[str, float]],
                       groups: Mapping[str, Sequence[str]]) -> Weights:
    """Rake respondents to the baseline shares of every dimension that has them."""
    n = len(memberships)
    frame = {}
    targets: dict[str, dict[str, float]] = {}
    missing: dict[str, list[str]] = {}
    for d in dims:
        shares = baseline.get(d)
        if not shares:
            continue
        cats = categories(memberships, dims, d, groups[d])
        t, miss = raking_targets(cats, shares)
        if miss:
            missing[d] = miss
        if len([g for g in t if g != UNKNOWN]) < 1 or len(t) < 2:
            continue  # one category only: nothing to adjust in this dimension
        frame[d] = cats
        targets[d] = t
    if n == 0 or not targets:
        return Weights(np.ones(n), float(n), [], missing, {}, True,
                       "" if targets else "no baseline to weight to")
    data = pd.DataFrame(frame)
    values, converged = rake(data, targets, cap=CAP)
    short: dict[str, list[str]] = {}
    total = values.sum()
    for d, t in targets.items():
        reached = pd.Series(values).groupby(data[d].to_numpy()).sum() / total * 100
        raw = data[d].value_counts(normalize=True) * 100
        # Only groups under-represented among respondents (ratio < 1) can be "kept below their
        # share by the cap"; an over-represented group that raking across dimensions leaves low
        # is not one the reader should be warned about as missing.
        low = [g for g, pct in t.items() if g != UNKNOWN and reached.get(g, 0.0) < SHORT_BY * pct
               and raw.get(g, 0.0) < pct]
        if low:
            short[d] = low
    note = "" if converged else ("raking did not fully converge: the baseline may be impossible to "
                                 "reach with these respondents (check for tiny groups)")
    return Weights(values, kish_effective_size(values), list(targets), missing, short, converged, note)


def need_multipliers(memberships: Memberships, dims: Sequence[str],
                     need: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """Per respondent: the product over dimensions of the highest need weight among their groups.

    "Somali answers count twice, disabled people's three times" makes a disabled Somali
    respondent count six times; groups without a weight count once.
    """
    out = np.ones(len(memberships))
    for i, m in enumerate(memberships):
        factor = 1.0
        for d, groups in zip(dims, m, strict=True):
            weights = need.get(d)
            if weights:
                factor *= max((weights.get(g, 1.0) for g in groups), default=1.0)
        out[i] = factor
    return out


def solidarity_weights(population: Weights, memberships: Memberships, dims: Sequence[str],
                       need: Mapping[str, Mapping[str, float]]) -> Weights:
    """Population weights times need weights, rescaled to mean 1."""
    values = population.values * need_multipliers(memberships, dims, need)
    if values.size:
        values = values * (values.size / values.sum())
    return Weights(values, kish_effective_size(values), population.dimensions, population.missing,
                   population.short, population.converged, population.note)
