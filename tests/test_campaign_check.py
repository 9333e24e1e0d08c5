"""`coassess campaign check`: every problem named with its line; the example passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.campaigns.check import check_file, check_text
from tests.conftest import EXAMPLE

COASSESS = [sys.executable, "-m", "bot.cli.__main__"]


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    import os

    return subprocess.run([*COASSESS, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=120)


def test_example_passes_and_uses_every_question_type(example_spec) -> None:  # type: ignore[no-untyped-def]
    types = {q.type for q in example_spec.questions}
    assert types == {"rating", "choice", "multi", "yesno", "rank", "budget", "text", "info"}
    assert example_spec.groups and example_spec.baseline and example_spec.invites
    assert any(q.show_if for q in example_spec.questions)
    assert any(q.voice for q in example_spec.questions) and any(q.other for q in example_spec.questions)


def test_cli_check_example_exit_0() -> None:
    proc = run_cli("campaign", "check", str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout and "clinic-access" in proc.stdout


def test_removing_one_translation_names_question_language_and_line(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- id: got_help")
    so_line = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("so:"))
    text_line = next(i for i in range(start, len(lines)) if lines[i].strip() == "text:")
    del lines[so_line]
    bad = tmp_path / "missing.yaml"
    bad.write_text("\n".join(lines), encoding="utf-8")
    proc = run_cli("campaign", "check", str(bad))
    assert proc.returncode == 1
    assert f"missing.yaml:{text_line + 1}:" in proc.stderr
    assert "question 'got_help'" in proc.stderr and "'so'" in proc.stderr and "Somali" in proc.stderr


BAD_CASES = {
    "malformed yaml": ("id: x\nquestions: [\n", "not valid YAML: a '{' or '[' opened on this line is never closed", 2),
    "wrong type": ("id: abc\nmode: codesign\nlanguages: en\ntitle: {en: t}\nquestions: []\n",
                   "'languages' must be a list", 3),
    "unknown question type": (
        "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"
        "  - {id: q, type: slider, text: {en: hi}}\n", "unknown question type 'slider'", 6),
    "id with spaces": (
        "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"
        "  - {id: My Question, type: text, text: {en: hi}}\n", "not a valid id", 6),
    "duplicate ids": (
        "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"
        "  - {id: q, type: text, text: {en: hi}}\n  - {id: q, type: text, text: {en: ho}}\n",
        "question id 'q' is used twice", 7),
    "show_if later": (
        "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"
        "  - {id: a, type: text, text: {en: hi}, show_if: {b: ['yes']}}\n"
        "  - {id: b, type: yesno, text: {en: ho}}\n", "comes later", 6),
    "show_if unknown option": (
        "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"
        "  - {id: a, type: choice, text: {en: hi}, options: [{id: x, text: {en: X}}, {id: y, text: {en: Y}}]}\n"
        "  - {id: b, type: text, text: {en: ho}, show_if: {a: [z]}}\n", "'z' is not an option of question 'a'", 7),
    "options missing": (
        "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"
        "  - {id: a, type: budget, text: {en: hi}}\n", "needs 'options'", 6),
    "unknown key": (
        "id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\ncolour: red\nquestions:\n"
        "  - {id: a, type: text, text: {en: hi}}\n", "unknown key 'colour'", 5),
    "duplicate key": ("id: abc\nid: abd\n", "appears twice", 2),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_explained_with_line(case: str) -> None:
    text, message, line = BAD_CASES[case]
    result = check_text(text, "c.yaml")
    assert not result.ok
    rendered = [p.render("c.yaml") for p in result.problems]
    assert any(message in r and r.startswith(f"c.yaml:{line}:") for r in rendered), rendered


def test_huge_file_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 10_000_000)
    result = check_file(big)
    assert not result.ok and "MB" in result.problems[0].message


def test_not_utf8_refused_with_line(tmp_path: Path) -> None:
    f = tmp_path / "latin1.yaml"
    f.write_bytes("id: abc\ntitle: {en: caf\xe9}\n".encode("latin-1"))
    result = check_file(f)
    assert not result.ok
    assert result.problems[0].line == 2 and "UTF-8" in result.problems[0].message


def test_bad_file_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: abc\nmode: nope\n")
    proc = run_cli("campaign", "load", str(bad), cwd=tmp_path)
    assert proc.returncode == 1 and "Nothing was loaded" in proc.stderr
    assert not (tmp_path / "coassess.db").exists()


def test_line_numbers_are_printed_as_numbers(tmp_path: Path) -> None:
    """Rich would turn ':100:' into an emoji; the CLI must print the line number."""
    f = tmp_path / "l100.yaml"
    f.write_text("id: abc\n" + "# x\n" * 98 + "id: abd\n")  # the duplicate key is on line 100
    proc = run_cli("campaign", "check", str(f))
    assert proc.returncode == 1
    assert "l100.yaml:100:" in proc.stderr and "💯" not in proc.stderr


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("coassess ")


@pytest.mark.parametrize(("written", "meant", "name"), [("som", "so", "Somali"), ("per", "fa", "Persian"),
                                                        ("prs", "fa-AF", "Persian (Afghanistan)")])
def test_three_letter_language_codes_are_told_the_code_telegram_uses(written: str, meant: str, name: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "languages: [en, ar, so, uk, fa, es]", f"languages: [en, ar, so, uk, fa, es, {written}]")
    result = check_text(text, "c.yaml")
    rendered = [p.render("c.yaml") for p in result.problems]
    assert rendered == [f"c.yaml:6: write '{written}' as '{meant}' ({name}): Telegram gives people's "
                        "languages as two-letter codes, and the texts must use the same code"]


def test_slips_an_officer_makes_are_named_with_the_fix(tmp_path: Path) -> None:
    example = EXAMPLE.read_text(encoding="utf-8")
    # a misspelt key: the key meant
    misspelt = check_text(example.replace("    optional: true", "    optinal: true", 1), "c.yaml")
    assert [p.render("c.yaml").split(": ", 1)[1] for p in misspelt.problems] == [
        "question 'barrier': unknown key 'optinal': did you mean 'optional'?"]
    # a show_if on the question itself
    itself = check_text(example.replace("show_if: {barrier: [hours, language, transport, other]}",
                                        "show_if: {idea: [hours]}"), "c.yaml")
    assert any("show_if names this question itself ('idea')" in p.render("c.yaml") for p in itself.problems)
    # a colon inside an unquoted text
    colon = check_text("id: t\nmode: coassessment\nlanguages: [en]\ntitle: {en: T}\nquestions:\n"
                       "  - id: a\n    type: text\n    text:\n      en: Why: do you come?\n", "c.yaml")
    assert [p.render("c.yaml") for p in colon.problems] == [
        "c.yaml:9: this is not valid YAML: mapping values are not allowed here. A text that contains ': ' "
        "must be in quotes, e.g. en: \"Why: do you come here?\" (or check the indentation of this line)."]


def test_check_notes_a_long_survey(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    idea = text[text.index("  - id: idea"):]
    longer = text + "".join(idea.replace("id: idea", f"id: idea{i}").replace("    show_if:", "    #")
                            for i in range(6))
    path = tmp_path / "long.yaml"
    path.write_text(longer, encoding="utf-8")
    proc = run_cli("campaign", "check", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "about 8 minutes for a participant" in proc.stdout
    assert "note: about 8 minutes is long for people answering on a phone" in proc.stdout
    assert "is long" not in run_cli("campaign", "check", str(EXAMPLE)).stdout
