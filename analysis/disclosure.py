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

Every shown count is then published perturbed by the cell key method (ABS TableBuilder, ONS
Census 2021): each response carries a random record key; a cell's key is the sum of its
records' keys modulo `MODULUS`; a fixed table maps (cell key, count) to a perturbation of at
most `MAX_NOISE`. The same people always give the same figure, one person more or less gives
unrelated noise, so outputs compared over time or side by side no longer tell what one person
answered (`Protection.value`, `perturb`; docs/analysis.md, "Disclosure control").
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from bot.models import RECORD_KEY_MODULUS

Status = Literal["shown", "primary", "secondary"]
# Complementary cells are chosen by the smallest value within the cheapest tier: totals sit in
# higher tiers (a group's total, then the "(all)" row, then the grand total), because hiding a
# total hides the figure readers look for first.
TIER_COST = 1_000_000
EPS = 1e-7

# The cell key method. Record keys are whole numbers 0 <= key < MODULUS (`new_record_key`), a
# cell's key is their sum modulo MODULUS (`cell_key`). The perturbation table: a count of k + 2
# or more moves by -2..+2 with these chances (mean 0, variance 1.2); counts closer to the
# threshold use the same table cut to -1..+1 (k + 1: variance 0.5) or 0 (k), so that no count of
# k or more is ever published below k; zeros stay zero. The noise is unbiased at every count.
MODULUS = RECORD_KEY_MODULUS
MAX_NOISE = 2
NOISE: dict[int, float] = {-2: 0.1, -1: 0.2, 0: 0.4, 1: 0.2, 2: 0.1}


def cell_key(keys: Iterable[int]) -> int:
    """The key of a cell: the sum of its records' keys, modulo MODULUS."""
    return sum(keys) % MODULUS


def _table(width: int) -> list[tuple[int, float]]:
    """The perturbation table cut to -width..width, as cumulative chances."""
    chances = {d: c for d, c in NOISE.items() if abs(d) <= width}
    total = sum(chances.values())
    out, acc = [], 0.0
    for d in sorted(chances):
        acc += chances[d] / total
        out.append((d, acc))
    return out


_TABLES = [_table(w) for w in range(MAX_NOISE + 1)]


