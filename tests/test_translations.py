"""`coassess campaign translations export/import`: lossless round trips through a spreadsheet or PO
files, edits landing exactly where they belong, and clear refusals for files that do not fit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from bot.campaigns.check import check_file
from bot.campaigns.source import parse
from bot.campaigns.translations import (
    TranslationError,
    Update,
    apply_updates,
    export_translations,
    import_translations,
    read_campaign,
    scalar,
)
from tests.conftest import EXAMPLE
from tests.test_campaign_check import run_cli


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.yaml"
    shutil.copy(EXAMPLE, path)
    return path


def _set_cell(xlsx: Path, key: str, lang: str, value: str | None) -> None:
    wb = load_workbook(xlsx)
    ws = wb["translations"]
    header = [c.value for c in ws[1]]
    col = next(i for i, h in enumerate(header, 1) if isinstance(h, str) and h.endswith(f"({lang})"))
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == key)
    cell = ws.cell(row, col)
    cell.value = value
    if cell.data_type == "f":  # as a translator's text, not an Excel formula
        cell.data_type = "s"
    wb.save(xlsx)


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_xlsx_has_a_row_per_text_and_a_column_per_language(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    rows = list(load_workbook(out)["translations"].iter_rows(values_only=True))
    assert rows[0][:5] == ("key", "notes", "shown", "length limit", "English (en)")
    assert rows[0][5] == "Arabic (ar)"
    keys = [r[0] for r in rows[1:]]
    for key in ("title", "intro", "groups.community.text", "groups.community.options.somali",
                "questions.ease.text", "questions.ease.labels.0", "questions.ease.labels.1",
                "questions.barrier.options.hours"):
        assert key in keys
    hours = rows[keys.index("questions.barrier.options.hours") + 1]
    assert hours[4:6] == ("Opening hours", "ساعات العمل") and "60 characters" in hours[1]
    assert hours[3] == 60 and hours[2] == "a button on the screen of question 'barrier', under its progress (2/8)"


@pytest.mark.parametrize("fmt", ["xlsx", "po"])
def test_unchanged_round_trip_is_byte_identical(campaign: Path, tmp_path: Path, fmt: str) -> None:
    before = campaign.read_bytes()
    out = tmp_path / ("t.xlsx" if fmt == "xlsx" else "po")
    export_translations(campaign, fmt, out)
    report = import_translations(campaign, out)
    assert report.changed == [] and not report.written
    assert campaign.read_bytes() == before


def test_edited_cell_lands_in_its_place_and_nowhere_else(campaign: Path, tmp_path: Path) -> None:
    before = campaign.read_text(encoding="utf-8")
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    _set_cell(out, "questions.barrier.options.hours", "so", "Saacadaha: subax & galab")
    _set_cell(out, "questions.ease.labels.1", "ar", "سهل للغاية")
    report = import_translations(campaign, out)
    assert sorted((k, lang) for k, lang, _ in report.changed) == [
        ("questions.barrier.options.hours", "so"), ("questions.ease.labels.1", "ar")]
    after = campaign.read_text(encoding="utf-8")
    changed = _changed_lines(before, after)
    assert len(changed) == 2
    assert "so: 'Saacadaha: subax & galab'" in changed[1][1]
    assert changed[0][1] == "      ar: [صعب جدًا, سهل للغاية]"
    spec = check_file(campaign).spec
    assert spec is not None
    assert spec.question("barrier").options[0].text["so"] == "Saacadaha: subax & galab"  # type: ignore[index]
    assert spec.question("ease").labels["ar"] == ["صعب جدًا", "سهل للغاية"]  # type: ignore[index]
    # the comments at the top are still there
    assert after.startswith("# A complete campaign")


def test_po_edit_lands_in_its_place(campaign: Path, tmp_path: Path) -> None:
    before = campaign.read_text(encoding="utf-8")
    out = tmp_path / "po"
    export_translations(campaign, "po", out)
    po = out / "uk.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    msg = catalog.get("Did you get the help you needed?", context="questions.got_help.text")
    assert msg is not None and msg.string == "Чи отримали ви потрібну допомогу?"
    msg.string = "Ви отримали потрібну допомогу?"
    with po.open("wb") as f:
        write_po(f, catalog)
    report = import_translations(campaign, po)
    assert [(k, lang) for k, lang, _ in report.changed] == [("questions.got_help.text", "uk")]
    changed = _changed_lines(before, campaign.read_text(encoding="utf-8"))
    assert changed == [("      uk: Чи отримали ви потрібну допомогу?", "      uk: Ви отримали потрібну допомогу?")]


def test_missing_translations_are_added_in_block_and_flow_maps(campaign: Path, tmp_path: Path) -> None:
    text = campaign.read_text(encoding="utf-8")
    text = text.replace("      so: Ma heshay caawimaaddii aad u baahnayd?\n", "")
    text = text.replace(", so: Saacadaha furitaanka", "")
    text = text.replace("      so: [Aad u adag, Aad u fudud]\n", "")
    campaign.write_text(text, encoding="utf-8")
    assert not check_file(campaign).ok
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    _set_cell(out, "questions.got_help.text", "so", "Ma heshay caawimaaddii aad u baahnayd?")
    _set_cell(out, "questions.barrier.options.hours", "so", "Saacadaha furitaanka")
    _set_cell(out, "questions.ease.labels.0", "so", "Aad u adag")
    _set_cell(out, "questions.ease.labels.1", "so", "Aad u fudud")
    import_translations(campaign, out)
    assert check_file(campaign).ok
    after = campaign.read_text(encoding="utf-8")
    assert "      so: Ma heshay caawimaaddii aad u baahnayd?\n" in after
    assert "es: El horario, so: Saacadaha furitaanka}}" in after
    assert "      so: [Aad u adag, Aad u fudud]\n" in after


def test_one_label_alone_cannot_be_added(campaign: Path, tmp_path: Path) -> None:
    text = campaign.read_text(encoding="utf-8").replace("      so: [Aad u adag, Aad u fudud]\n", "")
    campaign.write_text(text, encoding="utf-8")
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    _set_cell(out, "questions.ease.labels.0", "so", "Aad u adag")
    with pytest.raises(TranslationError, match="give both the lowest and the highest"):
        import_translations(campaign, out)
    assert campaign.read_text(encoding="utf-8") == text


def test_unknown_key_is_reported_with_its_row(campaign: Path, tmp_path: Path) -> None:
    before = campaign.read_bytes()
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    _set_cell(out, "questions.barrier.options.hours", "so", "Saacadaha")
    wb = load_workbook(out)
    ws = wb["translations"]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == "questions.idea.text")
    ws.cell(row, 1).value = "questions.ideas.text"
    wb.save(out)
    with pytest.raises(TranslationError) as info:
        import_translations(campaign, out)
    assert info.value.problems == [
        f"t.xlsx row {row}: 'questions.ideas.text' is not a text of clinic.yaml. Was the question or "
        "option renamed or removed? Export the translations again from the current campaign file and "
        "copy the translations over."]
    assert campaign.read_bytes() == before  # the good edit was not written either


def test_unknown_language_column_is_reported(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    wb = load_workbook(out)
    ws = wb["translations"]
    ws.cell(1, ws.max_column + 1).value = "Tigrinya (ti)"
    wb.save(out)
    proc = run_cli("campaign", "translations", "import", str(campaign), str(out))
    assert proc.returncode == 1
    assert "'Tigrinya (ti)': this language is not one of the campaign's languages" in proc.stderr
    assert "Nothing was written" in proc.stderr


def test_po_for_unknown_language_is_reported(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "po"
    export_translations(campaign, "po", out)
    (out / "ar.po").rename(out / "ti.po")
    text = (out / "ti.po").read_text(encoding="utf-8").replace('"Language: ar\\n"', '"Language: ti\\n"')
    (out / "ti.po").write_text(text, encoding="utf-8")
    with pytest.raises(TranslationError, match=r"ti\.po: language 'ti' \(ti\) is not one of the campaign"):
        import_translations(campaign, out)


def test_emptied_cell_keeps_the_text_and_warns(campaign: Path, tmp_path: Path) -> None:
    before = campaign.read_bytes()
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    _set_cell(out, "title", "fa", None)
    report = import_translations(campaign, out)
    assert campaign.read_bytes() == before
    assert any("'fa' text of 'title' is empty" in w for w in report.warnings)


def test_crlf_and_bom_files_keep_their_form(tmp_path: Path) -> None:
    path = tmp_path / "win.yaml"
    raw = EXAMPLE.read_text(encoding="utf-8").replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + raw.encode("utf-8"))
    before = path.read_bytes()
    out = tmp_path / "t.xlsx"
    export_translations(path, "xlsx", out)
    assert import_translations(path, out).changed == []
    assert path.read_bytes() == before
    _set_cell(out, "title", "es", "Su opinión, por favor")
    import_translations(path, out)
    after = path.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf") and b"\n" not in after.replace(b"\r\n", b"")
    assert "  es: Su opinión, por favor\r\n".encode() in after


def test_cli_round_trip(campaign: Path, tmp_path: Path) -> None:
    before = campaign.read_bytes()
    out = tmp_path / "t.xlsx"
    proc = run_cli("campaign", "translations", "export", str(campaign), "--to", "xlsx", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("campaign", "translations", "import", str(campaign), str(out))
    assert proc.returncode == 0, proc.stderr
    assert "No text changed" in proc.stdout and campaign.read_bytes() == before
    again = run_cli("campaign", "translations", "export", str(campaign), "--to", "xlsx", "-o", str(out))
    assert again.returncode == 1 and "already exists" in again.stderr


TRICKY = ["yes", "no", "25_64", "1.5", "= 1 + 2", "'quoted'", '"double"', "a: b", "x, y", "[list]",
          "{map}", "# not a comment", "- dash", "? question", "100% sure", "line one\nline two",
          "tab\there", "back\\slash", "ar: نعم", "🙂 emoji", "null", "~", "@at", "`tick`", "&anchor",
          "*alias", "!tag", "|pipe", ">fold", "trailing: ", "  inner  spaces  kept  ", "a\u200cb"]


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_texts_survive_the_spreadsheet(campaign: Path, tmp_path: Path, value: str) -> None:
    out = tmp_path / "t.xlsx"
    export_translations(campaign, "xlsx", out)
    _set_cell(out, "questions.barrier.options.phone", "es", value)
    _set_cell(out, "questions.got_help.text", "es", value)
    import_translations(campaign, out)
    data = parse(campaign.read_text(encoding="utf-8")).data
    barrier = next(q for q in data["questions"] if q["id"] == "barrier")
    got_help = next(q for q in data["questions"] if q["id"] == "got_help")
    assert barrier["options"][3]["text"]["es"] == value.strip()  # a flow map
    assert got_help["text"]["es"] == value.strip()  # a block map
    # a second export and import of the edited file changes nothing
    before = campaign.read_bytes()
    export_translations(campaign, "xlsx", tmp_path / "t2.xlsx")
    assert import_translations(campaign, tmp_path / "t2.xlsx").changed == []
    assert campaign.read_bytes() == before


_EXAMPLE_CAMPAIGN = read_campaign(EXAMPLE)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80))
def test_any_text_is_written_as_a_scalar_that_reads_back(value: str) -> None:
    value = value.replace("\r\n", "\n")
    if not value.strip():
        return
    for flow in (True, False):
        assert parse(f"x: {scalar(value, flow)}\n").data["x"] == value
    # in a flow map (an option) and a block map (the intro); apply_updates reads the whole
    # file back and refuses if anything but these two texts changed
    updates = {("questions.barrier.options.hours", "es"): Update(value, "test"),
               ("intro", "so"): Update(value, "test")}
    new_text, _ = apply_updates(_EXAMPLE_CAMPAIGN, updates)
    data = parse(new_text).data
    assert data["intro"]["so"] == value.strip()
    assert data["questions"][3]["options"][0]["text"]["es"] == value.strip()
