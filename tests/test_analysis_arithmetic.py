"""Ranking, budget and weighting arithmetic against small examples worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.inputs import InputFileError, read_baseline, read_weights
from analysis.priority import borda_points, coin_shares, compare_orders, order, ranks, weighted_mean
from analysis.reading import CampaignContext
from analysis.stats import mean_ci, wilson
from analysis.weighting import (
    UNKNOWN,
    kish_effective_size,
    need_multipliers,
    population_weights,
    rake,
    raking_targets,
)
from analysis.words import WordCounter, tokenize
from bot.campaigns.store import load_campaign
from tests.test_analysis_disclosure import add_responses

# ---------------------------------------------------------------- Borda points and coin shares


def test_borda_points_for_a_partial_ranking() -> None:
    # pick 3 of 4: first 3 points, second 2, third 1, the unranked option 0
    assert borda_points(["online", "interpreters", "evening"], ["interpreters", "evening", "online", "waiting"], 3) == {
        "interpreters": 2, "evening": 1, "online": 3, "waiting": 0}


def test_group_borda_score_is_the_mean_over_its_people() -> None:
    options = ["a", "b", "c"]
    rankings = [["a", "b"], ["b", "a"], ["b", "c"]]  # pick 2
    matrix = np.array([[borda_points(r, options, 2)[o] for o in options] for r in rankings], dtype=float)
    # a: 2 + 1 + 0 = 3 -> 1.0; b: 1 + 2 + 2 = 5 -> 1.667; c: 0 + 0 + 1 = 1 -> 0.333
    assert weighted_mean(matrix) == pytest.approx([1.0, 5 / 3, 1 / 3])
    assert order(dict(zip(options, weighted_mean(matrix), strict=True))) == ["b", "a", "c"]


def test_coin_shares_and_their_group_mean() -> None:
    assert coin_shares({"a": 5, "b": 3, "c": 2}) == {"a": 0.5, "b": 0.3, "c": 0.2}
    assert coin_shares({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}
    people = [coin_shares({"a": 10, "b": 0}), coin_shares({"a": 2, "b": 8})]
    matrix = np.array([[p["a"], p["b"]] for p in people])
    assert weighted_mean(matrix) == pytest.approx([0.6, 0.4])
    # the first person counts three times: a = (3 * 1.0 + 0.2) / 4 = 0.8
    assert weighted_mean(matrix, np.array([3.0, 1.0])) == pytest.approx([0.8, 0.2])


def test_ranks_share_ties_and_orders_are_compared() -> None:
    assert ranks({"a": 0.5, "b": 0.5, "c": 0.1}) == {"a": 1, "b": 1, "c": 3}
    table = compare_orders(["x", "y"], {"unweighted": [0.33, 0.67], "population": [0.6, 0.4]})
    assert list(table.columns) == ["option", "unweighted", "unweighted_rank", "population", "population_rank",
                                   "orders_differ"]
    assert table["unweighted_rank"].tolist() == [2, 1] and table["population_rank"].tolist() == [1, 2]
    assert table["orders_differ"].all()


# ---------------------------------------------------------------- weights


def test_kish_effective_sample_size() -> None:
    assert kish_effective_size([1, 1, 1, 1]) == 4
    assert kish_effective_size([1, 1, 2, 2]) == pytest.approx(36 / 10)  # (1+1+2+2)^2 / (1+1+4+4)
    assert kish_effective_size([]) == 0


def test_one_dimension_is_post_stratification() -> None:
    frame = pd.DataFrame({"age": ["a"] * 30 + ["b"] * 70})
    w, converged = rake(frame, {"age": {"a": 50.0, "b": 50.0}})
    assert converged
    assert w[0] == pytest.approx(50 / 30) and w[-1] == pytest.approx(50 / 70)
    assert w.mean() == pytest.approx(1.0)


def ipf(frame: pd.DataFrame, targets: dict[str, dict[str, float]], rounds: int = 500) -> np.ndarray:
    """A plain reference implementation of raking, to check the library against."""
    w = np.ones(len(frame))
    for _ in range(rounds):
        for col, shares in targets.items():
            for cat, pct in shares.items():
                mask = (frame[col] == cat).to_numpy()
                w[mask] *= (pct / 100 * len(frame)) / w[mask].sum()
    return w


def test_two_dimensions_match_their_margins_and_a_reference_ipf() -> None:
    frame = pd.DataFrame({"age": ["a"] * 30 + ["b"] * 70, "area": ["x"] * 10 + ["y"] * 20 + ["x"] * 30 + ["y"] * 40})
    targets = {"age": {"a": 50.0, "b": 50.0}, "area": {"x": 20.0, "y": 80.0}}
    w, converged = rake(frame, targets)
    assert converged
    assert w[frame["age"] == "a"].sum() == pytest.approx(50, abs=1e-3)
    assert w[frame["area"] == "x"].sum() == pytest.approx(20, abs=1e-3)
    assert w == pytest.approx(ipf(frame, targets), abs=1e-3)


def test_unknown_groups_keep_their_share_and_missing_groups_are_reported() -> None:
    cats = ["a"] * 6 + ["b"] * 2 + [UNKNOWN] * 2
    targets, missing = raking_targets(cats, {"a": 0.5, "b": 0.3, "c": 0.2})
    # c has nobody: a and b share the known 80 % as 0.5 : 0.3
    assert missing == ["c"]
    assert targets == pytest.approx({"a": 50.0, "b": 30.0, UNKNOWN: 20.0})


def test_population_weights_from_memberships() -> None:
    # dimension "age": 3 in a, 1 in b, one prefer-not; baseline 50/50
    members = [(("a",),), (("a",),), (("a",),), (("b",),), (("prefer_not_to_say",),)]
    w = population_weights(members, ["age"], {"age": {"a": 0.5, "b": 0.5}}, {"age": ["a", "b"]})
    # known 80 % split evenly: a: 40 % / 60 % of sample, b: 40 % / 20 %, unknown stays 20 %
    assert w.values == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0, 1.0])
    assert w.effective_size == pytest.approx(kish_effective_size(w.values))


def test_need_multipliers_multiply_across_dimensions() -> None:
    members = [(("somali",), ("yes",)), (("somali", "arabic"), ("no",)), (("other",), ("yes",))]
    need = {"community": {"somali": 2.0, "arabic": 1.5}, "disability": {"yes": 3.0}}
    # 2 x 3; the highest of somali/arabic (2) x 1; 1 x 3
    assert need_multipliers(members, ["community", "disability"], need).tolist() == [6.0, 2.0, 3.0]


# ---------------------------------------------------------------- intervals and words


def test_mean_interval_and_wilson() -> None:
    est = mean_ci(4, 2 + 4 + 4 + 6, 4 + 16 + 16 + 36)
    assert est is not None
    half = 3.182446305 * math.sqrt((8 / 3) / 4)  # t(0.975, 3) * s / sqrt(n)
    assert (est.value, est.low, est.high) == pytest.approx((4.0, 4 - half, 4 + half))
    w = wilson(5, 10)
    assert w is not None and (w.low, w.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_tokenisation_is_language_aware() -> None:
    assert tokenize("The evening appointments are too late, evening!", "en") == ["evening", "appointments", "late",
                                                                                "evening"]
    # Arabic: diacritics and tatweel go, stop words (في) go
    assert tokenize("مواعيـد مَسائية في المركز", "ar") == ["مواعید", "مسائیه", "المرکز"]
    # Persian: the zero-width non-joiner stays inside the word
    assert tokenize("نوبت‌دهی آنلاین", "fa") == ["نوبت\u200cدهی", "انلاین"]
    assert tokenize("перекладач і лікар", "uk") == ["перекладач", "лікар"]
    assert tokenize("call [phone] now", "en") == ["call", "now"]


def test_frequent_words_only_above_the_threshold() -> None:
    counter = WordCounter()
    for _ in range(12):
        counter.add("Interpreter needed at reception", "en")
    counter.add("My neighbour Fatima Ahmed", "en")  # rare words can identify someone
    top = dict(counter.frequent(10))
    assert top == {"interpreter": 12, "needed": 12, "reception": 12}


# ---------------------------------------------------------------- the officer's CSV files


@pytest.fixture
def ctx(example_spec) -> CampaignContext:  # type: ignore[no-untyped-def]
    return CampaignContext("clinic-access", example_spec, 10, {}, {})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_baseline_csv_accepts_what_spreadsheets_write(tmp_path, ctx) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "Dimension;Group;Share\nage;under25;30%\nage;25_64;0,52\nage;over64;0.18\n")
    assert read_baseline(path, ctx) == {"age": {"under25": 0.3, "25_64": 0.52, "over64": 0.18}}


@pytest.mark.parametrize(("text", "line", "message"), [
    ("dim,group,share\nage,under25,0.3\n", 1, "columns must be named dimension,group,share"),
    ("dimension,group,share\ncolour,red,0.3\n", 2, "no group dimension 'colour'"),
    ("dimension,group,share\nage,teen,0.3\n", 2, "'age' has no group 'teen'"),
    ("dimension,group,share\nage,under25,abc\n", 2, "'abc' is not a number"),
    ("dimension,group,share\nage,under25,30\n", 2, "share 30 is not between 0 and 1"),
    ("dimension,group,share\nage,under25,0.3\nage,under25,0.3\n", 3, "already given on line 2"),
    ("dimension,group,share\nage,under25,0.3\nage,25_64,0.3\n", 2, "add up to 0.6, not 1"),
])
def test_baseline_csv_errors_name_the_line(tmp_path, ctx, text, line, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputFileError, match=message) as info:
        read_baseline(write(tmp_path, text), ctx)
    assert info.value.line == line
    assert str(info.value).startswith(f"{tmp_path / 'f.csv'}, line {line}:")


def test_weights_csv(tmp_path, ctx) -> None:  # type: ignore[no-untyped-def]
    assert read_weights(write(tmp_path, "dimension,group,weight\ncommunity,somali,2\n"), ctx) == {
        "community": {"somali": 2.0}}
    with pytest.raises(InputFileError, match="above 0"):
        read_weights(write(tmp_path, "dimension,group,weight\ncommunity,somali,0\n"), ctx)
    with pytest.raises(InputFileError, match="does not exist"):
        read_weights(tmp_path / "missing.csv", ctx)


# ---------------------------------------------------------------- the three orders, end to end


async def test_priorities_three_ways_from_the_database(db, example_spec) -> None:  # type: ignore[no-untyped-def]
    """40 people under 25 put all coins on interpreters, 80 aged 25-64 all on evening hours.

    Unweighted: interpreters 40/120 = 0.333, evening 0.667.
    Population 60 % / 40 %: weights 0.6/(1/3) = 1.8 and 0.4/(2/3) = 0.6, so interpreters
    0.6 and evening 0.4: the order flips. Need weight 2 for 25-64: evening weighs 80 x 1.2 = 96
    against 40 x 1.8 = 72: interpreters 72/168 = 0.429, evening 0.571, and it flips back.
    """
    async with db.session() as s:
        await load_campaign(s, example_spec)
        await s.commit()
    young = ({"age": ["under25"]}, {"spend": {"coins": {"interpreters": 10}}, "order": {
        "order": ["interpreters", "online", "evening"]}})
    middle = ({"age": ["25_64"]}, {"spend": {"coins": {"evening": 10}}, "order": {
        "order": ["evening", "online", "interpreters"]}})
    await add_responses(db, example_spec, [young] * 40 + [middle] * 80)
    table = await analysis.priorities_async(db, "clinic-access",
                                            baseline={"age": {"under25": 0.6, "25_64": 0.4, "over64": 0.0}},
                                            weights={"age": {"25_64": 2.0}})
    spend = table[table["question"] == "spend"].set_index("option")
    assert spend.loc["interpreters", "unweighted"] == pytest.approx(1 / 3)
    assert spend.loc["interpreters", "population"] == pytest.approx(0.6, abs=1e-4)
    assert spend.loc["interpreters", "solidarity"] == pytest.approx(18 / 42, abs=1e-4)
    assert spend.loc["online", "unweighted"] == 0
    assert spend.loc["interpreters", ["unweighted_rank", "population_rank", "solidarity_rank"]].tolist() == [2, 1, 2]
    order_ = table[table["question"] == "order"].set_index("option")
    # Borda, pick 3: interpreters 3 points from 40 people, 1 from 80 -> 200 / 120
    assert order_.loc["interpreters", "unweighted"] == pytest.approx(200 / 120)
    assert order_.loc["interpreters", "population"] == pytest.approx((40 * 1.8 * 3 + 80 * 0.6 * 1) / 120, abs=1e-3)
    assert bool(order_["orders_differ"].any())
