"""Property tests: whatever an administrator writes, `check_text` answers with a campaign or with
problems a person can act on; it never crashes, hangs or echoes a pasted block back."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.campaigns.check import CheckResult, check_text
from bot.campaigns.schema import QUESTION_TYPES, CampaignSpec
from bot.campaigns.source import parse
from tests.conftest import EXAMPLE

FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXAMPLE_DATA: dict[str, Any] = parse(EXAMPLE.read_text(encoding="utf-8")).data


def assert_sound(result: CheckResult) -> None:
    """Either a valid campaign, or problems each with a short, readable message and a real line."""
    if result.ok:
        spec = result.spec
        assert isinstance(spec, CampaignSpec)
        assert CampaignSpec.model_validate(spec.model_dump()) == spec
        ids = [q.id for q in spec.questions]
        assert len(ids) == len(set(ids))
        for i, q in enumerate(spec.questions):
            for ref in q.show_if or {}:
                assert ref in ids[:i]
        for lang in spec.languages:
            assert spec.title.get(lang, "").strip()
        return
    assert result.spec is None
    assert result.problems
    for p in result.problems:
        assert isinstance(p.message, str) and p.message.strip()
        assert p.line is None or (isinstance(p.line, int) and p.line >= 1)
        rendered = p.render(result.name)
        assert len(rendered) < 1000, rendered[:200]


def check_yaml(data: Any) -> CheckResult:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    result = check_text(text, "fuzz.yaml")
    assert_sound(result)
    return result


# -- random text


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    assert_sound(check_text(text, "fuzz.yaml"))


TOKENS = ["id: ", "mode: ", "languages: ", "title: ", "questions:", "options:", "show_if: ",
          "type: ", "text: ", "en: ", "- ", "\n", "  ", "    ", "{", "}", "[", "]", ": ", ", ", "'", '"',
          "&a ", "*a", "<<: *a", "? ", "--- ", "...", "%YAML 1.1\n", "|\n", ">-\n", "# c", "\t",
          "!!binary ", "!!python/object:os.system ", "!!int ", "!!float ", "!!bool ", "!!timestamp ",
          "!!str ", "!!set ", "!!omap ", "!!pairs ", "!!null ", "!local ", "yes", "no", "~", "null",
          "1e999", "-.inf", ".nan", "0x1F", "0o17", "2026-13-45", "2026-01-01T25:00:00", "99" * 20,
          "ü", "عربي", "🙂", "\u200f", "\x00", "\x85", "\ufeff", "rating", "choice", "abc", "q1"]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=60).map("".join))
def test_yaml_like_text(text: str) -> None:
    assert_sound(check_text(text, "fuzz.yaml"))


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 1500), st.sampled_from(["[", "{a: ", "- ", "[{x: "]))
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": "", "[{x: ": "}]"}[opener]
    assert_sound(check_text("id: abc\nquestions: " + opener * depth + "1" + closer * depth))


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    result = check_text("\n".join(lines) + "\n")
    assert_sound(result)
    assert any("too many values" in p.message for p in result.problems)


# -- the example with random damage


SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**20)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
           | st.text(min_size=2000, max_size=3000) | st.sampled_from(["", "other", "prefer_not_to_say", "en",
                                                                      "rating", "EN", "x y", "ü"])
           | st.datetimes(timezones=st.just(UTC)))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def damaged_example(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(EXAMPLE_DATA)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "deep"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "deep":
            parent[path[-1]] = _deep(draw(st.integers(10, 200)))
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return data


@FUZZ
@given(damaged_example())
def test_damaged_example(data: Any) -> None:
    check_yaml(data)


def test_undamaged_example_passes() -> None:
    assert check_yaml(copy.deepcopy(EXAMPLE_DATA)).ok


# -- campaigns built from the schema: valid by construction, then perhaps slightly wrong

LANGUAGE_CODES = ["en", "ar", "so", "uk", "fa", "fa-AF", "es", "ti", "ps"]
WORDS = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=30)
WORDS = WORDS.filter(lambda t: t.strip() != "")


@st.composite
def valid_campaign(draw: st.DrawFn) -> dict[str, Any]:
    langs = draw(st.lists(st.sampled_from(LANGUAGE_CODES), min_size=1, max_size=3, unique=True))
    ids = iter(draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
        lambda x: x not in {"other", "prefer_not_to_say"}), min_size=40, max_size=40, unique=True)))

    def texts() -> dict[str, str]:
        return {lang: draw(WORDS) for lang in langs}

    def options(n: int) -> list[dict[str, Any]]:
        return [{"id": next(ids), "text": texts()} for _ in range(n)]

    questions: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        qtype = draw(st.sampled_from(QUESTION_TYPES))
        q: dict[str, Any] = {"id": next(ids), "type": qtype, "text": texts()}
        if qtype == "rating":
            q["scale"] = draw(st.integers(2, 10))
            if draw(st.booleans()):
                q["labels"] = {lang: [draw(WORDS), draw(WORDS)] for lang in langs}
        if qtype in {"choice", "multi", "rank", "budget"}:
            q["options"] = options(draw(st.integers(2, 5)))
        if qtype in {"choice", "multi"}:
            q["other"] = draw(st.booleans())
        if qtype == "budget":
            q["tokens"] = draw(st.integers(1, 100))
        if qtype == "rank":
            q["pick"] = draw(st.integers(1, len(q["options"])))
        if qtype == "text":
            q["voice"] = draw(st.booleans())
        q["optional"] = draw(st.booleans())
        earlier = [x for x in questions if x["type"] in {"choice", "multi", "rating", "yesno"}]
        if earlier and draw(st.booleans()):
            ref = draw(st.sampled_from(earlier))
            values: list[Any] = (
                [str(i) for i in range(1, ref["scale"] + 1)] if ref["type"] == "rating"
                else ["yes", "no"] if ref["type"] == "yesno"
                else [o["id"] for o in ref["options"]] + (["other"] if ref.get("other") else []))
            q["show_if"] = {ref["id"]: draw(st.lists(st.sampled_from(values), min_size=1, unique=True))}
        questions.append(q)
    campaign: dict[str, Any] = {
        "id": draw(st.from_regex(r"[a-z0-9-]{3,40}", fullmatch=True)),
        "mode": draw(st.sampled_from(["coassessment", "codesign", "cocommissioning"])),
        "languages": langs,
        "title": texts(),
        "questions": questions,
    }
    if draw(st.booleans()):
        campaign["intro"] = texts()
    if draw(st.booleans()):
        dim = {"id": next(ids), "multiple": draw(st.booleans()), "text": texts(),
               "options": options(draw(st.integers(1, 4)))}
        campaign["groups"] = [dim]
        opt_ids = [o["id"] for o in dim["options"]]
        if draw(st.booleans()):
            shares = [1.0 / len(opt_ids)] * len(opt_ids)
            campaign["baseline"] = {dim["id"]: dict(zip(opt_ids, shares, strict=True))}
        if draw(st.booleans()):
            campaign["invites"] = [{"code": draw(st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True)),
                                    "partner": "Central Library", "groups": {dim["id"]: opt_ids[0]}}]
    if draw(st.booleans()):
        opens = draw(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2029, 1, 1),
                                  timezones=st.just(UTC)))
        campaign["opens"] = opens
        campaign["closes"] = opens.replace(year=opens.year + 1)
    return campaign


@st.composite
def built_campaign(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """A valid campaign and how many small mistakes were then made in it."""
    campaign = draw(valid_campaign())
    mistakes = draw(st.integers(0, 2))
    for _ in range(mistakes):
        q = draw(st.sampled_from(campaign["questions"]))
        kind = draw(st.sampled_from(["translation", "duplicate", "show_if", "type", "id", "limit"]))
        if kind == "translation":
            q["text"].pop(campaign["languages"][-1], None)
        elif kind == "duplicate":
            campaign["questions"].append(copy.deepcopy(q))
        elif kind == "show_if":
            q["show_if"] = {draw(st.sampled_from([q["id"], "nowhere"])): ["x"]}
        elif kind == "type":
            q["type"] = "slider"
        elif kind == "id":
            q["id"] = draw(st.sampled_from(["Has Space", "UPPER", "x" * 25, ""]))
        else:
            q["text"][campaign["languages"][0]] = "w" * 1501
    return campaign, mistakes


@FUZZ
@given(built_campaign())
def test_built_campaigns(built: tuple[dict[str, Any], int]) -> None:
    campaign, mistakes = built
    result = check_yaml(campaign)
    # a campaign built by the rules passes; each deliberate mistake is caught
    assert result.ok == (mistakes == 0), [p.render("fuzz.yaml") for p in result.problems]


# -- crashes and gaps these tests found, kept as plain regressions

MINIMAL = "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"


def test_found_cases() -> None:
    cases = {
        "opens: 2026-13-45\n": "Write dates as 2026-12-01T09:00:00Z",  # ValueError from PyYAML
        "id: !!int abc\n": "Remove the '!!' tag",
        "!!pairs :show_if: \n": "'id' is missing",  # a key that is a list
        "id: !!bool \n": "Remove the '!!' tag",
        "scale: " + "9" * 5000 + "\n": "far too large",
    }
    for text, message in cases.items():
        result = check_text(text, "c.yaml")
        assert_sound(result)
        assert any(message in p.message for p in result.problems), (text[:40], result.problems)
    # a share too big for a float
    shares = MINIMAL + "  - {id: a, type: text, text: {en: hi}}\ngroups:\n  - {id: g, text: {en: G}, " \
        "options: [{id: x, text: {en: X}}]}\nbaseline: {g: {x: " + "9" * 400 + "}}\n"
    assert_sound(check_text(shares))
    # show_if naming an id that is a list, or a type that is a list
    odd = MINIMAL + "  - {id: [1], type: [text], text: {en: hi}}\n  - {id: b, type: text, " \
        "text: {en: ho}, show_if: {a: [x]}}\n"
    assert_sound(check_text(odd))
    # a pasted block is not echoed back whole
    long = MINIMAL + "  - {id: a, type: text, text: {en: [" + "x, " * 3000 + "x]}}\n"
    assert_sound(check_text(long))


def test_show_if_on_a_rank_question_is_refused() -> None:
    # a rank answer is an order: the bot would never show the dependent question
    text = MINIMAL + ("  - {id: a, type: rank, text: {en: hi}, options: [{id: x, text: {en: X}}, "
                      "{id: y, text: {en: Y}}]}\n  - {id: b, type: text, text: {en: ho}, show_if: {a: [x]}}\n")
    result = check_text(text, "c.yaml")
    assert [p.render("c.yaml") for p in result.problems] == [
        "c.yaml:7: question 'b': show_if cannot depend on a rank question ('a')"]
