"""Counts per group with disclosure control applied: the grouped layout and the report's tables.

Each question is protected as one problem spanning every group dimension (their "(all)"
rows are the same figures, so hiding one in one dimension must hide it in all); reach
(responses, completion, per group, invite and language) is one more problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.campaigns.schema import PREFER_NOT, Question

from analysis.contract import Column
from analysis.disclosure import MAX_NOISE, Fact, Problem, Protection, noise, perturb, protect
from analysis.reading import NOT_ASKED
from analysis.stats import MEAN_DECIMALS, SHARE_DECIMALS, mean_ci
from analysis.tally import (
    ALL_KEY,
    INVITE_DIM,
    LANGUAGE_DIM,
    QuestionTally,
    RowKey,
    Tally,
    rank_need,
)

# A group is flagged under-represented when its share among respondents is below this
# fraction of its share in the population (the "four-fifths" rule of thumb).
UNDER_REPRESENTED = 0.8
MEAN_EPS = 0.5 * 10 ** -MEAN_DECIMALS
SHARE_EPS = 0.5 * 10 ** -SHARE_DECIMALS

GROUPED_COLUMNS: tuple[Column, ...] = (
    ("campaign", "str"), ("dimension", "str"), ("group", "str"), ("question", "str"), ("type", "str"),
    ("option", "str"), ("n", "int"), ("share", "float"), ("mean", "float"), ("ci_low", "float"),
    ("ci_high", "float"), ("suppressed", "str"))


def grouped_columns(labels: bool = False) -> list[Column]:
    cols = list(GROUPED_COLUMNS)
    if labels:
        for after, name in (("group", "group_text"), ("question", "question_text"),
                            ("option", "option_text")):
            cols.insert([c for c, _ in cols].index(after) + 1, (name, "str"))
    return cols


@dataclass(slots=True)
class Line:
    """One line of the grouped layout; None means hidden (see `suppressed`) or not applicable."""

    dimension: str
    group: str
    question: str
    type: str
    option: str
    n: int | None
    share: float | None = None
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    suppressed: str = ""


@dataclass
class ProtectedQuestion:
    question: Question
    options: list[str]
    lines: dict[tuple[RowKey, str], Line] = field(default_factory=dict)

    def line(self, key: RowKey, option: str = "") -> Line:
        return self.lines[(key, option)]


@dataclass(slots=True)
class ReachLine:
    dimension: str
    group: str
    started: int | None
    completed: int | None
    completion: float | None
    sample_share: float | None
    population_share: float | None
    ratio: float | None
    flag: str  # "under-represented", "" or "unknown" (when hidden figures do not tell)
    suppressed: str  # marker of `started` ("" when shown)
    completed_suppressed: str


@dataclass
class Protected:
    """All published figures of a campaign, protected together."""

    k: int
    questions: dict[str, ProtectedQuestion]
    reach: dict[RowKey, ReachLine]
    known: dict[str, int | str]  # per dimension: how many named a group, or a marker when hidden
    # per dimension: what the sample shares are of: "named a group", or "asked" (everyone asked,
    # those who preferred not to say included) when the number who named a group is hidden
    share_base: dict[str, str] = field(default_factory=dict)


def _rows(t: Tally, dimension: str) -> list[RowKey]:
    return [(dimension, g) for g in t.dimension_rows(dimension)]


def _round(x: float, decimals: int) -> float:
    return round(float(x), decimals)


@dataclass
class _Plan:
    problem: Problem
    n: dict[tuple[RowKey, str], int]
    base: dict[RowKey, int]
    # row -> (statistic id, published numbers)
    stats: dict[RowKey, tuple[int, dict[str, float]]]


def _complements(p: Problem, t: Tally, d: str, whole: int, members: dict[RowKey, int], what: object) -> None:
    """In a multi-choice dimension "(all)" minus one group's row is a set of people too (those
    not in it): protect it with the rest, so no difference of published rows isolates a few."""
    if d in t.overlapping:
        for key, m in members.items():
            p.complement((what, key, "not in"), whole, m)


def question_problem(t: Tally, qt: QuestionTally, k: int | None = None) -> _Plan:
    """The counts of one question in every group, with what readers know about them.

    Means and coin shares are published from perturbed sums over perturbed bases (the cell key
    method, `analysis.disclosure`); what a reader learns from them about the true counts is
    stated as facts with the noise's width, so disclosure control sees exactly that."""
    k = k or t.ctx.min_group_size
    q = qt.question
    opts = qt.options
    p = Problem()
    n: dict[tuple[RowKey, str], int] = {}
    base: dict[RowKey, int] = {}
    dims = t.answered_dimensions()
    keys = [ALL_KEY, *[key for d in dims for key in _rows(t, d)]]
    for key in keys:
        cell = qt.rows.get(key)
        everyone = key == ALL_KEY
        answered = cell.base if cell else 0
        # How many in a row answered is a count of people: its zero is published (rule 1). An
        # option's zero is not ("nobody in the group said yes" is about every member), except
        # in a row where nobody answered at all.
        base[key] = p.count((q.id, key, ""), answered, tier=3 if everyone else 1, zero_shown=True,
                            key=cell.key if cell else 0)
        for o in opts:
            value = cell.counts.get(o, 0) if cell else 0
            n[(key, o)] = p.count((q.id, key, o), value, tier=2 if everyone else 0,
                                  zero_shown=answered == 0, key=cell.keys.get(o, 0) if cell else 0)
            # Everyone in a small group gave this answer (attribute disclosure, rule 5): the count
            # is withheld, so the row tells only "at least k of them". (Every ranking names each
            # option it ranks, and written-or-spoken says nothing of what was said: not answers.)
            if k <= answered < 2 * k and value == answered and q.type not in ("rank", "text"):
                p.withhold(n[(key, o)])
    tokens = q.tokens or 10
    for key in keys:
        ns = {n[(key, o)]: 1.0 for o in opts}
        b = base[key]
        if q.type in {"rating", "yesno", "choice", "text"}:
            p.equal({**ns, b: -1.0})
        elif q.type == "rank":
            p.equal({**ns, b: -float(rank_need(q))})
        elif q.type in {"multi", "budget"}:
            for v in ns:
                p.at_most({v: 1.0, b: -1.0})
            p.at_least({**ns, b: -1.0})
            if q.type == "budget":
                p.at_most({**ns, b: -float(min(tokens, len(opts)))})
    for d in dims:
        rows = _rows(t, d)
        for o in [*opts, None]:
            members = {key: (n[(key, o)] if o is not None else base[key]) for key in rows}
            whole = n[(ALL_KEY, o)] if o is not None else base[ALL_KEY]
            if d in t.overlapping:
                p.at_least({**dict.fromkeys(members.values(), 1.0), whole: -1.0})
                for m in members.values():
                    p.at_most({m: 1.0, whole: -1.0})
                _complements(p, t, d, whole, members, (q.id, o))
            else:
                p.equal({**dict.fromkeys(members.values(), 1.0), whole: -1.0})
    stats: dict[RowKey, tuple[int, dict[str, float]]] = {}
    for key in keys:
        cell = qt.rows.get(key)
        if cell is None or cell.base < 2:
            continue
        # The statistics are published only while the base is, so its published figure is known.
        b_pub = perturb(cell.base, cell.key, k)
        if b_pub < 2:
            continue
        facts: list[Fact] = []
        published: dict[str, float] = {}
        if q.type == "rating":
            top = float(q.rating_scale)
            total = cell.total + top * noise(cell.key, "sum")
            total_sq = cell.total_sq + top * top * noise(cell.key, "sum of squares")
            total = min(max(total, b_pub * 1.0), b_pub * top)  # every rating is 1..top
            total_sq = max(total_sq, total * total / b_pub)
            est = mean_ci(b_pub, total, total_sq)
            assert est is not None
            mean = _round(est.value, MEAN_DECIMALS)
            published = {"mean": mean}
            values = {n[(key, o)]: float(o) for o in opts}
            # What the mean tells about the true ratings: their sum, give or take the noise.
            slack = MAX_NOISE * top
            facts.append(Fact(tuple(values.items()), (mean - MEAN_EPS) * b_pub - slack,
                              (mean + MEAN_EPS) * b_pub + slack))
            # The interval ties the mean to the spread, which is not linear in the counts: it is
            # published only when the group's whole distribution is, so it reveals nothing new.
            interval = p.statistic((base[key], *(n[(key, o)] for o in opts)), [])
            published["interval"] = float(interval)
            published["ci_low"] = _round(max(est.low, 1.0), MEAN_DECIMALS)
            published["ci_high"] = _round(min(est.high, top), MEAN_DECIMALS)
        elif q.type in {"budget", "rank"}:
            most = float(tokens if q.type == "budget" else rank_need(q))
            sums = {o: max(cell.sums.get(o, 0.0) + most * noise(cell.keys.get(o, 0), "sum"), 0.0)
                    for o in opts}
            spent = sum(sums.values())
            for o in opts:
                s = sums[o]
                mean = _round(s / b_pub, MEAN_DECIMALS)
                published[f"mean:{o}"] = mean
                if q.type == "budget":
                    published[f"share:{o}"] = _round(s / spent if spent else 0.0, SHARE_DECIMALS)
                lo = (mean - MEAN_EPS) * b_pub - MAX_NOISE * most
                hi = (mean + MEAN_EPS) * b_pub + MAX_NOISE * most
                # Each backer gives between 1 and `most` coins (or points) to the option.
                v = n[(key, o)]
                facts.append(Fact(((v, 1.0),), max(lo, 0.0) / most, hi))
        else:
            continue
        stats[key] = (p.statistic((base[key],), facts), published)
    return _Plan(p, n, base, stats)


