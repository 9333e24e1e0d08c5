"""`coassess campaign import-xlsform`: a two-language form becomes a campaign that passes the check,
and every row it cannot carry over is listed by sheet and row."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bot.campaigns.check import check_file, check_text
from bot.campaigns.xlsform import XLSFormError, import_xlsform, language_code, to_campaign_id, to_id
from tests.conftest import ROOT
from tests.test_campaign_check import run_cli

FORM = ROOT / "tests" / "data" / "two-language-form.xlsx"

SURVEY = [
    ["type", "name", "label::English (en)", "label::Arabic (ar)", "hint::English (en)",
     "hint::Arabic (ar)", "required", "relevant", "parameters", "constraint", "calculation"],
    ["note", "welcome", "There are no right or wrong answers.", "لا توجد إجابات صحيحة أو خاطئة."],
    ["select_one yes_no", "got_help", "Did you get the help you needed?",
     "هل حصلت على المساعدة التي احتجتها؟", None, None, "yes"],
    ["range", "Ease-Score", "How easy was it to get an appointment?", "ما مدى سهولة الحصول على موعد؟",
     "1 is very hard, 5 is very easy", "1 صعب جدًا، 5 سهل جدًا", "yes", None, "start=1 end=5 step=1"],
    ["text", "why_hard", "What made it hard?", "ما الذي جعل الأمر صعبًا؟", None, None, None,
     "${Ease-Score} <= 2"],
    ["select_multiple channels", "channels", "How would you like to contact the centre?",
     "كيف تحب أن تتواصل مع المركز؟"],
    ["text", "phone_why", "Why the phone?", "لماذا الهاتف؟", None, None, None,
     "selected(${channels}, 'phone')"],
    ["integer", "visits", "How many times did you visit this year?", "كم مرة زرت المركز هذا العام؟",
     None, None, None, None, None, ". < 100"],
    ["begin_group", "more", "A bit more", "المزيد", None, None, None, "${got_help} = 'no'"],
    ["select_one barrier or_other", "main_barrier", "What got in the way?", "ما الذي أعاقك؟",
     None, None, "yes"],
    ["text", "what_missing", "What did you need?", "ماذا كنت تحتاج؟"],
    ["end_group"],
    ["geopoint", "home", "Where do you live?", "أين تسكن؟"],
    ["calculate", "double_visits", None, None, None, None, None, None, None, None, "${visits} * 2"],
    ["text", "other_idea", "Anything else?", "هل هناك شيء آخر؟", None, None, None,
     "${got_help} = 'no' or ${visits} > 3"],
]
CHOICES = [
    ["list_name", "name", "label::English (en)", "label::Arabic (ar)"],
    ["yes_no", "yes", "Yes", "نعم"],
    ["yes_no", "no", "No", "لا"],
    ["channels", "phone", "Phone", "الهاتف"],
    ["channels", "chat", "Messaging app", "تطبيق مراسلة"],
    ["channels", "other", "Another way", "طريقة أخرى"],
    ["barrier", "hours", "Opening hours", "ساعات العمل"],
    ["barrier", "language", "Language", "اللغة"],
]
SETTINGS = [["form_title", "form_id", "default_language"],
            ["Clinic visit feedback", "Clinic_Visit_2026", "English (en)"]]


def build_form(path: Path, survey: list[list[str | None]] = SURVEY,
               choices: list[list[str]] = CHOICES, settings: list[list[str]] = SETTINGS) -> Path:
    """Write an XLSForm with openpyxl; tests/data/two-language-form.xlsx is build_form's default."""
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    for row in survey:
        ws.append(row)
    for title, rows in (("choices", choices), ("settings", settings)):
        sheet = wb.create_sheet(title)
        for row in rows:
            sheet.append(row)
    wb.save(path)
    return path


def _values(path: Path) -> dict[str, list[tuple[object, ...]]]:
    wb = load_workbook(path, read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}
    finally:
        wb.close()


def test_committed_form_matches_its_generator(tmp_path: Path) -> None:
    # Regenerate with: python -c "from tests.test_xlsform import *; build_form(FORM)"
    assert FORM.is_file()
    assert _values(FORM) == _values(build_form(tmp_path / "fresh.xlsx"))


