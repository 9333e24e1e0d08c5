"""Priorities for co-commissioning: Borda points for rankings, coin shares for budgets, and orders.

Pure arithmetic; weights come from `analysis.weighting`.

* Borda points: with `pick` options to order, the first gets `pick` points, the next
  `pick - 1`, ..., the last ranked 1; options left unranked get 0. A group's score for an
  option is the mean over the group's respondents (unranked counting as 0).
* Coin share: each respondent's coins on an option divided by the coins they spent; a
  group's score is the mean of those shares, so everyone weighs the same however many coins
  the campaign gave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

RANK_DECIMALS = 4  # values equal to this precision share a rank


def borda_points(order: Sequence[str], options: Sequence[str], pick: int) -> dict[str, int]:
    """Points per option for one ranking: `pick` for the first, 1 for the last ranked, 0 unranked."""
    points = dict.fromkeys(options, 0)
    for position, option in enumerate(order[:pick]):
        if option in points:
            points[option] = pick - position
    return points


def coin_shares(coins: Mapping[str, int]) -> dict[str, float]:
    """Each option's share of the coins one respondent spent (all zero if they spent none)."""
    total = sum(coins.values())
    return {o: (c / total if total else 0.0) for o, c in coins.items()}


def weighted_mean(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Column means of a respondents x options matrix, optionally weighted per respondent."""
    values = np.asarray(values, dtype=float)
    if values.shape[0] == 0:
        return np.full(values.shape[1] if values.ndim == 2 else 0, np.nan)
    if weights is None:
        return values.mean(axis=0)
    w = np.asarray(weights, dtype=float)
    if w.sum() <= 0:
        return np.full(values.shape[1], np.nan)
    return (values * w[:, None]).sum(axis=0) / w.sum()


def ranks(values: Mapping[str, float]) -> dict[str, int]:
    """1 for the highest value; equal values (to 4 decimals) share the better rank ("1, 1, 3")."""
    rounded = {o: round(v, RANK_DECIMALS) for o, v in values.items()}
    ordered = sorted(rounded.values(), reverse=True)
    return {o: ordered.index(v) + 1 for o, v in rounded.items()}


def order(values: Mapping[str, float]) -> list[str]:
    """Options from the highest value down; ties keep the campaign's order."""
    keys = list(values)
    return sorted(keys, key=lambda o: (-round(values[o], RANK_DECIMALS), keys.index(o)))


def compare_orders(options: Sequence[str], scores: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """One row per option: each scheme's score and rank side by side, plus whether the ranks differ.

    `scores` maps a scheme name ("unweighted", "population", "solidarity") to one score per
    option, in the order of `options`.
    """
    table = pd.DataFrame({"option": list(options)})
    rank_cols = []
    for name, values in scores.items():
        vals = dict(zip(options, (float(v) for v in values), strict=True))
        table[name] = [vals[o] for o in options]
        table[f"{name}_rank"] = [ranks(vals)[o] for o in options]
        rank_cols.append(f"{name}_rank")
    table["orders_differ"] = table[rank_cols].nunique(axis=1) > 1 if rank_cols else False
    return table
