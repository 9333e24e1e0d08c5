"""Attacks an analyst could make on published outputs, one per point of issue 14; each must fail.

The attacker here reads only what a person sees (the grouped lines, the report model, a dry
run's tables, the exports, the log) and knows the method (docs/analysis.md): published counts
are the true ones give or take MAX_NOISE, "<10" is 0..9, "c" is 10 or more.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

import analysis.disclosure as disclosure
from analysis.reading import AnswerRecord, CampaignContext, ResponseRecord
from analysis.summary import protect_all
from analysis.tally import ALL_KEY, tally
from bot.campaigns.schema import CampaignSpec
from tests.test_dialog_survey import world  # noqa: F401 - fixture

K = 10
# Published counts are within this of the truth (0 before the cell key method).
NOISE = getattr(disclosure, "MAX_NOISE", 0)
NOW = datetime(2026, 3, 1, tzinfo=UTC)
COMMUNITIES = ["somali", "arabic", "ukrainian", "afghan", "latin"]


def record(i: int, groups: dict[str, list[str]], answers: dict[str, dict[str, Any]], key: int) -> ResponseRecord:
    extra = {"key": key} if "key" in ResponseRecord.__dataclass_fields__ else {}
    return ResponseRecord(id=i, participant=f"p{i}", language="en", invite=None, partner=None,
                          started_at=NOW, completed_at=NOW, groups=groups,
                          answers=[AnswerRecord(q, "answered", v, NOW) for q, v in answers.items()], **extra)


async def _stream(records: list[ResponseRecord]) -> AsyncIterator[ResponseRecord]:
    for r in records:
        yield r


def publish(spec: CampaignSpec, records: list[ResponseRecord]) -> tuple[Any, Any]:
    """The tally and every protected figure, as the grouped export and the report get them."""
    ctx = CampaignContext(id=spec.id, spec=spec, min_group_size=K, baseline={}, invites={})
    t = asyncio.run(tally(ctx, _stream(records)))
    return t, protect_all(t)


# ------------------------------------------------- 1. linear algebra over one output (points 1, 2)

def person(rng: random.Random, small: int) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """Most people are in "other" only; `small` of every 20 also or instead name a small community."""
    if rng.randrange(20) < small:
        community = rng.sample(COMMUNITIES, rng.choice([1, 1, 2]))
        if rng.random() < 0.3:
            community.append("other")
    else:
        community = ["other"]
    age = rng.choice(["under25", "25_64", "25_64", "over64"])
    return ({"community": community, "age": [age]},
            {"got_help": {"value": rng.choice(["yes", "yes", "no"])}})


def attack_one_question(t: Any, prot: Any, qid: str) -> list[str]:
    """Integer programming over every published cell of one question: which hidden cells, and
    which "everyone minus a group" sets of fewer than K people, come out as one exact value."""
    pq = prot.questions[qid]
    opts = ["", *pq.options]
    rows = [ALL_KEY, *[key for key, o in pq.lines if o == "" and key != ALL_KEY]]
    index = {(r, o): i for i, (r, o) in enumerate((r, o) for r in rows for o in opts)}
    n = len(index)
    lo, hi = np.zeros(n), np.full(n, np.inf)
    for (r, o), i in index.items():
        line = pq.line(r, o)
        if line.n is not None:
            lo[i], hi[i] = max(line.n - NOISE, 0), line.n + NOISE
        elif line.suppressed == "<10":
            hi[i] = K - 1
        else:
            lo[i] = K
    eqs, ubs = [], []
    for r in rows:  # answered = yes + no
        row = np.zeros(n)
        row[index[(r, "")]] = -1
        for o in pq.options:
            row[index[(r, o)]] = 1
        eqs.append(row)
    dims = sorted({r[0] for r in rows if r != ALL_KEY})
    for d in dims:
        members = [r for r in rows if r[0] == d]
        for o in opts:
            row = np.zeros(n)
            row[index[(ALL_KEY, o)]] = -1
            for m in members:
                row[index[(m, o)]] += 1
            if d in t.overlapping:
                ubs.append(-row)  # everyone is in at least one row
                for m in members:
                    one = np.zeros(n)
                    one[index[(m, o)]], one[index[(ALL_KEY, o)]] = 1, -1
                    ubs.append(one)
            else:
                eqs.append(row)
    constraints = [LinearConstraint(np.array(eqs), 0, 0)]
    if ubs:
        constraints.append(LinearConstraint(np.array(ubs), -np.inf, 0))

    def span(c: np.ndarray) -> tuple[float, float]:
        out = []
        for sign in (1, -1):
            res = milp(sign * c, integrality=np.ones(n), bounds=Bounds(lo, hi), constraints=constraints)
            assert res.status == 0, "the truth must be one solution"
            out.append(sign * res.fun)
        return out[0], out[1]

    qt = t.questions[qid]

    def truth(r: Any, o: str) -> int:
        cell = qt.rows.get(r)
        return 0 if cell is None else (cell.base if o == "" else cell.counts.get(o, 0))

    recovered = []
    for (r, o), i in index.items():
        if pq.line(r, o).n is None:
            c = np.zeros(n)
            c[i] = 1
            a, b = span(c)
            if a == b == truth(r, o):
                recovered.append(f"{r}/{o or 'answered'}")
    for d in dims:
        if d not in t.overlapping:
            continue
        for r in (r for r in rows if r[0] == d):
            for o in opts:
                rest = truth(ALL_KEY, o) - truth(r, o)
                if 0 < rest < K:
                    c = np.zeros(n)
                    c[index[(ALL_KEY, o)]], c[index[(r, o)]] = 1, -1
                    a, b = span(c)
                    if a == b == rest:
                        recovered.append(f"everyone minus {r}/{o or 'answered'}")
    return recovered


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(size=st.integers(14, 45), small=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_integer_programming_over_one_output_recovers_no_hidden_cell(example_spec, size, small, seed) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    records = [record(i, *person(rng, small), rng.randrange(2 ** 31)) for i in range(size)]
    t, prot = publish(example_spec, records)
    assert attack_one_question(t, prot, "got_help") == []


# ------------------------------------------------- 3. two outputs one person apart

# The attacker's best guess: the option whose published count rose most. With the cell key
# method every count of the second output has fresh noise, so the guess is right for all three
# questions in about a quarter of trials (docs/analysis.md); with exact counts, always.
DIFFERENCING_SHARE = 0.35


def test_two_outputs_one_person_apart_rarely_give_that_persons_answers(example_spec) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(14)
    questions = {"got_help": ["yes", "no"], "barrier": ["hours", "language", "transport", "phone"],
                 "ease": ["1", "2", "3", "4", "5"]}

    def answers() -> dict[str, dict[str, Any]]:
        return {"got_help": {"value": rng.choice(questions["got_help"])},
                "barrier": {"option": rng.choice(questions["barrier"])},
                "ease": {"value": int(rng.choice(questions["ease"]))}}

    trials, found = 40, 0
    for i in range(trials):
        crowd = [record(j, {"age": ["25_64"]}, answers(), rng.randrange(2 ** 31)) for j in range(150 + i % 7)]
        newcomer = answers()
        before = publish(example_spec, crowd)[1]
        after = publish(example_spec, [*crowd, record(999, {"age": ["25_64"]}, newcomer, rng.randrange(2 ** 31))])[1]
        guessed = {}
        for qid, opts in questions.items():
            rise = {o: (after.questions[qid].line(ALL_KEY, o).n or 0) - (before.questions[qid].line(ALL_KEY, o).n or 0)
                    for o in opts}
            best = max(rise.values())
            top = [o for o, v in rise.items() if v == best]
            guessed[qid] = top[0] if len(top) == 1 else None
        truth = {"got_help": newcomer["got_help"]["value"], "barrier": newcomer["barrier"]["option"],
                 "ease": str(newcomer["ease"]["value"])}
        found += guessed == truth
    assert found / trials <= DIFFERENCING_SHARE, f"{found} of {trials} newcomers' answers recovered"


def test_the_same_people_always_give_the_same_figures(example_spec) -> None:  # type: ignore[no-untyped-def]
    """Averaging repeated outputs must not wear the noise away: same people, same figures."""
    rng = random.Random(3)
    crowd = [record(j, {"age": ["25_64"]}, {"got_help": {"value": rng.choice(["yes", "no"])}},
                    rng.randrange(2 ** 31)) for j in range(50)]
    first = publish(example_spec, crowd)[1].questions["got_help"]
    again = publish(example_spec, list(reversed(crowd)))[1].questions["got_help"]
    assert [ln.n for ln in first.lines.values()] == [ln.n for ln in again.lines.values()]


# ------------------------------------------------- 9. everybody in a small group said the same

def test_a_small_group_where_everyone_gave_one_answer_does_not_show_it(example_spec) -> None:  # type: ignore[no-untyped-def]
    """12 people aged 65+ all use the phone (a multi-choice question, so no row sum hides it)."""
    rng = random.Random(9)
    crowd = [record(j, {"age": ["25_64"]}, {"channels": {"options": rng.sample(["phone", "chat", "walkin"], 2)}},
                    rng.randrange(2 ** 31)) for j in range(60)]
    crowd += [record(100 + j, {"age": ["over64"]}, {"channels": {"options": ["phone"]}}, rng.randrange(2 ** 31))
              for j in range(12)]
    _, prot = publish(example_spec, crowd)
    pq = prot.questions["channels"]
    head, phone = pq.line(("age", "over64")), pq.line(("age", "over64"), "phone")
    assert head.n is not None, "the group itself is published"
    assert phone.n is None and phone.share is None, "every one of the 12 uses the phone, and the row says so"


# ------------------------------------------------- 7. logs, DEBUG and SQL echo included

async def test_a_debug_log_of_a_full_journey_holds_no_name_id_or_answer(world, db, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from tests.participants import Person
    from tests.test_dialog_survey import complete_example

    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy.engine", "aiogram", "aiogram_dialog"):  # as with echo="debug"
        logging.getLogger(name).setLevel(logging.DEBUG)
    user_id, first, last, username = 7391028466, "Zamzamlog", "Qorsheeyelog", "zamzam_logtest"
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=user_id, language_code="en", first_name=first)
    p.client.user = p.client.user.model_copy(update={"last_name": last, "username": username})
    await complete_example(p)
    assert "SELECT" in caplog.text or "INSERT" in caplog.text, "the SQL echo was on"
    for needle in (str(user_id), first, last, username, "The stairs"):
        assert needle not in caplog.text, f"{needle!r} is in the DEBUG log"


# ------------------------------------------------- 5. re-linking two record-level exports

async def test_two_exports_cannot_be_relinked_by_time_or_row_order(db, example_spec, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv
    import hashlib
    from datetime import timedelta

    from sqlalchemy import insert

    from analysis.exports import export_async
    from bot.campaigns.flow import validate_answer
    from bot.campaigns.store import load_campaign
    from bot.models import Answer, Participant, Response

    async with db.session() as s:
        await load_campaign(s, example_spec)
        for i in range(47):  # each person answers at their own minute, each writes a different idea
            at = NOW + timedelta(hours=i % 5, minutes=7 * i, seconds=i)
            pid = (await s.execute(insert(Participant).returning(Participant.id), [{
                "pseudonym": hashlib.sha256(f"relink{i}".encode()).hexdigest(), "language": "en"}])).scalar_one()
            rid = (await s.execute(insert(Response).returning(Response.id), [{
                "campaign_id": example_spec.id, "participant_id": pid, "language": "en", "started_at": at,
                "completed_at": at + timedelta(minutes=3)}])).scalar_one()
            await s.execute(insert(Answer), [
                {"response_id": rid, "question_id": "got_help", "status": "answered",
                 "value": validate_answer(example_spec.question("got_help"), {"value": "yes"}),
                 "answered_at": at + timedelta(seconds=30)},
                {"response_id": rid, "question_id": "idea", "status": "answered",
                 "value": validate_answer(example_spec.question("idea"), {"text": f"idea number {i}"}),
                 "answered_at": at + timedelta(seconds=90)}])
        await s.commit()

    def people(path: Any) -> list[tuple[str, tuple[str, ...], str]]:
        """Per participant, in file order: their answer times and (for the test only) their idea."""
        seen: dict[str, list[Any]] = {}
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                entry = seen.setdefault(row["participant"], [[], ""])
                entry[0].append(row["answered_at"])
                if row["question"] == "idea":
                    entry[1] = row["value"]
        return [(p, tuple(sorted(times)), idea) for p, (times, idea) in seen.items()]

    a = people(await _export(export_async, db, example_spec, tmp_path / "a.csv"))
    b = people(await _export(export_async, db, example_spec, tmp_path / "b.csv"))
    assert {p for p, _, _ in a}.isdisjoint({p for p, _, _ in b}), "per-export pseudonyms"
    by_time: dict[tuple[str, ...], list[str]] = {}
    for _, times, idea in b:
        by_time.setdefault(times, []).append(idea)
    linked_by_time = sum(by_time.get(times) == [idea] for _, times, idea in a)
    linked_by_order = sum(x[2] == y[2] for x, y in zip(a, b, strict=True))
    # by chance alone, about one person in 47 lines up by order
    assert linked_by_time == 0 and linked_by_order <= 5, (linked_by_time, linked_by_order)


async def _export(export_async: Any, db: Any, spec: CampaignSpec, path: Any) -> Any:
    await export_async(db, spec.id, path, "long")
    return path


# ------------------------------------------------- 8. two dry runs, with and without a filter

DRY_RUN_SHARE = 0.35  # the difference of two totals equals the hidden count about 1 time in 4


def test_two_dry_runs_do_not_differ_by_the_hidden_count(example_spec) -> None:  # type: ignore[no-untyped-def]
    from bot.services.broadcasts import Candidate, breakdown, protect_reach

    rng = random.Random(8)
    dims = [d.id for d in example_spec.groups]
    trials, exact = 40, 0
    for _ in range(trials):
        keyed = "key" in Candidate.__dataclass_fields__  # (before the cell key method: no keys)
        people = [Candidate(participant_id=i, language="so" if i < 3 else "en",
                            **({"key": rng.randrange(2 ** 31)} if keyed else {})) for i in range(40)]
        everyone = protect_reach(breakdown(people, example_spec.languages, dims), example_spec)
        english = protect_reach(breakdown([c for c in people if c.language == "en"], example_spec.languages, dims),
                                example_spec)
        assert dict(everyone.table("by language"))["so"] == "<10"
        # the same 37 people give the same figure in both dry runs
        assert dict(everyone.table("by language"))["en"] in (english.total, "c")
        if everyone.total.isdigit() and english.total.isdigit():
            exact += int(everyone.total) - int(english.total) == 3
    assert exact / trials <= DRY_RUN_SHARE, f"{exact} of {trials} pairs of dry runs gave the hidden 3 away"


# ------------------------------------------------- 6. keys beside the data

def test_a_copy_of_the_data_folder_holds_no_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bot.settings import Settings

    (tmp_path / "data").mkdir()
    Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/data/coassess.db").secret_keys()
    assert [p.name for p in (tmp_path / "data").iterdir()] == [], "the key file was written beside the data"
    assert Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/data/coassess.db").keys_path().exists()


# ------------------------------------------------- 4. quotes from a small group

async def test_no_quote_from_a_small_group_or_under_a_hidden_one(db, example_spec, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from analysis.report import report_model_async
    from bot.campaigns.store import load_campaign
    from tests.test_analysis_disclosure import add_responses

    async with db.session() as s:
        await load_campaign(s, example_spec)
        await s.commit()
    address = "Deaf and in a wheelchair, I live above the bakery at 12 Elm St"
    people: list[tuple[dict[str, list[str]], dict[str, Any]]] = [
        ({"age": ["over64"], "disability": ["yes"]}, {"barrier": {"option": "hours"}, "idea": {"text": address}})] * 2
    people += [({"age": ["25_64"], "disability": ["no"]},
                {"barrier": {"option": "hours"}, "idea": {"text": f"longer evening hours {i}"}}) for i in range(14)]
    await add_responses(db, example_spec, people)
    model = await report_model_async(db, example_spec.id)
    assert "Elm St" not in str(model), "a quote from a group of 2 (or from 16 people in all) was published"


# ------------------------------------------------- 2. effective size and weighted priorities

def test_a_weighted_order_does_not_give_a_hidden_groups_count_away(example_spec) -> None:  # type: ignore[no-untyped-def]
    """Kish's effective size is a function of the group counts: beside the published groups it
    solved the hidden one (3 people aged 65+). It must not be published while a group is hidden."""
    from analysis.report import build_model

    rng = random.Random(2)
    baseline = {"age": {"under25": 0.3, "25_64": 0.52, "over64": 0.18}}
    crowd = []
    for i, age in enumerate(["under25"] * 30 + ["25_64"] * 40 + ["over64"] * 3):
        coins = dict.fromkeys(["interpreters", "evening", "online"], 0)
        for _ in range(10):
            coins[rng.choice(list(coins))] += 1
        crowd.append(record(i, {"age": [age]}, {"spend": {"coins": coins}}, rng.randrange(2 ** 31)))
    ctx = CampaignContext(id=example_spec.id, spec=example_spec, min_group_size=K, baseline=baseline, invites={})
    t = asyncio.run(tally(ctx, _stream(crowd)))
    prot = protect_all(t)
    assert prot.questions["spend"].line(("age", "over64")).n is None, "the 3 are hidden"
    model = build_model(t, prot, dims=["age"], lang="en", baseline=baseline, baseline_source="given", need=None)
    overall = next(s for s in model["cocommissioning"] if s["question"] == "spend")["overall"]
    assert overall["effective_size"]["population"] == "c"
    assert model["weighting"]["population"]["effective_size"] == "c"


def test_existing_responses_get_random_record_keys_when_the_database_is_upgraded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from bot.db import upgrade_sync

    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    upgrade_sync(url, "0003")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("INSERT INTO campaign (id, version, definition, status, languages, min_group_size, title, "
                     "mode, created_at, updated_at) VALUES ('c', 1, '{}', 'open', '[]', 10, '{}', 'coassessment', "
                     "'2026-01-01', '2026-01-01')")
        for i in range(30):
            conn.execute("INSERT INTO participant (pseudonym, allow_invitations, stopped, created_at) "
                         "VALUES (?, 1, 0, '2026-01-01')", (f"p{i}",))
            conn.execute("INSERT INTO response (campaign_id, participant_id, language, started_at, wants_outcome) "
                         "VALUES ('c', ?, 'en', '2026-01-01', 0)", (i + 1,))
    upgrade_sync(url)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        for table in ("response", "participant"):
            keys = [k for (k,) in conn.execute(f"SELECT record_key FROM {table}")]  # noqa: S608
            assert len(keys) == 30 and None not in keys and len(set(keys)) == 30, table
            assert all(0 <= k < 2 ** 31 for k in keys)