def test_two_language_form_imports_and_passes_check(tmp_path: Path) -> None:
    result = import_xlsform(FORM, "clinic.yaml")
    out = tmp_path / "clinic.yaml"
    out.write_text(result.yaml_text, encoding="utf-8")
    checked = check_file(out)
    assert checked.ok, [p.render(checked.name) for p in checked.problems]
    spec = checked.spec
    assert spec is not None
    assert spec.id == "clinic-visit-2026" and spec.mode == "coassessment"
    assert spec.languages == ["en", "ar"] and spec.title["en"] == "Clinic visit feedback"
    types = {q.id: q.type for q in spec.questions}
    assert types == {"welcome": "info", "got_help": "choice", "ease_score": "rating",
                     "why_hard": "text", "channels": "multi", "phone_why": "text",
                     "visits": "rating", "more": "info", "main_barrier": "choice", "what_missing": "text",
                     "other_idea": "text"}
    q = {x.id: x for x in spec.questions}
    assert q["ease_score"].scale == 5 and not q["ease_score"].optional
    assert q["visits"].scale == 5 and q["visits"].optional
    assert q["got_help"].option_ids == ["yes", "no"] and q["got_help"].text["ar"].startswith("هل")
    assert "1 is very hard" in q["ease_score"].text["en"]  # hints follow the label
    assert q["channels"].option_ids == ["phone", "chat", "other_option"]
    assert q["main_barrier"].other and q["main_barrier"].option_ids == ["hours", "language"]
    assert q["why_hard"].show_if == {"ease_score": [1, 2]}
    assert q["phone_why"].show_if == {"channels": ["phone"]}
    # the group's relevant reaches the questions inside it
    assert q["main_barrier"].show_if == {"got_help": ["no"]}
    assert q["what_missing"].show_if == {"got_help": ["no"]}
    assert q["more"].text["en"] == "A bit more" and q["more"].show_if == {"got_help": ["no"]}  # the group's label
    assert q["other_idea"].show_if is None


def test_every_loss_is_listed_by_sheet_and_row() -> None:
    result = import_xlsform(FORM)
    lost = [f.render() for f in result.left_out]
    assert "survey row 13: type 'geopoint' is not supported; left out" in lost
    assert any(x.startswith("survey row 14: type 'calculate'") for x in lost)
    assert any(x.startswith("survey row 8:") and "constraint" in x for x in lost)
    assert any(x.startswith("survey row 15:") and "relevant" in x and "always asked" in x for x in lost)
    notes = [f.render() for f in result.notes]
    assert any("'Ease-Score' became id 'ease_score'" in x and x.startswith("survey row 4:") for x in notes)
    assert any(x.startswith("choices row 6:") and "other_option" in x for x in notes)
    assert any(x.startswith("survey row 8:") and "1 to 5 rating" in x for x in notes)
    # nothing is silent: the file itself names what was left out
    assert "survey row 13: type 'geopoint'" in result.yaml_text