def _share(part: int | None, whole: int | None) -> float | None:
    """A share of two published (perturbed) figures; never above 100 %."""
    if part is None or not whole:
        return None
    return _round(min(part / whole, 1.0), SHARE_DECIMALS)


def _lines_for_question(t: Tally, qt: QuestionTally, plan: _Plan, prot: Protection) -> ProtectedQuestion:
    q = qt.question
    out = ProtectedQuestion(q, qt.options)
    keys = [ALL_KEY, *[key for d in t.answered_dimensions() for key in _rows(t, d)]]
    for key in keys:
        bvar = plan.base[key]
        b_shown = prot.shown(bvar)
        b_val = prot.value(bvar) if b_shown else None
        stat = plan.stats.get(key)
        stat_on = stat is not None and prot.statistic_shown[stat[0]]
        published = stat[1] if stat_on and stat else {}
        head = Line(key[0], key[1], q.id, q.type, "", prot.value(bvar), suppressed=prot.marker(bvar))
        if q.type == "rating":
            if stat_on:
                head.mean = published["mean"]
                if prot.statistic_shown[int(published["interval"])]:
                    head.ci_low, head.ci_high = published["ci_low"], published["ci_high"]
                elif not head.suppressed:
                    head.suppressed = "c"  # the interval is withheld (see the docs: rule 4)
            elif b_shown and stat is not None:
                head.suppressed = "c"  # the mean would let a hidden count be worked out
        out.lines[(key, "")] = head
        for o in qt.options:
            var = plan.n[(key, o)]
            shown = prot.shown(var)
            line = Line(key[0], key[1], q.id, q.type, o, prot.value(var), suppressed=prot.marker(var))
            if q.type == "budget":
                if stat_on:
                    line.share, line.mean = published[f"share:{o}"], published[f"mean:{o}"]
                elif not line.suppressed:
                    line.suppressed = head.suppressed or "c"
            else:
                if shown and b_shown and b_val:
                    line.share = _share(line.n, b_val)
                elif shown and not (b_shown and b_val == 0):  # nobody answered: no share to give
                    line.suppressed = head.suppressed or "c"
                if q.type == "rank":
                    if stat_on:
                        line.mean = published[f"mean:{o}"]
                    elif not line.suppressed:
                        line.suppressed = head.suppressed or "c"
            if shown and b_shown and b_val == 0:
                line.suppressed = ""  # nobody in the row answered: nothing is withheld
            out.lines[(key, o)] = line
    return out


