"""Disclosure control: nothing under the threshold is published, and nothing hidden can be worked out.

The attacks here are written independently of `analysis.disclosure`: they read only what was
published (the grouped export, the report) and try subtraction, exact linear algebra, and
brute force over the small integers a "<10" can stand for.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.optimize import linprog
from sqlalchemy import insert

from analysis import export_async, protect, synthesize_async
from analysis.disclosure import MAX_NOISE, Problem, ranges
from analysis.render import render_html, render_markdown
from analysis.report import report_model_async
from bot.campaigns.flow import validate_answer
from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import load_campaign
from bot.db import Database, upgrade
from bot.models import Answer, Participant, Response, ResponseGroup

K = 10


# ---------------------------------------------------------------- pure problems


def one_line(values: list[int]) -> Problem:
    p = Problem()
    cells = [p.count(i, v) for i, v in enumerate(values)]
    total = p.count("total", sum(values), tier=1)
    p.equal({**dict.fromkeys(cells, 1.0), total: -1.0})
    return p


def test_primary_hides_every_count_below_the_threshold_zero_included() -> None:
    prot = protect(one_line([0, 3, 9, 10, 40]), K)
    assert prot.status[:3] == ("primary", "primary", "primary")
    assert prot.marker(0) == "<10" and prot.shown(4)


def test_a_single_hidden_cell_gets_a_partner_the_smallest_one() -> None:
    prot = protect(one_line([3, 50, 60]), K)
    assert prot.status == ("primary", "secondary", "shown", "shown")
    assert prot.marker(1) == "c"


def test_two_nines_are_not_left_to_be_solved_from_their_bounds() -> None:
    """9 + 9 = 18 with both shown as "<10" would reveal both; a third cell must join them."""
    p = one_line([9, 9, 60])
    prot = protect(p, K)
    assert prot.status[2] == "secondary"
    for lo, hi in ranges(p, prot.status, prot.statistic_shown, K).values():
        assert hi - lo >= 1


def table_problem(grid: list[list[int]]) -> tuple[Problem, dict[tuple[int, int], int]]:
    """A groups x options table with row totals, column totals and a grand total."""
    p = Problem()
    idx: dict[tuple[int, int], int] = {}
    rows, cols = len(grid), len(grid[0])
    for r in range(rows):
        for c in range(cols):
            idx[(r, c)] = p.count((r, c), grid[r][c])
    for r in range(rows):
        idx[(r, cols)] = p.count((r, "total"), sum(grid[r]), tier=1)
    for c in range(cols):
        idx[(rows, c)] = p.count(("total", c), sum(g[c] for g in grid), tier=1)
    idx[(rows, cols)] = p.count("grand", sum(map(sum, grid)), tier=2)
    for r in range(rows + 1):
        p.equal({**{idx[(r, c)]: 1.0 for c in range(cols)}, idx[(r, cols)]: -1.0})
    for c in range(cols + 1):
        p.equal({**{idx[(r, c)]: 1.0 for r in range(rows)}, idx[(rows, c)]: -1.0})
    return p, idx


def determined_by_linear_algebra(equations: list[tuple[dict[Any, float], float]], unknowns: list[Any]) -> set[Any]:
    """Unknowns whose value follows from the equations alone (e_i lies in the row space)."""
    if not equations or not unknowns:
        return set()
    col = {u: j for j, u in enumerate(unknowns)}
    a = np.zeros((len(equations), len(unknowns)))
    for i, (coeffs, _) in enumerate(equations):
        for u, c in coeffs.items():
            a[i, col[u]] = c
    rank = np.linalg.matrix_rank(a)
    found = set()
    for u in unknowns:
        e = np.zeros((1, len(unknowns)))
        e[0, col[u]] = 1
        if np.linalg.matrix_rank(np.vstack([a, e])) == rank:
            found.add(u)
    return found


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_resist_every_linear_and_bounds_attack(seed: int) -> None:
    rng = np.random.default_rng(seed)
    grid = rng.choice([0, 1, 2, 4, 7, 9, 12, 15, 30, 60], size=(6, 5)).tolist()
    p, idx = table_problem(grid)
    prot = protect(p, K)
    value = {key: p.values[v] for key, v in idx.items()}
    hidden = [key for key, v in idx.items() if not prot.shown(v)]
    for key in hidden:  # markers tell the truth
        assert (value[key] < K) == (prot.status[idx[key]] == "primary")
    rows, cols = len(grid), len(grid[0])
    lines = [[(r, c) for c in range(cols + 1)] for r in range(rows + 1)]
    lines += [[(r, c) for r in range(rows + 1)] for c in range(cols + 1)]
    equations = []
    for line in lines:
        *cells, total = line
        coeffs = {**dict.fromkeys(cells, 1.0), total: -1.0}
        known = sum(c * value[u] for u, c in coeffs.items() if u not in hidden)
        unknown = {u: c for u, c in coeffs.items() if u in hidden}
        # Subtraction: a line with exactly one hidden cell gives it away.
        assert len(unknown) != 1, f"line {line} leaks {next(iter(unknown))}"
        if unknown:
            equations.append((unknown, -known))
    assert not determined_by_linear_algebra(equations, hidden)
    # Bounds too: "<10" means 0..9, "c" means 10 or more.
    col = {u: j for j, u in enumerate(hidden)}
    a_eq = np.zeros((len(equations), len(hidden)))
    for i, (coeffs, _) in enumerate(equations):
        for u, c in coeffs.items():
            a_eq[i, col[u]] = c
    b_eq = [b for _, b in equations]
    bounds = [(0, K - 1) if value[u] < K else (K, None) for u in hidden]
    for u in hidden:
        c = np.zeros(len(hidden))
        c[col[u]] = 1
        lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds).fun
        hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=bounds)
        hi_v = math.inf if hi.status == 3 else -hi.fun
        assert hi_v - lo >= 1 - 1e-7, f"{u} narrowed to {lo}..{hi_v}"


# ---------------------------------------------------------------- crafted data in the database


async def add_responses(db: Database, spec: CampaignSpec, people: list[tuple[dict[str, list[str]], dict[str, Any]]]
                        ) -> None:
    """Insert responses directly (fast), every value checked by validate_answer."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    async with db.session() as s:
        for i, (groups, answers) in enumerate(people):
            pid = (await s.execute(insert(Participant).returning(Participant.id),
                                   [{"pseudonym": hashlib.sha256(f"crafted{i}".encode()).hexdigest(),
                                     "language": "en"}])).scalar_one()
            rid = (await s.execute(insert(Response).returning(Response.id), [{
                "campaign_id": spec.id, "participant_id": pid, "language": "en",
                "started_at": now, "completed_at": now + timedelta(minutes=2)}])).scalar_one()
            for dim, gs in groups.items():
                await s.execute(insert(ResponseGroup), [{"response_id": rid, "dimension_id": dim, "groups": gs,
                                                         "answered_at": now}])
            rows = [{"response_id": rid, "question_id": qid, "status": "answered" if v is not None else "skipped",
                     "value": validate_answer(spec.question(qid), v) if v is not None else None,
                     "answered_at": now} for qid, v in answers.items()]
            if rows:
                await s.execute(insert(Answer), rows)
        await s.commit()


