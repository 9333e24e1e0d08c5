"""Disclosure control: hide every count below the threshold, and enough others that none can be worked out.

The problem is stated as what a reader of the published tables knows:

* the value of every shown count;
* linear facts that hold between counts (a row adds up to its total, the groups of a
  one-choice dimension add up to the "(all)" row, nobody ticks an option more often than
  they answered, ...), each `lo <= sum(coefficient * count) <= hi`;
* the facts a published statistic adds (a rounded mean times its published base bounds the
  sum of the ratings), which only hold while that statistic is shown;
* that a hidden count shown as "<10" lies in 0..9 and one shown as "c" is at least 10.

`protect` hides (primary) every count below `k`, then hides more counts (complementary,
shown as "c") until linear programming over everything above cannot narrow any hidden count
to a single whole number. That is stronger than the usual "no row with exactly one hidden
cell" rule, which a pair of cells joined only to each other, or a total of 18 split into two
cells of at most 9, would defeat. Statistics (means, coin shares) that would still let a
hidden count be solved are withdrawn.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Status = Literal["shown", "primary", "secondary"]
# Complementary cells are chosen by the smallest value; a total costs more, because hiding a
# total hides the figure readers look for first.
TOTAL_COST = 1_000_000
EPS = 1e-7


@dataclass(frozen=True, slots=True)
class Fact:
    """lo <= sum(coefficient * count) <= hi, known to every reader."""

    coeffs: tuple[tuple[int, float], ...]
    lo: float
    hi: float

    @property
    def is_equality(self) -> bool:
        return self.lo == self.hi

    @property
    def variables(self) -> tuple[int, ...]:
        return tuple(v for v, _ in self.coeffs)


@dataclass(slots=True)
class Statistic:
    """A published figure (a mean, a share of coins) that is shown only while `requires` are shown."""

    requires: tuple[int, ...]
    facts: tuple[Fact, ...]
    withdrawn: bool = False


@dataclass
class Problem:
    """The counts of one set of linked tables, and what a reader knows about them."""

    values: list[int] = field(default_factory=list)
    names: list[object] = field(default_factory=list)
    totals: list[bool] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    statistics: list[Statistic] = field(default_factory=list)

    def count(self, name: object, value: int, total: bool = False) -> int:
        self.values.append(int(value))
        self.names.append(name)
        self.totals.append(total)
        return len(self.values) - 1

    def fact(self, coeffs: dict[int, float], lo: float, hi: float) -> None:
        items = tuple((v, float(c)) for v, c in coeffs.items() if c)
        if items:
            self.facts.append(Fact(items, float(lo), float(hi)))

    def equal(self, coeffs: dict[int, float], value: float = 0.0) -> None:
        self.fact(coeffs, value, value)

    def at_most(self, coeffs: dict[int, float], value: float = 0.0) -> None:
        self.fact(coeffs, -math.inf, value)

    def at_least(self, coeffs: dict[int, float], value: float = 0.0) -> None:
        self.fact(coeffs, value, math.inf)

    def statistic(self, requires: tuple[int, ...], facts: list[Fact]) -> int:
        self.statistics.append(Statistic(tuple(requires), tuple(facts)))
        return len(self.statistics) - 1


@dataclass(frozen=True)
class Protection:
    """Which counts are shown, which hidden (and why), and which statistics may be published."""

    status: tuple[Status, ...]
    statistic_shown: tuple[bool, ...]
    k: int

    def shown(self, var: int) -> bool:
        return self.status[var] == "shown"

    def marker(self, var: int) -> str:
        """"" for a shown count, "<k" for one below the threshold, "c" for one hidden to protect another."""
        s = self.status[var]
        return "" if s == "shown" else f"<{self.k}" if s == "primary" else "c"


def protect(problem: Problem, k: int) -> Protection:
    """Primary suppression below `k`, then complementary suppression until nothing can be recovered."""
    if k < 1:
        raise ValueError("the threshold must be at least 1")
    n = len(problem.values)
    status: list[Status] = ["primary" if v < k else "shown" for v in problem.values]
    by_var: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(problem.facts):
        for v in f.variables:
            by_var[v].append(i)
    stat_facts_of: dict[int, list[int]] = defaultdict(list)
    for s_idx, s in enumerate(problem.statistics):
        for f in s.facts:
            for v in f.variables:
                stat_facts_of[v].append(s_idx)
    stuck: set[int] = set()
    for _ in range(10 * n + 10):
        _close_single_gaps(problem, status)
        shown_stats = _shown_statistics(problem, status)
        pinned = [v for v in _pinned(problem, status, shown_stats, k) if v not in stuck]
        if not pinned:
            return Protection(tuple(status), tuple(shown_stats), k)
        structural = set(_pinned(problem, status, [False] * len(problem.statistics), k, only=pinned))
        # One new hidden count per fact and round: a pair pinned together is freed by one more.
        touched: set[int] = set()
        for v in pinned:
            if touched & set(by_var.get(v, [])):
                continue
            if v in structural:
                cand = _cheapest_neighbour(problem, status, by_var, v)
                if cand is not None:
                    status[cand] = "secondary"
                    touched |= set(by_var.get(cand, []))
                    continue
            # Pinned only through a published statistic: withdraw the statistics that touch it.
            withdrawn = False
            for s_idx in stat_facts_of.get(v, []):
                if shown_stats[s_idx] and not problem.statistics[s_idx].withdrawn:
                    problem.statistics[s_idx].withdrawn = True
                    withdrawn = True
            if not withdrawn:
                # Nothing left to hide around it; only reachable for tables that publish nothing.
                stuck.add(v)
    return Protection(tuple(status), tuple(_shown_statistics(problem, status)), k)


def _cost(problem: Problem, v: int) -> tuple[int, int]:
    return (problem.values[v] + (TOTAL_COST if problem.totals[v] else 0), v)


def _close_single_gaps(problem: Problem, status: list[Status]) -> None:
    """The classic rule: no equality (row, column) may have exactly one hidden count."""
    changed = True
    while changed:
        changed = False
        for f in problem.facts:
            if not f.is_equality:
                continue
            hidden = [v for v in f.variables if status[v] != "shown"]
            if len(hidden) != 1:
                continue
            shown = [v for v in f.variables if status[v] == "shown"]
            if not shown:
                continue
            status[min(shown, key=lambda v: _cost(problem, v))] = "secondary"
            changed = True


def _shown_statistics(problem: Problem, status: list[Status]) -> list[bool]:
    return [not s.withdrawn and all(status[v] == "shown" for v in s.requires)
            for s in problem.statistics]


def _cheapest_neighbour(problem: Problem, status: list[Status], by_var: dict[int, list[int]],
                        v: int) -> int | None:
    """A shown count that shares a fact with `v` (equalities first), or with `v`'s hidden partners."""
    for equality_only in (True, False):
        cands = {u for fi in by_var.get(v, []) for u in problem.facts[fi].variables
                 if status[u] == "shown" and (problem.facts[fi].is_equality or not equality_only)}
        if cands:
            return min(cands, key=lambda u: _cost(problem, u))
    partners = {u for fi in by_var.get(v, []) for u in problem.facts[fi].variables if status[u] != "shown"}
    cands = {u for p in partners for fi in by_var.get(p, []) for u in problem.facts[fi].variables
             if status[u] == "shown"}
    return min(cands, key=lambda u: _cost(problem, u)) if cands else None


