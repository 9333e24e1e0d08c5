"""`--help` is read by council officers: words (FILE, NUMBER, CAMPAIGN), not Python types, and examples."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import app

# What Typer or Click would otherwise show for a value: <bool>, <str>, <list[str]>, <path>,
# INTEGER, TEXT, PATH, and required arguments in braces.
TYPE_NAMES = re.compile(r"<(bool|str|int|float|path|list\[[^\]]*\])>|\b(INTEGER|TEXT|PATH|BOOLEAN|FLOAT)\b"
                        r"|\{[a-z_]+\}")
# The commands an officer uses in docs/administrators.md: each help shows how to call it.
WITH_EXAMPLES = [("invite", "create"), ("invite", "list"), ("broadcast",), ("remind",),
                 ("outcome", "send"), ("audit",), ("export",), ("report",), ("synth",), ("db", "upgrade"),
                 ("i18n", "check")]


def _commands() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, ...]] = [()]

    def walk(group, path: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
        for name, command in sorted(getattr(group, "commands", {}).items()):
            found.append((*path, name))
            walk(command, (*path, name))

    walk(root, ())
    return found


def _help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_walked() -> None:
    commands = _commands()
    assert ("outcome", "send") in commands and ("campaign", "check") in commands and len(commands) > 20


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "coassess")
def test_help_names_values_in_words(path: tuple[str, ...]) -> None:
    # `coassess webhook --path PATH` is an option named path (a URL path), not a type name
    text = re.sub(r"--path\s+PATH\b", "", _help(*path))
    assert not TYPE_NAMES.search(text), f"coassess {' '.join(path)} --help shows {TYPE_NAMES.search(text)[0]!r}"


def test_options_say_what_they_take() -> None:
    create = _help("invite", "create")
    assert "Usage: coassess invite create [OPTIONS] CAMPAIGN" in create
    for option, word in (("--code", "CODE"), ("--partner", "NAME"), ("--group", "DIMENSION=GROUP"),
                         ("-o", "FOLDER")):
        assert re.search(rf"{re.escape(option)}\s.*?\b{word}\b", create), (option, word)
    send = _help("outcome", "send")
    assert "CAMPAIGN FILE" in send and re.search(r"--dry-run\s+Check the file", send)  # a flag takes no value
    assert re.search(r"--limit\s+NUMBER", _help("audit"))
    assert re.search(r"--output\s+-o\s+FILE", _help("export"))
    assert re.search(r"--layout\s+long\|wide\|grouped", _help("export"))


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=" ".join)
def test_help_shows_examples(path: tuple[str, ...]) -> None:
    text = _help(*path)
    assert re.search(r"Examples?:", text) and f"coassess {' '.join(path)} " in text.split("Example", 1)[1]


def test_counts_agree_with_their_nouns() -> None:
    from bot.cli.common import plural

    assert plural(1, "question") == "1 question" and plural(0, "question") == "0 questions"
    assert plural(1, "person", "people") == "1 person" and plural(1200, "person", "people") == "1,200 people"


@pytest.mark.parametrize(("url", "said", "hint"), [
    ("sqlite+aiosqlite:///{tmp}/missing/folder/c.db", "the folder {tmp}/missing/folder does not exist",
     "Make the folder (mkdir -p {tmp}/missing/folder)"),
    ("postgres://someone@127.0.0.1:1/db", "is not a database address coassess can use",
     "postgresql+asyncpg://user:password@host:5432/coassess"),
    ("sqlite:///{tmp}/c.db", "requires an async driver", "sqlite+aiosqlite:///coassess.db"),
])
def test_a_wrong_database_address_says_what_and_how_to_fix_it(tmp_path, url: str, said: str, hint: str) -> None:  # type: ignore[no-untyped-def]
    from bot.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["audit"], env={
            "COASSESS_DATABASE_URL": url.format(tmp=tmp_path), "COASSESS_PSEUDONYM_KEY": "p",
            "COASSESS_CONTACT_KEY": "c", "COLUMNS": "300"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # an answer, not a crash
    assert said.format(tmp=tmp_path) in result.output and hint.format(tmp=tmp_path) in result.output
    assert "Traceback" not in result.output and not (tmp_path / "missing").exists()
