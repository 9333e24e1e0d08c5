"""Exports on both backends: the long layout equals the stored answers exactly, in contract order."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

import analysis
from analysis import export_async
from analysis.contract import iso
from analysis.writers import FORMULA_START
from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import load_campaign
from bot.db import Database, upgrade
from bot.models import Answer, AuditEvent, Invite, Participant, Response
from bot.services import participants, responses

LEADING = ["campaign", "response", "participant", "language", "invite", "partner",
           "group:community", "group:age", "group:disability"]
LONG = [*LEADING, "question", "type", "option", "value", "status", "answered_at"]

# Three people who between them use every answer type, a skip, "something else" and a voice note.
# (user id, language, invite code, groups, answers by question id; None = skipped)
PEOPLE: list[tuple[int, str, str | None, dict[str, list[str]], dict[str, Any]]] = [
    (1001, "en", "library", {"community": ["somali", "arabic"], "age": ["25_64"], "disability": ["no"]}, {
        "welcome": {"seen": True}, "ease": {"value": 2}, "got_help": {"value": "no"},
        "barrier": {"option": "language"}, "channels": {"options": ["phone", "other"], "text": "By letter"},
        "order": {"order": ["interpreters", "evening", "online"]},
        "spend": {"coins": {"interpreters": 6, "evening": 4, "online": 0}},
        "idea": {"text": "An interpreter, please"}}),
    (1002, "ar", "mosque", {"community": ["arabic"], "age": ["prefer_not_to_say"]}, {
        "welcome": {"seen": True}, "ease": {"value": 5}, "got_help": {"value": "yes"},
        "barrier": {"option": "other", "text": "=1+1 the cost"}, "channels": {"options": ["chat"]},
        "order": {"order": ["waiting", "online", "interpreters"]},
        "spend": {"coins": {"interpreters": 0, "evening": 0, "online": 10}},
        "idea": {"voice": {"file_id": "voice-1", "duration": 17}}}),
    (1003, "uk", None, {}, {"welcome": {"seen": True}, "ease": {"value": 3}, "got_help": {"value": "yes"},
                            "barrier": None, "channels": {"options": ["walkin", "phone"]}}),
]

# The long layout of PEOPLE, written out by hand from the contract (docs/analysis.md).
EXPECTED_TAIL = {
    1001: [["ease", "rating", "", "2", "answered"], ["got_help", "yesno", "", "no", "answered"],
           ["barrier", "choice", "language", "1", "answered"],
           ["channels", "multi", "phone", "1", "answered"], ["channels", "multi", "other", "By letter", "answered"],
           ["order", "rank", "interpreters", "1", "answered"], ["order", "rank", "evening", "2", "answered"],
           ["order", "rank", "online", "3", "answered"],
           ["spend", "budget", "interpreters", "6", "answered"], ["spend", "budget", "evening", "4", "answered"],
           ["spend", "budget", "online", "0", "answered"],
           ["idea", "text", "", "An interpreter, please", "answered"]],
    1002: [["ease", "rating", "", "5", "answered"], ["got_help", "yesno", "", "yes", "answered"],
           ["barrier", "choice", "other", "=1+1 the cost", "answered"],
           ["channels", "multi", "chat", "1", "answered"],
           ["order", "rank", "waiting", "1", "answered"], ["order", "rank", "online", "2", "answered"],
           ["order", "rank", "interpreters", "3", "answered"],
           ["spend", "budget", "interpreters", "0", "answered"], ["spend", "budget", "evening", "0", "answered"],
           ["spend", "budget", "online", "10", "answered"],
           ["idea", "text", "voice", "17", "answered"]],
    1003: [["ease", "rating", "", "3", "answered"], ["got_help", "yesno", "", "yes", "answered"],
           ["barrier", "choice", "", "", "skipped"],
           ["channels", "multi", "phone", "1", "answered"], ["channels", "multi", "walkin", "1", "answered"]],
}
LEAD_EXPECTED = {
    1001: ["en", "library", "Central Library", "somali;arabic", "25_64", "no"],
    1002: ["ar", "mosque", "Al-Noor Mosque", "arabic", "prefer_not_to_say", ""],
    1003: ["uk", "", "", "", "", ""],
}


async def seed_known(db: Database, keys: participants.Keys, spec: CampaignSpec) -> dict[int, tuple[int, str]]:
    """Store PEOPLE through the services; returns user id -> (response id, stored pseudonym)."""
    async with db.session() as s:
        await load_campaign(s, spec)
        await s.commit()
    out = {}
    for user, lang, code, groups, answers in PEOPLE:
        async with db.session() as s:
            p = await participants.ensure(s, keys, user, user, lang)
            invite = (await s.scalar(select(Invite).where(Invite.campaign_id == spec.id, Invite.code == code))
                      if code else None)
            r = await responses.start_response(s, spec.id, p.id, lang, invite)
            for dim, gs in groups.items():
                await responses.set_groups(s, r.id, dim, gs)
            for qid, value in answers.items():
                await responses.record_answer(s, r.id, spec.question(qid), value)
            if user != 1003:
                await responses.complete(s, r)
            await s.commit()
            out[user] = (r.id, p.pseudonym)
    return out


async def stored_times(db: Database) -> dict[tuple[int, str], datetime]:
    async with db.session() as s:
        rows = (await s.execute(select(Answer.response_id, Answer.question_id, Answer.answered_at))).all()
    return {(rid, qid): at for rid, qid, at in rows}


def expected_long(ids: dict[int, tuple[int, str]], times: dict[tuple[int, str], datetime]) -> list[list[str]]:
    rows = []
    for user, _, _, _, _ in PEOPLE:
        rid, pseudonym = ids[user]
        for tail in EXPECTED_TAIL[user]:
            rows.append(["clinic-access", str(rid), pseudonym, *LEAD_EXPECTED[user], *tail,
                         iso(times[(rid, tail[0])])])
    return rows


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return iso(v) or ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def read_back(path: Path, fmt: str) -> tuple[list[str], list[list[str]]]:
    """Any export file as (header, rows of strings), the way an analyst's script would read it."""
    if fmt == "csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        return rows[0], rows[1:]
    if fmt == "json":
        objs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        header = list(objs[0]) if objs else []
        return header, [[_cell(o[h]) for h in header] for o in objs]
    if fmt == "parquet":
        table = pq.read_table(path)
        data = table.to_pylist()
        return table.column_names, [[_cell(r[h]) for h in table.column_names] for r in data]
    wb = load_workbook(path, read_only=True)
    rows = []
    header: list[str] = []
    for ws in wb.worksheets:
        values = list(ws.iter_rows(values_only=True))
        header = list(values[0])
        # Read-only sheets leave out empty cells at the end of a row.
        rows += [[_cell(v) for v in (*r, *[None] * (len(header) - len(r)))] for r in values[1:]]
    return header, rows