def read_grouped(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def solutions(hidden_ranges: list[range], check: Any, limit: int = 2) -> list[tuple[int, ...]]:
    """Brute force: every combination of hidden values that fits what was published (up to `limit`)."""
    found = []
    for combo in itertools.product(*hidden_ranges):
        if check(combo):
            found.append(combo)
            if len(found) >= limit:
                break
    return found


def rating_row_solutions(rows: list[dict[str, str]], limit: int = 2) -> list[tuple[int, ...]]:
    """Brute force one group's hidden rating counts from its published row, mean and interval."""
    head = next(r for r in rows if r["option"] == "")
    cells = {int(r["option"]): r for r in rows if r["option"]}
    hidden = [v for v, r in cells.items() if r["n"] == ""]
    known = {v: int(r["n"]) for v, r in cells.items() if r["n"]}
    base = int(head["n"])
    top = max(cells)
    # Every published count is the true one give or take MAX_NOISE (the cell key method), and the
    # mean is of a sum perturbed by up to MAX_NOISE * top: a reader who knows the method allows for
    # both. (The interval is computed from the perturbed sums, so it adds nothing exact.)
    slack = MAX_NOISE * (1 + len(known))
    ranges_ = [range(K) if cells[v]["suppressed"] == "<10" else range(K, base + slack + 1) for v in hidden]

    def fits(combo: tuple[int, ...]) -> bool:
        counts = {**known, **dict(zip(hidden, combo, strict=True))}
        if abs(sum(counts.values()) - base) > slack:
            return False
        total = sum(v * n for v, n in counts.items())
        if head["mean"] and abs(total - float(head["mean"]) * base) > 0.05 * base + MAX_NOISE * top + slack * top:
            return False
        return True

    return solutions(ranges_, fits, limit)


async def test_a_mean_cannot_give_away_the_hidden_ratings(db, example_spec, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Twenty people aged 65+ rate 1 (x2), 3 (x10), 5 (x8): the row total, the mean 3.6 and its
    interval would solve the two hidden cells exactly. Protection must hide more, or withdraw."""
    async with db.session() as s:
        await load_campaign(s, example_spec)
        await s.commit()
    people: list[tuple[dict[str, list[str]], dict[str, Any]]] = []
    for group, ratings in (("25_64", [1, 2, 3, 4, 5] * 20), ("under25", [1, 2, 3, 4, 5] * 10),
                           ("over64", [1] * 2 + [3] * 10 + [5] * 8),
                           ("prefer_not_to_say", [2, 4] * 10), (None, [1, 2, 3, 4, 5] * 3)):
        for v in ratings:
            people.append(({"age": [group]} if group else {}, {"ease": {"value": v}}))
    await add_responses(db, example_spec, people)
    out = tmp_path / "g.csv"
    await export_async(db, "clinic-access", out, "grouped", by="age")
    rows = [r for r in read_grouped(out) if r["question"] == "ease" and r["group"] == "over64"]
    assert abs(int(next(r for r in rows if r["option"] == "")["n"]) - 20) <= MAX_NOISE
    assert [r["n"] for r in rows if r["option"] in ("1", "5")] == ["", ""]
    assert len(rating_row_solutions(rows)) >= 2, "the published figures pin the hidden ratings"


# ---------------------------------------------------------------- synthetic campaign, every output


async def synthetic(db: Database, spec: CampaignSpec, n: int = 260, seed: int = 5) -> None:
    async with db.session() as s:
        await load_campaign(s, spec)
        await s.commit()
    await synthesize_async(db, spec.id, n, seed=seed)


SINGLE_ANSWER = {"rating", "yesno", "choice", "text"}


async def _publish(url: str, spec: CampaignSpec, out: Path) -> dict[str, Any]:
    db = Database(url)
    try:
        await synthetic(db, spec)
        files = {}
        for fmt in ("csv", "json", "parquet", "xlsx"):
            files[fmt] = out / f"grouped.{fmt}"
            await export_async(db, "clinic-access", files[fmt], "grouped")
        model = await report_model_async(db, "clinic-access")
    finally:
        await db.dispose()
    return {"files": files, "model": model, "html": render_html(model), "md": render_markdown(model),
            "spec": spec}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              example_spec: CampaignSpec) -> Any:
    """One synthetic campaign per backend, exported and reported once for all the attacks below."""
    import asyncio

    from tests.conftest import create_pg_database, drop_pg_database

    out = tmp_path_factory.mktemp(f"published-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{out}/coassess.db"
        asyncio.run(upgrade(url))
        yield asyncio.run(_publish(url, example_spec, out))
        return
    url = asyncio.run(create_pg_database())
    try:
        asyncio.run(upgrade(url))
        yield asyncio.run(_publish(url, example_spec, out))
    finally:
        asyncio.run(drop_pg_database(url))


def test_no_published_count_is_under_the_threshold_in_any_format(published) -> None:  # type: ignore[no-untyped-def]
    from tests.test_analysis_export import read_back

    csv_header, csv_rows = read_back(published["files"]["csv"], "csv")
    assert any(r[csv_header.index("suppressed")] == "<10" for r in csv_rows), "the data has small groups"
    for fmt, path in published["files"].items():
        header, rows = read_back(path, fmt)
        assert header == csv_header
        assert sorted(map(_numbers, rows)) == sorted(map(_numbers, csv_rows)), f"{fmt} differs from csv"
        n = header.index("n")
        for r in rows:
            # A zero is published only where it is a count of people (nobody in the row answered).
            assert r[n] == "" or int(r[n]) >= K or (int(r[n]) == 0 and _nobody_answered(rows, header, r)), f"{fmt}: {r}"
            if r[n] == "":
                assert r[header.index("suppressed")] in ("<10", "c")
            else:  # a row that shows its n is never marked as hidden
                assert r[header.index("suppressed")] not in ("<10", "c"), f"{fmt}: {r}"


def _nobody_answered(rows: list[list[str]], header: list[str], r: list[str]) -> bool:
    """Whether the question row of r's group has n = 0."""
    col = {c: header.index(c) for c in ("dimension", "group", "question", "option", "n")}
    return any(x[col["dimension"]] == r[col["dimension"]] and x[col["group"]] == r[col["group"]]
               and x[col["question"]] == r[col["question"]] and x[col["option"]] in ("", None)
               and str(x[col["n"]]) in ("0", "0.0") for x in rows)


def _numbers(row: list[str]) -> tuple[str, ...]:
    """Cells compared as numbers where they are numbers ("1.0" in CSV is 1 in JSON)."""
    out = []
    for c in row:
        try:
            out.append(repr(float(c)))
        except ValueError:
            out.append(c)
    return tuple(out)


def _walk(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, node


COUNT_FIELDS = re.compile(r"\.(n|started|completed|answers|written|voice_notes|named_a_group)$")


def test_report_publishes_no_small_counts(published) -> None:  # type: ignore[no-untyped-def]
    model = published["model"]
    text = json.dumps(model, ensure_ascii=False)
    assert '"<10"' in text
    for path, value in _walk(model):
        if COUNT_FIELDS.search(path) and isinstance(value, int | float):
            assert value >= K or value == 0, f"{path} = {value}"
        if re.search(r"\.words\[\d+\]\[1\]$", path):
            assert value is None or value >= K, f"{path}: a word used by fewer than {K} people"
    for section in model["codesign"]:
        for d in section["dimensions"]:
            for row in d["rows"]:
                for block in row["quotes"]:
                    assert len(block["texts"]) == min(8, K)  # the number shown never tells a count
    # HTML and Markdown: every table cell that is a plain whole number is a count.
    for cell in re.findall(r"<td>([\d,]+)(?:</td>|<br>)", published["html"]):
        assert int(cell.replace(",", "")) >= K or int(cell) == 0
    md = published["md"].splitlines()
    body = [line for i, line in enumerate(md) if line.startswith("| ") and not
            (i + 1 < len(md) and md[i + 1].startswith("|---"))]  # not the header rows (rating 1..5)
    for line in body:
        for cell in re.findall(r"\| ([\d,]+) (?=\|)", line):
            assert int(cell.replace(",", "")) >= K or int(cell) == 0, line
    assert "&lt;10" in published["html"] and "<10" in published["md"]


def test_no_hidden_count_can_be_recovered_from_the_grouped_export(published) -> None:  # type: ignore[no-untyped-def]
    spec: CampaignSpec = published["spec"]
    rows = read_grouped(published["files"]["csv"])
    # Which dimensions add up (nobody in two groups)? Only those allow exact column subtraction.
    overlapping = {d.id for d in spec.groups if d.multiple}
    cells: dict[tuple[str, str, str, str], str] = {}
    types = {}
    for r in rows:
        cells[(r["question"], r["dimension"], r["group"], r["option"])] = r["n"]
        types[r["question"]] = r["type"]
    recovered = []
    equations: dict[str, list[tuple[dict[Any, float], float]]] = defaultdict(list)
    unknowns: dict[str, set[Any]] = defaultdict(set)

    def unknown_key(q: str, d: str, g: str, o: str) -> Any:
        return (q, "*", g, o) if g == "(all)" else (q, d, g, o)

    by_line: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for (q, d, g, o), n in cells.items():
        by_line[(q, d, g)][o] = n
    for (q, d, g), line in by_line.items():
        kind = types[q]
        if kind not in SINGLE_ANSWER and kind != "rank":
            continue
        factor = 3 if kind == "rank" else 1  # every ranking orders 3 options in this campaign
        hidden = [o for o, n in line.items() if n == "" and o != ""]
        total = line[""]
        coeffs: dict[Any, float] = {unknown_key(q, d, g, o): 1.0 for o in hidden}
        known = sum(int(n) for o, n in line.items() if o and n)
        if total == "":
            coeffs[unknown_key(q, d, g, "")] = -float(factor)
            rhs = -known
        else:
            rhs = factor * int(total) - known
        if len(coeffs) == 1:
            recovered.append((q, d, g))
        if coeffs:
            equations[q].append((coeffs, rhs))
            unknowns[q] |= set(coeffs)
    columns: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for (q, d, g, o), n in cells.items():
        columns[(q, d, o)][g] = n
    for (q, d, o), col in columns.items():
        if d in overlapping:
            continue
        hidden = [g for g, n in col.items() if n == "" and g != "(all)"]
        coeffs = {unknown_key(q, d, g, o): 1.0 for g in hidden}
        known = sum(int(n) for g, n in col.items() if g != "(all)" and n)
        if col["(all)"] == "":
            coeffs[unknown_key(q, d, "(all)", o)] = -1.0
            rhs = -known
        else:
            rhs = int(col["(all)"]) - known
        if len(coeffs) == 1:
            recovered.append((q, d, o))
        if coeffs:
            equations[q].append((coeffs, rhs))
            unknowns[q] |= set(coeffs)
    assert not recovered, f"subtraction recovers: {recovered[:5]}"
    for q, eqs in equations.items():
        assert not determined_by_linear_algebra(eqs, sorted(unknowns[q], key=str)), q


def test_no_rating_row_can_be_solved_from_its_mean(published) -> None:  # type: ignore[no-untyped-def]
    rows = read_grouped(published["files"]["csv"])
    lines: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["type"] == "rating":
            lines[(r["dimension"], r["group"])].append(r)
    tried = 0
    for key, line in lines.items():
        head = next(r for r in line if r["option"] == "")
        hidden = [r for r in line if r["option"] and r["n"] == ""]
        if head["n"] and head["mean"] and hidden and len(hidden) <= 4:
            tried += 1
            assert len(rating_row_solutions(line)) >= 2, key
    assert tried, "the synthetic data should have rows with a mean and hidden cells"


def test_reach_shows_tiny_groups_as_under_represented_not_as_numbers(published) -> None:  # type: ignore[no-untyped-def]
    model = published["model"]
    flagged = [r for d in model["reach"]["dimensions"] for r in d["rows"] if r["started"] == "<10"]
    assert flagged
    assert any(r["flag"] == "under-represented" for r in flagged)
    for r in flagged:
        assert r["ratio"] in (None, "<10") and r["sample_share"] in (None, "<10")


# ---------------------------------------------------------------- zeros and the demo's reach table


def reach_like(groups: dict[str, tuple[int, int]], k: int = K) -> tuple[Problem, dict[tuple[str, str], int]]:
    """Started and finished per group (one-choice), as `analysis.summary.reach_problem` states them."""
    p = Problem()
    var: dict[tuple[str, str], int] = {}
    for g, (started, done) in {**groups, "(all)": tuple(map(sum, zip(*groups.values(), strict=True)))}.items():
        top = g == "(all)"
        s = var[(g, "started")] = p.count((g, "started"), started, tier=3 if top else 1, zero_shown=True)
        c = var[(g, "completed")] = p.count((g, "completed"), done, tier=2 if top else 0, zero_shown=True)
        u = var[(g, "unfinished")] = p.count((g, "unfinished"), started - done, derived=True)
        p.equal({c: 1.0, u: 1.0, s: -1.0})
    for what in ("started", "completed", "unfinished"):
        p.equal({**{var[(g, what)]: 1.0 for g in groups}, var[("(all)", what)]: -1.0})
    return p, var


def test_a_zero_not_asked_row_hides_neither_the_totals_nor_the_big_groups() -> None:
    """The demo: yes 105, no 85, prefer not 10 (9 finished), not asked 0: 200 started, 171 finished."""
    p, var = reach_like({"yes": (105, 90), "no": (85, 71), "prefer": (10, 10), "not_asked": (0, 0)})
    prot = protect(p, K)
    published = [v for v, (_, what) in enumerate(p.names) if what != "unfinished"]
    assert all(prot.shown(v) for v in published)  # the zero row and 1..9 unfinished hide nothing
    # With 9 of the 10 finishing, that 9 is hidden and one partner in its column, but the totals
    # and the started column stay.
    p, var = reach_like({"yes": (105, 90), "no": (85, 72), "prefer": (10, 9), "not_asked": (0, 0)})
    prot = protect(p, K)
    assert prot.shown(var[("(all)", "started")]) and prot.shown(var[("(all)", "completed")])
    assert all(prot.shown(var[(g, "started")]) for g in ("yes", "no", "prefer", "not_asked"))
    assert prot.marker(var[("prefer", "completed")]) == "<10"
    assert sum(not prot.shown(var[(g, "completed")]) for g in ("yes", "no")) == 1
    for v, (lo, hi) in ranges(p, prot.status, prot.statistic_shown, K).items():
        assert hi - lo >= 1 or p.names[v][1] == "unfinished"  # never published


def test_a_published_zero_does_not_let_a_small_neighbour_be_worked_out() -> None:
    """Prefer-not 6 and not-asked 0 beside a published total: '<10' is then 1..9, and 6 must not be pinned."""
    p, var = reach_like({"yes": (60, 49), "no": (54, 45), "prefer": (6, 5), "not_asked": (0, 0)})
    prot = protect(p, K)
    assert prot.shown(var[("(all)", "started")]) and prot.shown(var[("(all)", "completed")])
    assert prot.marker(var[("prefer", "started")]) == "<10"
    assert not prot.shown(var[("no", "started")])  # 120 - 60 - 54 - 0 would give the 6 away
    got = ranges(p, prot.status, prot.statistic_shown, K)
    assert got[var[("prefer", "started")]][1] - got[var[("prefer", "started")]][0] >= 1
    assert got[var[("prefer", "started")]][0] >= 1  # readers know zeros are shown


def test_zero_answers_in_a_group_are_shown_but_a_zero_option_is_not() -> None:
    p = Problem()
    base = p.count("base", 0, tier=1, zero_shown=True)
    opts = [p.count(o, 0, zero_shown=True) for o in "ab"]
    p.equal({**dict.fromkeys(opts, 1.0), base: -1.0})
    q = one_line([0, 30, 40])
    assert all(protect(p, K).shown(v) for v in (base, *opts))
    assert protect(q, K).marker(0) == "<10"


def started_and_completed(started: list[int], completed: list[int]) -> tuple[Problem, list[int]]:
    """Groups' started (tier 1) and completed counts, the unfinished implied, with their totals."""
    p = Problem()
    s_vars, c_vars, u_vars = [], [], []
    for s, c in zip(started, completed, strict=True):
        s_vars.append(p.count(("started", len(s_vars)), s, tier=1, zero_shown=True))
        c_vars.append(p.count(("completed", len(c_vars)), c, zero_shown=True))
        u_vars.append(p.count(("unfinished", len(u_vars)), s - c, derived=True))
        p.equal({c_vars[-1]: 1, u_vars[-1]: 1, s_vars[-1]: -1})
    ts = p.count("started", sum(started), tier=3, zero_shown=True)
    tc = p.count("completed", sum(completed), tier=2, zero_shown=True)
    tu = p.count("unfinished", sum(started) - sum(completed), derived=True)
    p.equal({tc: 1, tu: 1, ts: -1})
    for members, whole in ((s_vars, ts), (c_vars, tc), (u_vars, tu)):
        p.equal({**dict.fromkeys(members, 1), whole: -1})
    return p, s_vars


def test_complementary_suppression_does_not_hide_the_largest_group_where_less_will_do() -> None:
    """Issue 15, point 23: 56, 1 and 48 started (6, 1 and 48 finished). The 1 is hidden; hiding
    the 48 who started (and finished) protects it; the 56, the largest group, need not go too."""
    p, started = started_and_completed([56, 1, 48], [6, 1, 48])
    prot = protect(p, K)
    assert prot.status[started[1]] == "primary"
    assert prot.shown(started[0]), "the largest group's figure was hidden where a smaller cell did the work"
    hidden = sum(v for i, (v, s) in enumerate(zip(p.values, prot.status, strict=True))
                 if s == "secondary" and not p.derived[i])
    assert hidden <= 96  # 48 started and 48 finished; hiding the 56 too made it 152
    for v, (lo, hi) in ranges(p, prot.status, prot.statistic_shown, K).items():
        assert p.derived[v] or hi - lo >= 1, "a hidden count can be worked out"


def test_the_perturbation_table_keeps_zeros_the_threshold_and_its_mean() -> None:
    """Cell key method: zeros stay zero, no count of k or more is published below k, the noise is
    at most MAX_NOISE, fixed by (cell key, count), and unbiased at every count."""
    from analysis.disclosure import MODULUS, perturb

    keys = range(0, MODULUS, MODULUS // 4000)
    assert all(perturb(0, key, K) == 0 for key in keys)
    for count in (K, K + 1, K + 2, 57):
        figures = [perturb(count, key, K) for key in keys]
        assert min(figures) >= K and all(abs(f - count) <= MAX_NOISE for f in figures)
        assert abs(sum(figures) / len(figures) - count) < 0.1  # unbiased
        assert figures == [perturb(count, key, K) for key in keys]  # the same every time
    assert {perturb(K, key, K) for key in keys} == {K}
    assert {perturb(57, key, K) for key in keys} == {55, 56, 57, 58, 59}


def test_a_shown_count_is_published_only_with_its_cell_key() -> None:
    p = Problem()
    v = p.count("people", 40)
    with pytest.raises(ValueError, match="no cell key"):
        protect(p, K).value(v)
    p = Problem()
    v = p.count("people", 40, key=123)
    w = p.count("nobody", 0, zero_shown=True)  # a zero needs no key: it stays zero
    assert abs(protect(p, K).value(v) - 40) <= MAX_NOISE and protect(p, K).value(w) == 0


async def test_a_complementary_count_shown_again_leaves_no_row_with_one_hidden_count(
        example_spec: CampaignSpec, tmp_path: Path) -> None:
    """A full suite run found, about once in 25 draws of the random record keys, a line of the
    grouped export with one hidden count (ease × disability "no": total 155 and four options
    shown, option 2 hidden), so it could be worked out by subtraction. The cause: the last step,
    which shows again complementary counts that turn out unneeded, checked only that no small count
    could be pinned, not the classic rule. The synthetic campaign of that draw is kept (its record
    keys are in it) so the case is tested every time."""
    import gzip
    import shutil

    db_path = tmp_path / "coassess.db"
    with gzip.open(Path(__file__).parent / "data" / "disclosure-single-gap.db.gz", "rb") as src, \
            db_path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    url = f"sqlite+aiosqlite:///{db_path}"
    await upgrade(url)
    db = Database(url)
    try:
        await export_async(db, "clinic-access", tmp_path / "grouped.csv", "grouped")
    finally:
        await db.dispose()
    test_no_hidden_count_can_be_recovered_from_the_grouped_export(
        {"spec": example_spec, "files": {"csv": tmp_path / "grouped.csv"}})
