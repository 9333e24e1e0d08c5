"""Invisible text, voice at "Something else…", and an older message's button after a restart,
clicked through with aiogram-dialog's test tools on both backends."""

from __future__ import annotations

import pytest
from aiogram.methods import AnswerCallbackQuery
from aiogram_dialog.test_tools import MockMessageManager
from aiogram_dialog.test_tools.keyboard import InlineButtonDataLocator

from bot.runtime.app import BotConfig, build_dispatcher
from tests.participants import Person
from tests.test_dialog_survey import stored, world  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("world")

# Zero-width space, direction marks, word joiner, byte-order mark, Hangul filler, blank Braille,
# a no-break space with a combining mark: each draws nothing.
INVISIBLE = ["\u200b", "\u200e", "\u200f", "\u2060", "\ufeff", "\u3164", "\u2800", "\u00a0\u0301",
             "\u200b \u200e\u2060"]


async def to_barrier(p: Person, ease: str = "1.3") -> None:
    await p.to_first_question()
    await p.tap_item("r", ease)
    await p.tap_item("o", "2.no")
    assert "4/8" in p.text


async def test_text_without_a_visible_character_is_asked_again(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=41, language_code="en")
    await to_barrier(p)
    await p.tap_item("o", "3.hours")  # the typed question "idea" is shown after "hours"
    await p.tap_item("o", "4.phone")
    await p.tap_button("d")
    for option in ("online", "interpreters", "evening"):
        await p.tap_item("o", f"5.{option}")
    for _ in range(10):
        await p.tap_item("b", "6.+online")
    await p.tap_button("d")
    assert "Type your answer" in p.text
    for text in INVISIBLE:
        await p.send(text)
        assert "Please type your answer, or send a voice note." in p.text, repr(text)
    assert "idea" not in await stored(db)
    await p.send("\u200bA lift\u200b")  # visible words among invisible ones are an answer
    assert (await stored(db))["idea"][1] == {"text": "\u200bA lift\u200b"}


async def test_invisible_text_at_something_else_is_asked_again(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=42, language_code="en")
    await to_barrier(p)
    await p.tap_item("o", "3.other")
    for text in INVISIBLE:
        await p.send(text)
        assert "Please write a few words, then send them." in p.text, repr(text)
    assert "barrier" not in await stored(db)


async def test_a_voice_note_is_taken_at_something_else(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=43, language_code="en")
    await to_barrier(p)
    await p.tap_item("o", "3.other")
    assert "voice note" in p.text
    await p.send_voice(9)
    assert (await stored(db))["barrier"] == ("answered", {"option": "other", "voice": {
        "file_id": "voice-43-9", "duration": 9}})
    assert "5/" in p.text
    # and on a multi question with "something else" ticked
    await p.tap_item("o", "4.other")
    await p.send_voice(4)
    await p.tap_button("d")
    assert (await stored(db))["channels"][1] == {"options": ["other"], "voice": {
        "file_id": "voice-43-4", "duration": 4}}


async def test_an_older_messages_button_after_a_restart_stores_nothing(world, db, keys) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=44, language_code="en")
    await p.to_first_question()
    older = p.message                      # question 1 ("ease") with its buttons
    await p.send("hello")                  # the screen again, as a new message
    assert p.message.message_id != older.message_id
    await p.tap_item("r", "1.4")           # answered on the new message
    assert "3/8" in p.text
    mm2 = MockMessageManager()
    dp2 = build_dispatcher(db, keys, message_manager=mm2, config=BotConfig(dedupe=False))
    p2 = Person(dp2, mm2, bot, user_id=44, language_code="en")
    p2.client.last_update_id = p.client.last_update_id + 100
    cb = await p2.client.click(older, InlineButtonDataLocator(r".*\x1dr:1\.2"))
    assert (await stored(db))["ease"] == ("answered", {"value": 4})
    answers = [m for m in bot.calls if isinstance(m, AnswerCallbackQuery) and m.callback_query_id == cb]
    assert len(answers) == 1 and "another question" in (answers[0].text or "")


async def test_after_forget_cancel_with_no_survey_a_message_gets_the_help(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=45, language_code="en")
    await p.send("/forget")
    await p.tap_button("n")
    assert p.text == "Nothing was erased."
    shown = len(mm.sent_messages)
    await p.send("hello")
    assert len(mm.sent_messages) == shown  # not "Nothing was erased." again
    assert "This bot asks short questions" in bot.sent_texts(45)[-1]