@dataclass(frozen=True)
class Seeded:
    url: str
    ids: dict[int, tuple[int, str]]
    times: dict[tuple[int, str], datetime]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           example_spec: CampaignSpec) -> Any:
    """PEOPLE stored once per backend; the tests below only read (and add audit events)."""
    import asyncio

    from tests.conftest import create_pg_database, drop_pg_database

    keys = participants.Keys(b"test-pseudonym-key-0123456789abcdef", b"test-contact-key-0123456789abcdef")

    async def seed(url: str) -> Seeded:
        await upgrade(url)
        db = Database(url)
        try:
            ids = await seed_known(db, keys, example_spec)
            return Seeded(url, ids, await stored_times(db))
        finally:
            await db.dispose()

    if request.param == "sqlite":
        yield asyncio.run(seed(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('seeded')}/coassess.db"))
        return
    url = asyncio.run(create_pg_database())
    try:
        yield asyncio.run(seed(url))
    finally:
        asyncio.run(drop_pg_database(url))


@asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


async def test_long_export_equals_the_stored_answers(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        ids = seeded.ids
        expected = expected_long(ids, seeded.times)
        for fmt in ("csv", "json", "parquet", "xlsx"):
            out = tmp_path / f"long.{fmt}"
            result = await export_async(db, "clinic-access", out, "long", stable_ids=True, exact_times=True)
            header, rows = read_back(out, fmt)
            assert header == LONG, fmt
            want = expected
            if fmt == "csv":
                # CSV only: text a spreadsheet would run as a formula gets a leading apostrophe.
                value = LONG.index("value")
                want = [[("'" + c if c.startswith(FORMULA_START) and i == value else c) for i, c in enumerate(r)]
                        for r in expected]
            assert rows == want, fmt
            assert result.rows == len(expected) and result.responses == 3 and result.format == fmt


async def test_info_screens_and_hidden_questions_have_no_rows(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        df = await analysis.load_answers_async(db, "clinic-access", stable_ids=True)
        assert "welcome" not in set(df["question"])
        # Person 3 skipped 'barrier', so 'idea' (shown only after certain barriers) was never asked.
        third = df[df["language"] == "uk"]
        assert "idea" not in set(third["question"])
        assert list(df.columns) == LONG
        assert str(df["answered_at"].dtype) == "datetime64[us, UTC]"


async def test_per_export_pseudonyms_cannot_be_joined(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        ids = seeded.ids
        a, b = tmp_path / "a.csv", tmp_path / "b.csv"
        await export_async(db, "clinic-access", a, "wide")
        await export_async(db, "clinic-access", b, "wide")
        _, rows_a = read_back(a, "csv")
        _, rows_b = read_back(b, "csv")
        stored = {p for _, p in ids.values()}
        for col in (1, 2):  # response, participant
            assert not {r[col] for r in rows_a} & {r[col] for r in rows_b}
            assert not {r[col] for r in rows_a} & stored
            assert not {r[col] for r in rows_a} & {str(rid) for rid, _ in ids.values()}
        s = tmp_path / "s.csv"
        await export_async(db, "clinic-access", s, "wide", stable_ids=True, exact_times=True)
        _, rows_s = read_back(s, "csv")
        assert {r[2] for r in rows_s} == stored


async def test_wide_layout(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        ids = seeded.ids
        out = tmp_path / "wide.parquet"
        await export_async(db, "clinic-access", out, "wide", stable_ids=True, labels="en", exact_times=True)
        df = pd.read_parquet(out)
        assert list(df.columns) == [
            *LEADING, "started_at", "completed_at", "completed", "ease", "got_help", "barrier", "barrier:label",
            "barrier:other", "channels:phone", "channels:chat", "channels:walkin", "channels:other",
            "order:interpreters", "order:evening", "order:online", "order:waiting",
            "spend:interpreters", "spend:evening", "spend:online", "idea", "idea:voice"]
        first = df[df["response"] == str(ids[1001][0])].iloc[0]
        assert first["ease"] == 2 and first["got_help"] == "no" and first["barrier"] == "language"
        assert first["barrier:label"] == "Language"
        assert (first["channels:phone"], first["channels:chat"], first["channels:other"]) == (1, 0, "By letter")
        assert (first["order:interpreters"], first["order:online"]) == (1, 3) and pd.isna(first["order:waiting"])
        assert (first["spend:interpreters"], first["spend:online"]) == (6, 0)
        assert bool(first["completed"]) is True and first["idea"] == "An interpreter, please"
        second = df[df["response"] == str(ids[1002][0])].iloc[0]
        assert second["barrier"] == "other" and second["barrier:other"] == "=1+1 the cost"
        assert second["idea:voice"] == 17 and pd.isna(second["idea"])
        third = df[df["response"] == str(ids[1003][0])].iloc[0]
        assert bool(third["completed"]) is False and pd.isna(third["completed_at"])
        assert pd.isna(third["barrier"]) and pd.isna(third["group:age"])


async def test_grouped_layout_columns_and_suppression(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        out = tmp_path / "grouped.csv"
        await export_async(db, "clinic-access", out, "grouped", by="age", labels="en")
        header, rows = read_back(out, "csv")
        assert header == ["campaign", "dimension", "group", "group_text", "question", "question_text", "type",
                          "option", "option_text", "n", "share", "mean", "ci_low", "ci_high", "suppressed"]
        assert {r[1] for r in rows} == {"age"}
        # Three people in all: every figure rests on fewer than 10 and is hidden, except the rows of
        # groups where nobody answered: "0 people" is published (a zero puts nobody at risk).
        nobody = {(r[2], r[4]) for r in rows if r[7] == "" and r[9] == "0"}
        assert nobody, "some groups have no answers"
        for r in rows:
            if (r[2], r[4]) in nobody:
                assert r[9] == "0" and r[10] == r[11] == "" and r[14] == ""
            else:
                assert r[9] == "" and r[10] == "" and r[11] == "" and r[14] == "<10"
        assert [r[2] for r in rows if r[4] == "ease" and r[7] == ""] == [
            "under25", "25_64", "over64", "prefer_not_to_say", "(not asked)", "(all)"]


async def test_xlsx_keeps_formulas_as_text(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        out = tmp_path / "long.xlsx"
        await export_async(db, "clinic-access", out, "long")
        wb = load_workbook(out)
        cells = [c for row in wb.active.iter_rows() for c in row if c.value == "=1+1 the cost"]
        assert cells and all(c.data_type == "s" for c in cells)


async def test_export_is_audited_and_streams_in_batches(seeded, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        import analysis.exports as export_module
        from analysis.writers import CsvWriter

        monkeypatch.setattr(export_module, "BATCH", 4)
        sizes: list[int] = []

        def spying(original):  # type: ignore[no-untyped-def]
            def spy(self, rows):  # type: ignore[no-untyped-def]
                sizes.append(len(rows))
                return original(self, rows)
            return spy

        # the long layout hands CSV rows over as finished lines (write_lines); others use write
        for method in ("write", "write_cells", "write_lines"):
            monkeypatch.setattr(CsvWriter, method, spying(getattr(CsvWriter, method)))
        await export_async(db, "clinic-access", tmp_path / "l.csv", "long")
        # Rows reach the file a response at a time once a batch is full, never all at once.
        assert len(sizes) >= 2 and max(sizes) < 28
        async with db.session() as s:
            event = await s.scalar(select(AuditEvent).where(AuditEvent.action == "export")
                                   .order_by(AuditEvent.id.desc()).limit(1))
        assert event is not None and event.campaign_id == "clinic-access"
        assert event.details["layout"] == "long" and event.details["rows"] == 28


async def test_no_contact_details_in_any_export(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        text = ""
        for layout in ("long", "wide", "grouped"):
            out = tmp_path / f"{layout}.json"
            await export_async(db, "clinic-access", out, layout, stable_ids=True, exact_times=True)  # type: ignore[arg-type]
            text += out.read_text(encoding="utf-8")
        # times are wall-clock: their microseconds may spell "1003" by chance, so they are left out
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", "<time>", text)
        for user in (1001, 1002, 1003):
            assert str(user) not in text  # the Telegram ids (also used as chat ids) never appear


async def test_unknowns_are_reported(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        with pytest.raises(analysis.UnknownCampaign, match="there is no campaign 'nope'.*clinic-access"):
            await export_async(db, "nope", tmp_path / "x.csv")
        with pytest.raises(analysis.UnknownDimension, match="no group dimension 'colour'.*community, age"):
            await export_async(db, "clinic-access", tmp_path / "x.csv", "grouped", by="colour")
        with pytest.raises(analysis.UnknownLanguage, match="no texts in 'de'"):
            await export_async(db, "clinic-access", tmp_path / "x.csv", labels="de")
        assert not (tmp_path / "x.csv").exists()


def test_sync_api_from_plain_code(tmp_path, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    """A notebook calls the plain functions with a URL and gets DataFrames."""
    from bot.db import run

    url = f"sqlite+aiosqlite:///{tmp_path}/nb.db"

    async def setup() -> None:
        db = Database(url)
        await db.upgrade()
        await seed_known(db, keys, example_spec)
        await db.dispose()

    run(setup())
    answers = analysis.load_answers(url, "clinic-access")
    assert len(answers) == 28 and list(answers.columns) == LONG
    wide = analysis.load_responses(url, "clinic-access")
    assert len(wide) == 3
    summary = analysis.group_summary(url, "clinic-access", by="disability")
    assert set(summary["dimension"]) == {"disability"} and (summary["n"].isna() | summary["n"].eq(0)).all()
    with pytest.raises(ValueError, match="lower threshold"):
        analysis.group_summary(url, "clinic-access", min_group_size=5)
    assert isinstance(analysis.reach(url, "clinic-access"), pd.DataFrame)


async def test_participant_rows_are_untouched(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(seeded.url) as db:
        """Exporting reads only: the stored pseudonyms and answers are the same afterwards."""
        async with db.session() as s:
            before = (await s.execute(select(Participant.pseudonym, Response.id).join(Response))).all()
        await export_async(db, "clinic-access", tmp_path / "x.parquet", "long")
        async with db.session() as s:
            after = (await s.execute(select(Participant.pseudonym, Response.id).join(Response))).all()
        assert before == after


def test_fast_paths_give_the_same_cells() -> None:
    """The shortcuts of the long CSV export (issue 8) give exactly what the plain code gives."""
    from datetime import UTC, timedelta, timezone

    from analysis.exports import id_maker
    from analysis.reading import AnswerRecord, ResponseRecord
    from analysis.writers import _csv_cell, csv_cell_format
    from bot.pseudonym import salted

    salt = bytes(range(32))
    r = ResponseRecord(id=42, participant="ab" * 32, language="en", invite=None, partner=None,
                       started_at=datetime(2026, 3, 1, tzinfo=UTC), completed_at=None)
    assert id_maker(False, salt)(r) == (salted("response:42", salt), salted("ab" * 32, salt))
    for t in (datetime(2026, 3, 1, 10, 2, 3, 123456, tzinfo=UTC), datetime(2026, 3, 1, 10, 2, 3, tzinfo=UTC),
              datetime(2026, 3, 1, 11, 2, 3, 5, tzinfo=timezone(timedelta(hours=1)))):
        assert iso(t) == t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert AnswerRecord("q", "answered", None, t).stamp == iso(t)
    stored = AnswerRecord("q", "answered", None, stamp="2026-03-01T10:02:03.000000Z")
    assert stored.answered_at == datetime(2026, 3, 1, 10, 2, 3, tzinfo=UTC)
    for kind in ("str", "any", "time", "int", "float", "bool"):
        for v in (None, True, False, 0, 7, 2.5, "", "text", "=1+1", "-2", "\tx", "ملاحظة",
                  datetime(2026, 3, 1, 10, 2, 3, 123456, tzinfo=UTC)):
            assert csv_cell_format(kind)(v) == _csv_cell(v), (kind, v)