def reach_problem(t: Tally) -> tuple[Problem, dict[tuple[RowKey, str], int]]:
    """Responses started and completed per group, invite and language, and who named a group."""
    p = Problem()
    var: dict[tuple[RowKey, str], int] = {}
    dims = [*t.answered_dimensions(), INVITE_DIM, LANGUAGE_DIM]
    keys = [ALL_KEY, *[key for d in dims for key in _rows(t, d)]]
    for key in keys:
        started, done, started_key, done_key = t.reach.get(key, [0, 0, 0, 0])
        everyone = key == ALL_KEY
        # Counts of people taking part: a zero is no risk to anyone and is published (rule 1).
        s = var[(key, "started")] = p.count((key, "started"), started, tier=3 if everyone else 1, zero_shown=True,
                                            key=started_key)
        c = var[(key, "completed")] = p.count((key, "completed"), done, tier=2 if everyone else 0, zero_shown=True,
                                              key=done_key)
        # Those who did not finish are not published, only implied (started - finished): it says
        # who stopped, not what anyone answered, so it is not hidden for being small (rule 1).
        u = var[(key, "unfinished")] = p.count((key, "unfinished"), started - done, derived=True)
        p.equal({c: 1.0, u: 1.0, s: -1.0})
    for d in dims:
        rows = _rows(t, d)
        for what in ("started", "completed", "unfinished"):
            members = [var[(key, what)] for key in rows]
            whole = var[(ALL_KEY, what)]
            if d in t.overlapping:
                p.at_least({**dict.fromkeys(members, 1.0), whole: -1.0})
                for m in members:
                    p.at_most({m: 1.0, whole: -1.0})
                if what != "unfinished":
                    _complements(p, t, d, whole, dict(zip(rows, members, strict=True)), what)
            else:
                p.equal({**dict.fromkeys(members, 1.0), whole: -1.0})
    for d in t.answered_dimensions():
        known = var[((d, ""), "known")] = p.count((d, "known"), t.known.get(d, 0), tier=2, zero_shown=True,
                                                  key=t.known_key.get(d, 0))
        groups = [var[((d, g), "started")] for g in t.ctx.group_ids(d)]
        # prefer_not_to_say and "not asked" exclude naming a group, so these three add up.
        p.equal({known: 1.0, var[((d, PREFER_NOT), "started")]: 1.0,
                 var[((d, NOT_ASKED), "started")]: 1.0, var[(ALL_KEY, "started")]: -1.0})
        if d in t.overlapping:
            p.at_least({**dict.fromkeys(groups, 1.0), known: -1.0})
            for g in groups:
                p.at_most({g: 1.0, known: -1.0})
            _complements(p, t, d, known, dict(zip(t.ctx.group_ids(d), groups, strict=True)), "known")
        else:
            p.equal({**dict.fromkeys(groups, 1.0), known: -1.0})
    return p, var


