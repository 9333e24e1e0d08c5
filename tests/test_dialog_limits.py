"""Worst-case campaigns never produce a message over 4,096 characters or callback data over 64 bytes."""

from __future__ import annotations

import re

from aiogram.utils.text_decorations import html_decoration  # noqa: F401 - documents the parser used
from aiogram_dialog.test_tools import MockMessageManager

from bot.campaigns.check import check_text
from bot.campaigns.schema import MAX_OPTION_TEXT, MAX_OPTIONS, MAX_QUESTION_TEXT, MAX_TITLE_TEXT
from bot.campaigns.store import load_campaign
from bot.runtime.app import BotConfig, build_dispatcher
from dialogs.context import forget_cached_campaigns
from tests.participants import Person, RecordingBot

TAG = re.compile(r"<[^>]+>")


def visible_length(html_text: str) -> int:
    import html

    return len(html.unescape(TAG.sub("", html_text)))


def worst_case_yaml() -> str:
    qtext = "Q" * MAX_QUESTION_TEXT
    otext = "é" * MAX_OPTION_TEXT
    opts = "\n".join(f"      - {{id: {'o' * 21}{i:03d}, text: {{en: {otext}}}}}" for i in range(MAX_OPTIONS))
    types = ["rating", "choice", "multi", "rank", "budget", "yesno", "text", "info"]
    questions = []
    for i, t in enumerate(types):
        qid = f"{'q' * 22}{i:02d}"
        extra = ""
        if t in {"choice", "multi", "rank", "budget"}:
            extra = f"\n    options:\n{opts}"
        if t in {"choice", "multi"}:
            extra += "\n    other: true"
        if t == "rating":
            extra = "\n    scale: 10\n    labels: {en: [" + "L" * MAX_OPTION_TEXT + ", " + "H" * MAX_OPTION_TEXT + "]}"
        if t == "budget":
            extra += "\n    tokens: 100"
        questions.append(f"  - id: {qid}\n    type: {t}\n    optional: {'true' if t != 'info' else 'false'}"
                         f"\n    voice: {'true' if t == 'text' else 'false'}\n    text: {{en: {qtext}}}{extra}"
                         .replace("\n    voice: false", ""))
    dims = f"""  - id: {'d' * 24}
    multiple: true
    text: {{en: {qtext}}}
    options:
{opts}"""
    return f"""id: {'c' * 40}
mode: codesign
languages: [en]
title: {{en: {'T' * MAX_TITLE_TEXT}}}
intro: {{en: {'I' * 2000}}}
groups:
{dims}
questions:
""" + "\n".join(questions) + "\n"


async def test_worst_case_campaign_within_telegram_limits(db, keys) -> None:  # type: ignore[no-untyped-def]
    result = check_text(worst_case_yaml(), "worst.yaml")
    assert result.ok, [p.render("worst.yaml") for p in result.problems]
    spec = result.spec
    async with db.session() as s:
        c, _ = await load_campaign(s, spec)
        c.status = "open"
        await s.commit()
    forget_cached_campaigns()
    mm, bot = MockMessageManager(), RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm, config=BotConfig(dedupe=False))
    p = Person(dp, mm, bot, user_id=99, language_code="en")
    await p.send(f"/start {'c' * 40}")
    await p.tap_button("y")
    o = "o" * 21
    await p.tap_item("g", f"0.{o}000")
    await p.tap_button("d")
    for i, step in enumerate(["R:0.10", "o:1.other", None, "o:2." + o + "000", "d", *[f"o:3.{o}{k:03d}" for k in range(20)],
                              *[f"b:4.+{o}000"] * 100, "d", "o:5.yes", None, "c"]):
        if step is None:
            await p.send("x" * 2000)
        elif ":" in step:
            widget, item = step.split(":", 1)
            await p.tap_item(widget, item)
        else:
            await p.tap_button(step)
    assert "Thank" in p.text
    for m in mm.sent_messages:
        if m.text:
            assert visible_length(m.text) <= 4096
        for row in (m.reply_markup.inline_keyboard if m.reply_markup else []):
            assert len(row) <= 8
            for b in row:
                assert 1 <= len((b.callback_data or "x").encode()) <= 64, b.callback_data
