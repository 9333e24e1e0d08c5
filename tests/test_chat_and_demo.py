"""`coassess chat` and `coassess demo` work without a token, through the sandbox."""

from __future__ import annotations

import csv
from pathlib import Path

from rich.console import Console

from bot.chat import run_chat, to_rich


def test_to_rich_keeps_bold_and_escapes_markup() -> None:
    assert to_rich("<b>2/6</b> a &amp; b [x]") == "[bold]2/6[/bold] a & b \\[x]"


async def test_chat_talks_to_the_real_bot(tmp_path: Path) -> None:
    script = iter(["1", "1", "7", "1", "q"])  # agree, a community, Done... then quit

    async def read() -> str:
        return next(script)

    console = Console(record=True, width=120)
    shown = await run_chat(language="en", read_line=read, console=console, data_dir=tmp_path)
    out = console.export_text()
    assert "Do you agree" in shown[0]
    assert "Which communities" in shown[1]
    assert "1  Yes, I agree" in out


async def test_demo_small_crowd(tmp_path: Path) -> None:
    from bot.demo import run_demo

    result = await run_demo(tmp_path, citizens=16, seed=11, console=Console(record=True, width=120))
    assert not [r.error for r in result.results if r.error]
    assert result.report is not None and result.report.exists()
    assert result.export is not None
    rows = list(csv.DictReader(result.export.open(encoding="utf-8-sig")))
    assert rows and rows[0]["campaign"] == "clinic-access"
    assert {r["language"] for r in rows} >= {"en"}
    # the demo database's keys are kept (in the config folder), so the officer's commands work on it afterwards
    from sqlalchemy import select

    from bot.db import Database
    from bot.models import Contact
    from bot.services.participants import Keys, chat_id
    from bot.settings import Settings

    url = f"sqlite+aiosqlite:///{(tmp_path / 'demo.db').resolve()}"
    assert Settings(_env_file=None, database_url=url).keys_path().exists()
    assert not (tmp_path / "demo.db.keys").exists()  # apart from the data
    keys = Keys(*Settings(_env_file=None, database_url=url).secret_keys())
    db = Database(url)
    try:
        async with db.session() as s:
            someone = await s.scalar(select(Contact.participant_id).limit(1))
            assert someone is not None and await chat_id(s, keys, someone) is not None
    finally:
        await db.dispose()


async def test_chat_buttons_still_work_after_help(tmp_path: Path) -> None:
    """/help answers with a message without buttons; the numbers still tap the survey's."""
    script = iter(["/help", "1", "q"])  # the consent's buttons, then "1": Yes, I agree

    async def read() -> str:
        return next(script)

    console = Console(record=True, width=120)
    shown = await run_chat(language="en", read_line=read, console=console, data_dir=tmp_path)
    out = console.export_text()
    assert "Do you agree" in shown[0] and "/forget" in shown[1]  # the help text
    assert "the buttons of the earlier message still work" in out
    assert "Which communities" in shown[-1]  # the tap went through: the group question