def _reach_lines(t: Tally, p: Problem, var: dict[tuple[RowKey, str], int], prot: Protection,
                 baseline: dict[str, dict[str, float]]
                 ) -> tuple[dict[RowKey, ReachLine], dict[str, int | str], dict[str, str]]:
    k = prot.k
    known: dict[str, int | str] = {}
    denominators: dict[str, int | None] = {}
    share_base: dict[str, str] = {}
    everyone = var[(ALL_KEY, "started")]
    for d in t.answered_dimensions():
        kv = var[((d, ""), "known")]
        known[d] = prot.value(kv) if prot.shown(kv) else prot.marker(kv)  # type: ignore[assignment]
        denominators[d] = prot.value(kv)
        share_base[d] = "named a group"
        nv = var[((d, NOT_ASKED), "started")]
        if not prot.shown(kv) and prot.shown(everyone) and prot.shown(nv):
            # The number who named a group is hidden (it would give away how many preferred not to
            # say): shares are then of everyone asked, from published counts only.
            denominators[d] = max(prot.value(everyone) - prot.value(nv), 0)  # type: ignore[operator]
            share_base[d] = "asked"
    dims = [*t.answered_dimensions(), INVITE_DIM, LANGUAGE_DIM]
    out: dict[RowKey, ReachLine] = {}
    for key in [ALL_KEY, *[key for d in dims for key in _rows(t, d)]]:
        sv, cv = var[(key, "started")], var[(key, "completed")]
        started = prot.value(sv)
        completed = prot.value(cv)
        completion = _share(completed, started)
        d, g = key
        pop = baseline.get(d, {}).get(g)
        sample = ratio = None
        flag = ""
        kn = denominators.get(d)
        if pop is not None:
            if started is not None and kn:
                sample = _share(started, kn)
                assert sample is not None
                # Derived from shown counts only, so it can carry two decimals.
                ratio = _round(sample / pop, 2) if pop > 0 else None
                flag = "under-represented" if ratio is not None and ratio < UNDER_REPRESENTED else ""
            elif prot.status[sv] == "primary" and kn and pop > 0:
                # Even at the most it could be (k - 1), is the group under-represented?
                flag = "under-represented" if (k - 1) / kn / pop < UNDER_REPRESENTED else "unknown"
            else:
                flag = "unknown"
        out[key] = ReachLine(d, g, started, completed, completion, sample, pop, ratio, flag,
                             prot.marker(sv), prot.marker(cv))
    return out, known, share_base


