"""/admin in the chat offers "Open the console": a one-time link that signs the officer in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.methods import SendMessage
from aiogram_dialog.test_tools import MockMessageManager

from bot.db import Database

from bot.runtime.app import BotConfig, build_dispatcher
from tests.participants import Person, RecordingBot
from tests.web_world import ADMIN, client, console_settings, sign_in_with
from web.app import create_app


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite only: the button's storage is the console's, tested on both backends elsewhere."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/button.db")
    await database.upgrade()
    yield database
    await database.dispose()


async def test_admin_button_gives_a_one_time_sign_in_link(db, keys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COASSESS_WEB_PUBLIC_URL", "http://testserver")
    from bot.settings import get_settings

    get_settings.cache_clear()
    mm, bot = MockMessageManager(), RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm,
                          config=BotConfig(dedupe=False, admin_ids=frozenset({ADMIN}), bot_username="B0t"))
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_button("A_w")
    sent = [m for m in bot.calls if isinstance(m, SendMessage) and m.reply_markup is not None
            and "signs you in once" in str(m.text)]
    assert len(sent) == 1
    url = sent[0].reply_markup.inline_keyboard[0][0].url  # type: ignore[union-attr]
    assert url.startswith("http://testserver/signin/") and str(ADMIN) not in url
    app = create_app(console_settings(db.url), db=db, keys=keys)
    async with client(app) as c:
        assert (await sign_in_with(c, url)).status_code == 303
        assert (await c.get("/")).status_code == 200
    async with client(app) as c:
        assert (await sign_in_with(c, url)).status_code == 403  # once only
    get_settings.cache_clear()


async def test_over_https_the_button_opens_the_mini_app(db, keys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COASSESS_WEB_PUBLIC_URL", "https://console.example.org")
    from bot.settings import get_settings

    get_settings.cache_clear()
    mm, bot = MockMessageManager(), RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm,
                          config=BotConfig(dedupe=False, admin_ids=frozenset({ADMIN}), bot_username="B0t"))
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_button("A_w")
    sent = [m for m in bot.calls if isinstance(m, SendMessage) and m.reply_markup is not None
            and "signs you in once" in str(m.text)]
    button = sent[0].reply_markup.inline_keyboard[0][0]  # type: ignore[union-attr]
    assert button.web_app is not None and button.web_app.url == "https://console.example.org/miniapp"
    get_settings.cache_clear()