def perturbation(key: int, count: int, k: int) -> int:
    """The perturbation table's entry for a cell with this key and (true) count."""
    floor = max(k, 1)
    if count < floor:
        return 0  # a zero (or a small count published anyway): left as it is
    width = min(MAX_NOISE, count - floor)
    digest = hashlib.blake2b(f"{key % MODULUS}:{count}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2 ** 64  # uniform on [0, 1), fixed by (key, count)
    for d, acc in _TABLES[width]:
        if u < acc:
            return d
    return 0


def noise(key: int, what: str) -> int:
    """The perturbation table's full-width entry for a magnitude (`what`: "sum", "sum of squares")
    of the cell with this key: the same people always give the same noise."""
    digest = hashlib.blake2b(f"{key % MODULUS}:{what}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2 ** 64
    for d, acc in _TABLES[MAX_NOISE]:
        if u < acc:
            return d
    return 0


def perturb(count: int, key: int, k: int) -> int:
    """The published figure of a count whose cell key is `key` (same key and count, same figure)."""
    return int(count) + perturbation(key, int(count), k)


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
    keys: list[int | None] = field(default_factory=list)
    implied: list[bool] = field(default_factory=list)
    withheld: set[int] = field(default_factory=set)

    def count(self, name: object, value: int, tier: int = 0, zero_shown: bool = False,
              derived: bool = False, *, key: int | None = None, implied: bool = False) -> int:
        """A count; `tier` 0 for a cell, higher for totals that should be hidden only if needed.

        `zero_shown`: a zero here is published (never hidden), so readers know a hidden value
        of this count is at least 1. Use it for counts of people whose zero tells nothing
        about anyone (reach, a group's number of answers), not for answer options.
        `derived`: a count that is never published itself, only linked to published ones by
        facts (those who started but did not finish): it is never hidden for being small, readers
        know it only as "0 or more" plus what the facts imply, and it is not itself protected.
        `key`: the cell key (`cell_key` of its records' keys); a shown count is published only
        through `Protection.value`, which perturbs it with this key.
        `implied`: a count that is never published but that readers can work out from published
        ones (everyone minus a group of a multi-choice dimension: the people not in it); below
        the threshold it is protected like a hidden cell, otherwise it is free (`derived`).
        """
        self.values.append(int(value))
        self.names.append(name)
        self.tiers.append(int(tier))
        self.zero_shown.append(bool(zero_shown))
        self.derived.append(bool(derived))
        self.keys.append(None if key is None else int(key) % MODULUS)
        self.implied.append(bool(implied))
        return len(self.values) - 1

    def withhold(self, var: int) -> None:
        """Hide a count that is not small but tells about everyone in its row (every member of a
        small group gave this answer: attribute disclosure); it shows as "c"."""
        self.withheld.add(var)

    def complement(self, name: object, whole: int, part: int) -> int:
        """The people in `whole` but not in `part` (e.g. "(all)" minus a group of a multi-choice
        dimension), as an implied count: a difference of two published rows must not single out
        fewer than k people."""
        v = self.count(name, self.values[whole] - self.values[part], implied=True)
        self.equal({v: 1.0, part: 1.0, whole: -1.0})
        return v

    def is_derived(self, var: int) -> bool:
        return var < len(self.derived) and self.derived[var]

    def is_implied(self, var: int) -> bool:
        return var < len(self.implied) and self.implied[var]

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
    values: tuple[int, ...] = ()
    keys: tuple[int | None, ...] = ()

    def shown(self, var: int) -> bool:
        return self.status[var] == "shown"

    def value(self, var: int) -> int | None:
        """The published figure of a count: perturbed with its cell key when shown, None when hidden."""
        if not self.shown(var):
            return None
        if self.values[var] == 0:
            return 0  # zeros stay zero, whatever the key
        key = self.keys[var] if var < len(self.keys) else None
        if key is None:
            raise ValueError(f"count {var} has no cell key: it cannot be published")
        return perturb(self.values[var], key, self.k)

    def text(self, var: int) -> str:
        """The published figure as text: the perturbed count, or its marker ("<k", "c")."""
        v = self.value(var)
        return str(v) if v is not None else self.marker(var)

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
            tuple(problem.implied), tuple(sorted(problem.withheld)), tuple(problem.facts),
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
        return Protection(protection.status, protection.statistic_shown, k, tuple(problem.values),
                          tuple(problem.keys))
    status, withdrawn = cached
    for s, w in zip(problem.statistics, withdrawn, strict=True):
        s.withdrawn = w
    return Protection(status, tuple(_shown_statistics(problem, list(status))), k, tuple(problem.values),
                      tuple(problem.keys))


def _protect(problem: Problem, k: int) -> Protection:
    n = len(problem.values)
    for i, v in enumerate(problem.values):
        if problem.is_implied(i) and not 0 < v < k:
            problem.derived[i] = True  # nobody, or k or more: nothing to protect
    status: list[Status] = ["secondary" if problem.is_derived(i)  # not published at all
                            else "primary" if problem.is_implied(i)
                            or (v < k and not (v == 0 and problem.zero_safe(i, k))) else "shown"
                            for i, v in enumerate(problem.values)]
    for i in problem.withheld:
        if status[i] == "shown":
            status[i] = "secondary"
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
            _show_what_is_not_needed(problem, status, k, stuck)
            return Protection(tuple(status), tuple(_shown_statistics(problem, status)), k)
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


# Complementary cells are chosen one at a time, cheapest first; a cell chosen early can turn out
# unneeded once later ones are hidden (issue 15, point 23: the largest age group was hidden where
# a smaller cell did the work). So, last, each complementary cell is tried shown again, most
# costly first, and stays shown when nothing hidden can then be worked out.
RESTORE_TRIES = 12
CANDIDATE_TRIES = 6  # complementary candidates tried (cheapest first) for one pinned count


def _show_what_is_not_needed(problem: Problem, status: list[Status], k: int, stuck: set[int]) -> None:
    secondary = [v for v, s in enumerate(status) if s == "secondary" and not problem.is_derived(v)
                 and v not in problem.withheld and not problem.is_implied(v)]
    facts_of: dict[int, list[Fact]] = defaultdict(list)
    for f in problem.facts:
        if f.is_equality:
            for u in f.variables:
                facts_of[u].append(f)
    for v in sorted(secondary, key=lambda u: _cost(problem, u), reverse=True)[:RESTORE_TRIES]:
        status[v] = "shown"
        if _leaves_a_single_gap(problem, status, facts_of[v]):
            status[v] = "secondary"  # the classic rule first: no row or column with one hidden count
            continue
        pinned = [u for u in _pinned(problem, status, _shown_statistics(problem, status), k)
                  if u not in stuck and not problem.is_derived(u)]
        if pinned:
            status[v] = "secondary"


def _leaves_a_single_gap(problem: Problem, status: list[Status], facts: list[Fact]) -> bool:
    """Whether one of these equalities (a row, a column) has exactly one hidden published count: it
    could be worked out by subtraction, even where the counts it protects stay safe."""
    for f in facts:
        hidden = [u for u in f.variables if status[u] != "shown"]
        if len(hidden) == 1 and not problem.is_derived(hidden[0]):
            return True
    return False


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
    """The cheapest shown count whose hiding frees `v`: among those that share a fact with `v` or
    with `v`'s hidden partners, by cost (tier first, then value), the first one that leaves `v`
    with more than one possible value; failing that, the cheapest.

    Looking past `v`'s own facts matters: a small "completed" cell beside a hidden partner often
    does the work that a group's whole "started" figure (a higher tier) would otherwise do.
    """
    partners = {u for fi in by_var.get(v, []) for u in problem.facts[fi].variables
                if status[u] != "shown" and u != v}
    cands = {u for p in {v, *partners} for fi in by_var.get(p, []) for u in problem.facts[fi].variables
             if status[u] == "shown" and problem.hideable(u, k)}
    if not cands:
        return None
    ordered = sorted(cands, key=lambda u: _cost(problem, u))
    for u in ordered[:CANDIDATE_TRIES]:
        status[u] = "secondary"
        freed = not _pinned(problem, status, _shown_statistics(problem, status), k, only=[v])
        status[u] = "shown"
        if freed:
            return u
    return ordered[0]


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
