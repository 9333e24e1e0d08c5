"""Disclosure control: hide every count below the threshold, and enough others that none can be worked out.

The problem is stated as what a reader of the published tables knows:

* the value of every shown count;
* linear facts that hold between counts (a row adds up to its total, the groups of a
  one-choice dimension add up to the "(all)" row, nobody ticks an option more often than
  they answered, ...), each `lo <= sum(coefficient * count) <= hi`;
* the facts a published statistic adds (a rounded mean times its published base bounds the
  sum of the ratings), which only hold while that statistic is shown;
* that a hidden count shown as "<10" lies in 0..9 and one shown as "c" is at least 10;
* for counts marked `zero_shown` (counts of people in reach tables, a group's number of
  answers), that a zero is always published, so a "<10" there lies in 1..9.

`zero_shown` counts are never suppressed at zero: "nobody in this row" is no risk to anyone
(there is nobody to single out), and hiding a structural zero such as "not asked" would make
complementary suppression hide totals and large groups around it.

`protect` hides (primary) every count below `k`, then hides more counts (complementary,
shown as "c") until integer programming over everything above cannot narrow any hidden count
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
# Complementary cells are chosen by the smallest value within the cheapest tier: totals sit in
# higher tiers (a group's total, then the "(all)" row, then the grand total), because hiding a
# total hides the figure readers look for first.
TIER_COST = 1_000_000
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
    tiers: list[int] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    statistics: list[Statistic] = field(default_factory=list)
    zero_shown: list[bool] = field(default_factory=list)
    derived: list[bool] = field(default_factory=list)

    def count(self, name: object, value: int, tier: int = 0, zero_shown: bool = False,
              derived: bool = False) -> int:
        """A count; `tier` 0 for a cell, higher for totals that should be hidden only if needed.

        `zero_shown`: a zero here is published (never hidden), so readers know a hidden value
        of this count is at least 1. Use it for counts of people whose zero tells nothing
        about anyone (reach, a group's number of answers), not for answer options.
        `derived`: a count that is never published itself, only linked to published ones by
        facts (those who started but did not finish): it is never hidden for being small, readers
        know it only as "0 or more" plus what the facts imply, and it is not itself protected.
        """
        self.values.append(int(value))
        self.names.append(name)
        self.tiers.append(int(tier))
        self.zero_shown.append(bool(zero_shown))
        self.derived.append(bool(derived))
        return len(self.values) - 1

    def is_derived(self, var: int) -> bool:
        return var < len(self.derived) and self.derived[var]

    def zero_safe(self, var: int, k: int) -> bool:
        """A published zero (with k >= 3, so that "<k" still leaves two values 1..k-1)."""
        return k >= 3 and bool(self.zero_shown[var]) if var < len(self.zero_shown) else False

    def hideable(self, var: int, k: int) -> bool:
        """Whether a shown count may become a complementary cell (a published zero may not)."""
        return self.is_derived(var) or not (self.values[var] == 0 and self.zero_safe(var, k))

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


# Exporting one campaign in several formats protects the same tables again; the outcome is a
# pure function of the problem, so it is remembered (a handful of entries, by content).
_CACHE: dict[tuple[object, ...], tuple[tuple[Status, ...], tuple[bool, ...]]] = {}
_CACHE_SIZE = 64


def _key(problem: Problem, k: int) -> tuple[object, ...]:
    return (k, tuple(problem.values), tuple(problem.tiers), tuple(problem.zero_shown), tuple(problem.derived),
            tuple(problem.facts),
            tuple((s.requires, s.facts, s.withdrawn) for s in problem.statistics))


def protect(problem: Problem, k: int) -> Protection:
    """Primary suppression below `k`, then complementary suppression until nothing can be recovered."""
    if k < 1:
        raise ValueError("the threshold must be at least 1")
    key = _key(problem, k)
    cached = _CACHE.get(key)
    if cached is None:
        protection = _protect(problem, k)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (protection.status, tuple(s.withdrawn for s in problem.statistics))
        return protection
    status, withdrawn = cached
    for s, w in zip(problem.statistics, withdrawn, strict=True):
        s.withdrawn = w
    return Protection(status, tuple(_shown_statistics(problem, list(status))), k)


def _protect(problem: Problem, k: int) -> Protection:
    n = len(problem.values)
    status: list[Status] = ["secondary" if problem.is_derived(i)  # not published at all
                            else "primary" if v < k and not (v == 0 and problem.zero_safe(i, k)) else "shown"
                            for i, v in enumerate(problem.values)]
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
        _close_single_gaps(problem, status, k)
        shown_stats = _shown_statistics(problem, status)
        pinned = [v for v in _pinned(problem, status, shown_stats, k)
                  if v not in stuck and not problem.is_derived(v)]
        if not pinned:
            return Protection(tuple(status), tuple(shown_stats), k)
        structural = set(_pinned(problem, status, [False] * len(problem.statistics), k, only=pinned))
        # One new hidden count per fact and round: a pair pinned together is freed by one more.
        touched: set[int] = set()
        for v in pinned:
            if touched & set(by_var.get(v, [])):
                continue
            if v in structural:
                cand = _cheapest_neighbour(problem, status, by_var, v, k)
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
    if problem.is_derived(v):
        return (-1, v)  # not published: hiding it costs nothing
    return (problem.values[v] + TIER_COST * problem.tiers[v], v)


def _close_single_gaps(problem: Problem, status: list[Status], k: int) -> None:
    """The classic rule: no equality (row, column) may have exactly one hidden count."""
    changed = True
    while changed:
        changed = False
        for f in problem.facts:
            if not f.is_equality:
                continue
            hidden = [v for v in f.variables if status[v] != "shown"]
            if len(hidden) != 1 or problem.is_derived(hidden[0]):
                continue
            shown = [v for v in f.variables if status[v] == "shown" and problem.hideable(v, k)]
            if not shown:
                continue
            status[min(shown, key=lambda v: _cost(problem, v))] = "secondary"
            changed = True


def _shown_statistics(problem: Problem, status: list[Status]) -> list[bool]:
    return [not s.withdrawn and all(status[v] == "shown" for v in s.requires)
            for s in problem.statistics]


def _cheapest_neighbour(problem: Problem, status: list[Status], by_var: dict[int, list[int]],
                        v: int, k: int) -> int | None:
    """A shown count that shares a fact with `v` (equalities first), or with `v`'s hidden partners."""
    for equality_only in (True, False):
        cands = {u for fi in by_var.get(v, []) for u in problem.facts[fi].variables
                 if status[u] == "shown" and problem.hideable(u, k)
                 and (problem.facts[fi].is_equality or not equality_only)}
        if cands:
            return min(cands, key=lambda u: _cost(problem, u))
    partners = {u for fi in by_var.get(v, []) for u in problem.facts[fi].variables if status[u] != "shown"}
    cands = {u for p in partners for fi in by_var.get(p, []) for u in problem.facts[fi].variables
             if status[u] == "shown" and problem.hideable(u, k)}
    return min(cands, key=lambda u: _cost(problem, u)) if cands else None


def _bounds(status: Status, k: int, zero_safe: bool = False, derived: bool = False) -> tuple[float, float | None]:
    if derived:
        return (0.0, None)
    if status == "primary":
        return (1.0 if zero_safe else 0.0, float(k - 1))
    return (float(k), None)


@dataclass
class _Component:
    """Hidden counts linked by facts, as one small linear programme."""

    members: list[int]
    targets: list[int]
    lp: dict[str, object] | None  # linprog keyword arguments; None when no fact links them


def _components(problem: Problem, status: list[Status] | tuple[Status, ...],
                shown_stats: list[bool] | tuple[bool, ...], k: int, only: list[int] | None) -> list[_Component]:
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
    groups: dict[int, list[int]] = defaultdict(list)
    for v in hidden:
        groups[find(v)].append(v)
    facts_of: dict[int, list[int]] = defaultdict(list)
    for i, (coeffs, _, _) in enumerate(reduced):
        facts_of[find(next(iter(coeffs)))].append(i)
    wanted = set(only) if only is not None else set(hidden)
    out = []
    for root, members in groups.items():
        targets = [v for v in members if v in wanted]
        if not targets:
            continue
        fis = facts_of.get(root, [])
        if not fis:
            out.append(_Component(members, targets, None))
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
        out.append(_Component(members, targets, {
            "A_eq": np.array(a_eq) if a_eq else None, "b_eq": np.array(b_eq) if b_eq else None,
            "A_ub": np.array(a_ub) if a_ub else None, "b_ub": np.array(b_ub) if b_ub else None,
            "bounds": [_bounds(status[v], k, problem.zero_safe(v, k), problem.is_derived(v)) for v in members], "method": "highs"}))
    return out


def ranges(problem: Problem, status: list[Status] | tuple[Status, ...], shown_stats: list[bool] | tuple[bool, ...],
           k: int, only: list[int] | None = None) -> dict[int, tuple[float, float]]:
    """The smallest and largest value each hidden count can take, given everything published."""
    from scipy.optimize import linprog

    out: dict[int, tuple[float, float]] = {}
    for comp in _components(problem, status, shown_stats, k, only):
        if comp.lp is None:
            for v in comp.targets:
                lo, hi = _bounds(status[v], k, problem.zero_safe(v, k), problem.is_derived(v))
                out[v] = (lo, math.inf if hi is None else hi)
            continue
        for v in comp.targets:
            c = np.zeros(len(comp.members))
            c[comp.members.index(v)] = 1.0
            low = linprog(c, **comp.lp)
            high = linprog(-c, **comp.lp)
            lo = low.fun if low.status == 0 else (0.0 if low.status == 3 else problem.values[v])
            hi = -high.fun if high.status == 0 else (math.inf if high.status == 3 else problem.values[v])
            out[v] = (lo, hi)
    return out


def _pinned(problem: Problem, status: list[Status], shown_stats: list[bool], k: int,
            only: list[int] | None = None) -> list[int]:
    """Hidden counts a reader could narrow to a single whole number.

    Counts are whole numbers and a reader knows it, so this is an integer programme (HiGHS
    through SciPy's `milp`): the true counts are one solution, and a count is safe once another
    whole-number solution gives it a different value. A few shared objectives clear most
    counts at once; the rest are asked one by one ("can it be lower? higher?").
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    found = []
    for comp in _components(problem, status, shown_stats, k, only):
        if comp.lp is None:
            continue  # only bounds: 0..k-1 (1..k-1 with k >= 3) or k and up, never a single value
        lp = comp.lp
        n = len(comp.members)
        truth = np.array([problem.values[v] for v in comp.members], dtype=float)
        constraints = []
        if lp["A_eq"] is not None:
            constraints.append(LinearConstraint(lp["A_eq"], lp["b_eq"], lp["b_eq"]))
        if lp["A_ub"] is not None:
            constraints.append(LinearConstraint(lp["A_ub"], -np.inf, lp["b_ub"]))
        lower = np.array([b[0] for b in lp["bounds"]], dtype=float)
        upper = np.array([np.inf if b[1] is None else b[1] for b in lp["bounds"]], dtype=float)
        integral = np.ones(n)
        open_ = set(comp.targets)

        def solve(c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
            res = milp(c, integrality=integral, bounds=Bounds(lo, hi), constraints=constraints,
                       options={"time_limit": 5.0})
            return res.x if res.status == 0 and res.x is not None else None

        def clear(x: np.ndarray | None) -> None:
            if x is None:
                return
            for j, v in enumerate(comp.members):
                if v in open_ and abs(x[j] - truth[j]) >= 0.5:
                    open_.discard(v)

        # Opposite and random directions reach different corners, each clearing many counts.
        rng = np.random.default_rng(len(comp.members))
        directions = [np.ones(n), -np.ones(n)] + [rng.choice([-1.0, 1.0], n) for _ in range(6)]
        stale = 0
        for c in directions:
            if not open_ or stale >= 2:
                break
            before = len(open_)
            clear(solve(c, lower, upper))
            stale = stale + 1 if len(open_) == before else 0
        for v in sorted(open_):
            if v not in open_:
                continue
            j = comp.members.index(v)
            for side in ("below", "above"):
                lo, hi = lower.copy(), upper.copy()
                if side == "below":
                    hi[j] = min(hi[j], truth[j] - 1)
                else:
                    lo[j] = max(lo[j], truth[j] + 1)
                if lo[j] > hi[j]:
                    continue
                clear(solve(np.zeros(n), lo, hi))
                if v not in open_:
                    break
            if v in open_:
                found.append(v)
    return sorted(found)