def _bounds(status: Status, k: int) -> tuple[float, float | None]:
    return (0.0, float(k - 1)) if status == "primary" else (float(k), None)


def ranges(problem: Problem, status: list[Status] | tuple[Status, ...], shown_stats: list[bool] | tuple[bool, ...],
           k: int, only: list[int] | None = None) -> dict[int, tuple[float, float]]:
    """The smallest and largest value each hidden count can take, given everything published."""
    from scipy.optimize import linprog

    hidden = [v for v in range(len(problem.values)) if status[v] != "shown"]
    facts = list(problem.facts)
    for s, on in zip(problem.statistics, shown_stats, strict=True):
        if on:
            facts.extend(s.facts)
    # Substitute shown counts; keep the facts that still say something about hidden ones.
    reduced: list[tuple[dict[int, float], float, float]] = []
    for f in facts:
        const = 0.0
        coeffs: dict[int, float] = {}
        for v, c in f.coeffs:
            if status[v] == "shown":
                const += c * problem.values[v]
            else:
                coeffs[v] = coeffs.get(v, 0.0) + c
        if coeffs:
            reduced.append((coeffs, f.lo - const, f.hi - const))
    # Components of hidden counts linked by facts: each is solved on its own, small and fast.
    parent = {v: v for v in hidden}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for coeffs, _, _ in reduced:
        vs = list(coeffs)
        for u in vs[1:]:
            ra, rb = find(vs[0]), find(u)
            if ra != rb:
                parent[ra] = rb
    components: dict[int, list[int]] = defaultdict(list)
    for v in hidden:
        components[find(v)].append(v)
    facts_of: dict[int, list[int]] = defaultdict(list)
    for i, (coeffs, _, _) in enumerate(reduced):
        facts_of[find(next(iter(coeffs)))].append(i)
    wanted = set(only) if only is not None else set(hidden)
    out: dict[int, tuple[float, float]] = {}
    for root, members in components.items():
        targets = [v for v in members if v in wanted]
        if not targets:
            continue
        fis = facts_of.get(root, [])
        if not fis:
            for v in targets:
                lo, hi = _bounds(status[v], k)
                out[v] = (lo, math.inf if hi is None else hi)
            continue
        index = {v: j for j, v in enumerate(members)}
        a_eq, b_eq, a_ub, b_ub = [], [], [], []
        for fi in fis:
            coeffs, lo, hi = reduced[fi]
            row = np.zeros(len(members))
            for v, c in coeffs.items():
                row[index[v]] = c
            if lo == hi:
                a_eq.append(row)
                b_eq.append(lo)
                continue
            if hi != math.inf:
                a_ub.append(row)
                b_ub.append(hi)
            if lo != -math.inf:
                a_ub.append(-row)
                b_ub.append(-lo)
        bounds = [_bounds(status[v], k) for v in members]
        kwargs = {
            "A_eq": np.array(a_eq) if a_eq else None, "b_eq": np.array(b_eq) if b_eq else None,
            "A_ub": np.array(a_ub) if a_ub else None, "b_ub": np.array(b_ub) if b_ub else None,
            "bounds": bounds, "method": "highs",
        }
        for v in targets:
            c = np.zeros(len(members))
            c[index[v]] = 1.0
            low = linprog(c, **kwargs)
            high = linprog(-c, **kwargs)
            lo = low.fun if low.status == 0 else (0.0 if low.status == 3 else problem.values[v])
            hi = -high.fun if high.status == 0 else (math.inf if high.status == 3 else problem.values[v])
            out[v] = (lo, hi)
    return out


def _pinned(problem: Problem, status: list[Status], shown_stats: list[bool], k: int,
            only: list[int] | None = None) -> list[int]:
    """Hidden counts a reader could narrow to a single whole number."""
    found = []
    for v, (lo, hi) in sorted(ranges(problem, status, shown_stats, k, only).items()):
        if hi == math.inf:
            continue
        if math.floor(hi + EPS) - math.ceil(lo - EPS) < 1:
            found.append(v)
    return found