def test_cli_import_writes_a_file_that_passes_check(tmp_path: Path) -> None:
    out = tmp_path / "form.yaml"
    proc = run_cli("campaign", "import-xlsform", str(FORM), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "survey row 13: type 'geopoint' is not supported; left out" in proc.stderr
    assert check_file(out).ok
    again = run_cli("campaign", "import-xlsform", str(FORM), "-o", str(out))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_cli_strict_writes_nothing_when_rows_are_left_out(tmp_path: Path) -> None:
    out = tmp_path / "form.yaml"
    proc = run_cli("campaign", "import-xlsform", str(FORM), "-o", str(out), "--strict")
    assert proc.returncode == 1 and "Nothing was written" in proc.stderr
    assert not out.exists()


def test_not_an_xlsx_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "form.xlsx"
    fake.write_text("type,name,label\ntext,a,A\n")
    with pytest.raises(XLSFormError, match="not an Excel .xlsx workbook"):
        import_xlsform(fake)
    out = tmp_path / "out.yaml"
    proc = run_cli("campaign", "import-xlsform", str(fake), "-o", str(out))
    assert proc.returncode == 1 and "not an Excel .xlsx workbook" in proc.stderr
    assert not out.exists()


def test_unknown_type_is_an_error_with_its_row(tmp_path: Path) -> None:
    survey = [*SURVEY[:3], ["slect_one yes_no", "typo", "Typo?", "خطأ؟"]]
    form = build_form(tmp_path / "typo.xlsx", survey)
    out = tmp_path / "out.yaml"
    proc = run_cli("campaign", "import-xlsform", str(form), "-o", str(out))
    assert proc.returncode == 1
    assert "survey row 4: 'slect_one yes_no' is not an XLSForm question type" in proc.stderr
    assert "select_one" in proc.stderr and not out.exists()


@pytest.mark.parametrize(("survey", "choices", "message"), [
    ([["type", "name", "label::Elvish"], ["text", "a", "A"]], CHOICES, "cannot tell which language"),
    ([["type", "name", "label::English (en)"], ["select_one nolist", "a", "A"]], CHOICES, "nolist"),
    ([["type", "name", "label::English (en)"], ["geopoint", "a", "A"]], CHOICES,
     "no question in the form could be imported"),
])
def test_bad_forms_are_explained(tmp_path: Path, survey: list[list[str]], choices: list[list[str]],
                                 message: str) -> None:
    form = build_form(tmp_path / "bad.xlsx", survey, choices)
    with pytest.raises(XLSFormError) as info:
        import_xlsform(form)
    assert any(message in p for p in info.value.problems), info.value.problems


def test_plain_label_uses_default_language_and_missing_translations_are_noted(tmp_path: Path) -> None:
    survey = [["type", "name", "label", "label::Somali (so)", "required"],
              ["select_one yn", "ok", "All good?", "Wax walba ma fiican yihiin?", "true"],
              ["text", "why", "Why?", None, None]]
    choices = [["list_name", "name", "label", "label::Somali (so)"],
               ["yn", "yes", "Yes", "Haa"], ["yn", "no", "No", "Maya"]]
    settings = [["form_title", "default_language"], ["Quick check", "English (en)"]]
    result = import_xlsform(build_form(tmp_path / "f.xlsx", survey, choices, settings))
    assert result.campaign["languages"] == ["en", "so"]
    checked = check_text(result.yaml_text)
    assert checked.ok, [p.render("f") for p in checked.problems]
    assert checked.spec is not None and checked.spec.id == "form-f"
    assert any(f.row == 3 and "no text in so" in f.message for f in result.notes)


@pytest.mark.parametrize(("relevant", "show_if"), [
    ("${q} = 'a'", {"q": ["a"]}),
    ("${q}='a' or ${q}='b'", {"q": ["a", "b"]}),
    ("selected(${q}, 'b')", {"q": ["b"]}),
    ("(${q} = 'a' or ${q} = 'b') and ${r} >= 4", {"q": ["a", "b"], "r": [4, 5]}),
    ("${r} != 3", {"r": [1, 2, 4, 5]}),
])
def test_simple_relevant_becomes_show_if(tmp_path: Path, relevant: str, show_if: dict[str, list[object]]) -> None:
    survey = [["type", "name", "label", "relevant", "parameters"],
              ["select_one ab", "q", "Q?"],
              ["range", "r", "R?", None, "start=1 end=5"],
              ["text", "t", "T?", relevant]]
    choices = [["list_name", "name", "label"], ["ab", "a", "A"], ["ab", "b", "B"]]
    result = import_xlsform(build_form(tmp_path / "f.xlsx", survey, choices, [["form_id"], ["rel"]]))
    t = next(q for q in result.campaign["questions"] if q["id"] == "t")
    assert {k: list(v) for k, v in t["show_if"].items()} == show_if


@pytest.mark.parametrize("relevant", [
    "${q} = 'a' or ${r} = 2",  # different questions joined by or
    "string-length(${t0}) > 0",  # a function
    "${q} = ${r}",  # compares two answers
    "${later} = 'x'",  # a question that comes later
])
def test_complex_relevant_is_listed_and_question_kept(tmp_path: Path, relevant: str) -> None:
    survey = [["type", "name", "label", "relevant", "parameters"],
              ["select_one ab", "q", "Q?"],
              ["range", "r", "R?", None, "start=1 end=5"],
              ["text", "t0", "T0?"],
              ["text", "t", "T?", relevant],
              ["text", "later", "L?"]]
    choices = [["list_name", "name", "label"], ["ab", "a", "A"], ["ab", "b", "B"]]
    result = import_xlsform(build_form(tmp_path / "f.xlsx", survey, choices, [["form_id"], ["rel"]]))
    t = next(q for q in result.campaign["questions"] if q["id"] == "t")
    assert "show_if" not in t
    assert any(f.sheet == "survey" and f.row == 5 and "relevant" in f.message for f in result.left_out)


def test_ids_and_languages() -> None:
    assert to_id("Ease-Score") == "ease_score"
    assert to_id("a" * 30) == "a" * 24
    assert to_id("Ünïcode name!") == "n_code_name"
    assert to_id("???") == "q"
    assert to_campaign_id("Clinic_Visit_2026") == "clinic-visit-2026"
    assert to_campaign_id("x") == "form-x"
    assert language_code("Arabic (ar)") == "ar"
    assert language_code("Dari (fa-AF)") == "fa-AF"
    assert language_code("Somali") == "so"
    assert language_code("uk") == "uk"
    assert language_code("Klingon") is None  # Babel has its name, not its data
    assert language_code("Elvish") is None


def test_default_language_without_plain_labels_adds_no_language(tmp_path: Path) -> None:
    settings = [["form_id", "default_language"], ["lang-test", "French (fr)"]]
    result = import_xlsform(build_form(tmp_path / "f.xlsx", settings=settings))
    assert list(result.campaign["languages"]) == ["en", "ar"]