def protect_all(t: Tally, baseline: dict[str, dict[str, float]] | None = None,
                k: int | None = None) -> Protected:
    """Protect every question and the reach figures; `baseline` overrides the campaign's."""
    k = k or t.ctx.min_group_size
    questions: dict[str, ProtectedQuestion] = {}
    for qid, qt in t.questions.items():
        plan = question_problem(t, qt, k)
        prot = protect(plan.problem, k)
        questions[qid] = _lines_for_question(t, qt, plan, prot)
    p, var = reach_problem(t)
    prot = protect(p, k)
    reach, known, share_base = _reach_lines(t, p, var, prot, baseline if baseline is not None else t.ctx.baseline)
    return Protected(k, questions, reach, known, share_base)


def grouped_lines(t: Tally, protected: Protected, by: str | None = None) -> list[Line]:
    """The grouped layout's lines: dimension, question, then groups with "(all)" last."""
    lines: list[Line] = []
    answered = t.answered_dimensions()
    dims = [d for d in ([by] if by else t.ctx.dimension_ids()) if d in answered]
    if not dims and by is None:
        dims = [""]  # no group answers yet (or none asked): still publish everyone's figures
    for d in dims:
        for pq in protected.questions.values():
            for key in [*(_rows(t, d) if d else []), ALL_KEY]:
                for o in ["", *pq.options]:
                    line = pq.line(key, o)
                    line = Line(**{**{f: getattr(line, f) for f in Line.__slots__},
                                   "dimension": d if key == ALL_KEY else line.dimension,
                                   "suppressed": _export_marker(line)})
                    lines.append(line)
    return lines


def _export_marker(line: Line) -> str:
    """`suppressed` in the grouped layout: "<10" or "c" when `n` is hidden; when `n` is published
    and only figures derived from it are withheld, "c:" and which ("c:share", "c:mean",
    "c:interval"), so a row showing its n is never marked as if it were hidden."""
    if line.n is None or not line.suppressed:
        return line.suppressed
    withheld = []
    if line.option and line.share is None:
        withheld.append("share")
    if line.mean is None and ((line.type == "rating" and not line.option)
                              or (line.type in {"rank", "budget"} and line.option)):
        withheld.append("mean")
    if line.type == "rating" and not line.option and line.ci_low is None:
        withheld.append("interval")
    return "c:" + ",".join(withheld) if withheld else ""
