"""Issue 15, points 11 to 14: the command line for officers who use it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.admin_world import load_open
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)


def coassess(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("COASSESS_")}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**base, "PYTHONPATH": str(ROOT), **env}, timeout=120)


async def test_campaign_list_never_cuts_the_id(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from tests.test_admin_invites import cli

    long_id = "housing-repairs-2027-spring-round"
    title = {lang: "Tell us how the repair of your home went, and what should change next time"
             for lang in example_spec.languages}
    await load_open(db, example_spec.model_copy(update={"id": long_id, "title": title}))
    result = await cli(db_url, keys, "campaign", "list", COLUMNS="80")
    assert result.exit_code == 0, result.output
    assert long_id in result.output, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    # nor the invite codes of `invite list` and `campaign show`
    from bot.services.invites import find_or_create_invite

    spec = example_spec.model_copy(update={"id": long_id})
    async with db.session() as s:
        await find_or_create_invite(s, spec, "somali-community-hub", "Somali Community Association Hub")
        await s.commit()
    for args in (("invite", "list", long_id), ("campaign", "show", long_id)):
        shown = await cli(db_url, keys, *args, COLUMNS="80")
        assert shown.exit_code == 0, shown.output
        assert "│ somali-community-hub " in shown.output, shown.output


def test_read_only_commands_refuse_without_a_database(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from bot.cli import app
    from bot.settings import get_settings

    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("COASSESS_")]:
        monkeypatch.delenv(name)
    for args in (["campaign", "list"], ["report", "clinic-access", "-o", "r.html"],
                 ["export", "clinic-access", "-o", "out"], ["audit"], ["campaign", "show", "x"]):
        get_settings.cache_clear()
        result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
        said = " ".join(result.output.split())
        assert result.exit_code == 1, (args, said)
        assert f"no database at {tmp_path / 'coassess.db'}" in said, said
        assert "set COASSESS_DATABASE_URL or run from the bot's folder" in said
        assert not (tmp_path / "coassess.db").exists(), args
    get_settings.cache_clear()


def test_import_xlsform_help_and_warnings_are_for_an_officer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    help_text = " ".join(coassess("campaign", "import-xlsform", "--help", COLUMNS="200").stdout.split())
    assert "-o FILE" in help_text and "FOLDER" not in help_text
    assert "OUT" not in help_text
    assert "--force" in help_text and "Replace the campaign file" in help_text
    # a workbook saved with drop-down lists (an Excel extension the reader does not support)
    src = ROOT / "tests" / "data" / "two-language-form.xlsx"
    form = tmp_path / "form.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(form, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</worksheet>", b'<extLst><ext uri="{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}" '
                                    b'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
                                    b'<x14:dataValidations count="0"/></ext></extLst></worksheet>')
            zout.writestr(item, data)
    proc = coassess("campaign", "import-xlsform", str(form), "-o", str(tmp_path / "c.yaml"), COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    assert "UserWarning" not in proc.stderr and "openpyxl" not in proc.stderr and "warn(msg)" not in proc.stderr
    assert "drop-down lists" in proc.stderr, proc.stderr


async def test_campaign_show_finds_the_bots_username_once_and_remembers_it(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from bot.sandbox import Sandbox
    from tests.test_admin_invites import cli

    await load_open(db, example_spec)
    async with Sandbox() as sb:
        api = {"COASSESS_BOT_TOKEN": sb.token, "COASSESS_TELEGRAM_API_URL": sb.api_url, "COASSESS_BOT_USERNAME": ""}
        first = await cli(db_url, keys, "campaign", "show", "clinic-access", **api)
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        bot = Bot(sb.token, session=AiohttpSession(api=TelegramAPIServer.from_base(sb.api_url)))
        try:
            username = (await bot.get_me()).username
        finally:
            await bot.session.close()
    assert first.exit_code == 0, first.output
    assert f"https://t.me/{username}?start=clinic-access" in first.output, first.output
    assert "<bot>" not in first.output and "COASSESS_BOT_USERNAME" not in first.output
    # remembered: with Telegram out of reach, the links are still whole
    later = await cli(db_url, keys, "campaign", "show", "clinic-access", COASSESS_BOT_TOKEN=api["COASSESS_BOT_TOKEN"],
                      COASSESS_TELEGRAM_API_URL="http://127.0.0.1:9", COASSESS_BOT_USERNAME="")
    assert later.exit_code == 0, later.output
    assert f"https://t.me/{username}?start=clinic-access" in later.output, later.output
