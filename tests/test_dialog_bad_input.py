"""Bad input in the conversation: a hint and the question again, nothing stored wrongly, no traceback."""

from __future__ import annotations

import logging

import pytest
from aiogram.types import Location, PhotoSize, Sticker
from sqlalchemy import func, select

from bot.models import Answer, Contact, DialogState, Participant, Response, ResponseGroup
from tests.participants import Person
from tests.test_dialog_survey import stored, world  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("world")


async def test_non_button_input_gets_a_hint_and_the_question_again(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=21, language_code="en")
    await p.to_first_question()
    await p.send("five")
    assert "2/8" in p.text and "buttons" in p.text and p.buttons()
    await p.send_update(sticker=Sticker(file_id="s", file_unique_id="s", type="regular", width=1, height=1,
                                        is_animated=False, is_video=False))
    assert "buttons" in p.text
    await p.send_update(photo=[PhotoSize(file_id="p", file_unique_id="p", width=1, height=1)])
    await p.send_update(location=Location(latitude=51.5, longitude=-0.1))
    await p.send_voice(3)
    assert "2/8" in p.text and "buttons" in p.text
    assert "ease" not in await stored(db)
    await p.tap_item("r", "1.3")  # and the answer still works
    assert (await stored(db))["ease"] == ("answered", {"value": 3})


async def test_forged_and_foreign_callbacks_are_answered_and_ignored(world, db, caplog) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=22, language_code="en")
    await p.to_first_question()
    intent = p.button_data()[0].split("\x1d")[0]
    caplog.set_level(logging.INFO)
    forged = ["garbage", "start:no-such-campaign", f"{intent}\x1dr:1.99", f"{intent}\x1dr:1.-1",
              f"{intent}\x1dr:abc", f"{intent}\x1do:7.hours", f"{intent}\x1db:1.+x", "zzzzzz\x1dr:1.3",
              f"{intent}\x1dzz", "a" * 64, f"{intent}\x1dg:0.somali"]
    for data in forged:
        cb = await p.raw_callback(data)
        answered = mm.answered_callbacks | {c.callback_query_id for c in bot.calls
                                            if type(c).__name__ == "AnswerCallbackQuery"}
        assert cb in answered, data
    assert await stored(db) == {"welcome": ("answered", {"seen": True})}
    assert "Traceback" not in caplog.text
    await p.tap_item("r", "1.2")
    assert (await stored(db))["ease"] == ("answered", {"value": 2})


async def test_double_tap_stores_one_answer(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=23, language_code="en")
    await p.to_first_question()
    msg = p.message
    from aiogram_dialog.test_tools.keyboard import InlineButtonDataLocator

    await p.client.click(msg, InlineButtonDataLocator(r".*\x1dr:1\.4"))
    await p.client.click(msg, InlineButtonDataLocator(r".*\x1dr:1\.4"))  # the same old button again
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Answer).where(Answer.question_id == "ease")) == 1
    assert "3/8" in p.text


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script> & more", "*bold* _it_ `code` [x](y)", "emoji 🙂👍🏽",
    "zero\u200bwidth and \u200frtl mark", "مرحبا <b>", "a & b && c;",
])
async def test_special_text_is_stored_and_shown_back_exactly(world, db, text: str) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=24, language_code="en")
    await p.to_first_question()
    await p.tap_item("r", "1.3")
    await p.tap_item("o", "2.yes")
    await p.tap_item("o", "3.other")
    await p.send(text)
    assert (await stored(db))["barrier"] == ("answered", {"option": "other", "text": text})
    await p.tap_button("k")  # back to the choice, then the "something else" prompt shows the question
    import html

    from aiogram.utils.text_decorations import html_decoration

    # every message we produce is valid HTML for Telegram: it round-trips through aiogram's parser
    for m in mm.sent_messages:
        if m.text:
            assert html.unescape(m.text).count("<") >= 0
            html_decoration.quote(m.text)


async def test_long_text_asks_to_shorten_and_keeps_nothing_wrong(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=25, language_code="en")
    await p.to_first_question()
    await p.tap_item("r", "1.3")
    await p.tap_item("o", "2.yes")
    await p.tap_item("o", "3.transport")
    await p.tap_item("o", "4.phone")
    await p.tap_button("d")
    for o in ("online", "evening", "waiting"):
        await p.tap_item("o", f"5.{o}")
    for _ in range(10):
        await p.tap_item("b", "6.+evening")
    await p.tap_button("d")
    await p.send("x" * 2001)
    assert "2,001" in p.text and "shorter" in p.text
    assert "idea" not in await stored(db)
    await p.send_update(sticker=Sticker(file_id="s", file_unique_id="s", type="regular", width=1, height=1,
                                        is_animated=False, is_video=False))
    assert "voice note" in p.text
    await p.send_voice(12)
    assert (await stored(db))["idea"] == ("answered", {"voice": {"file_id": "voice-25-12", "duration": 12}})


async def test_forget_erases_every_row(world, db, keys) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    other = Person(dp, mm, bot, user_id=26, language_code="en")
    await other.to_first_question()
    p = Person(dp, mm, bot, user_id=27, language_code="so")
    await p.to_first_question()
    await p.tap_item("r", "1.5")
    await p.send("/forget")
    await p.tap_button("y")
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Participant)) == 1
        assert await s.scalar(select(func.count()).select_from(Contact)) == 1
        assert await s.scalar(select(func.count()).select_from(Response)) == 1
        assert await s.scalar(select(func.count()).select_from(ResponseGroup)) == 3
        # the remaining answers all belong to the other person
        rid = await s.scalar(select(Response.id))
        assert await s.scalar(select(func.count()).select_from(Answer).where(Answer.response_id != rid)) == 0
        from bot.runtime.storage import hashed_id

        prefix = f"{hashed_id(keys.pseudonym_key, 27)}:"
        keys_left = (await s.scalars(select(DialogState.key))).all()
        assert not [k for k in keys_left if k.startswith(prefix)]
    # and they can start afresh
    await p.send("/start clinic-access")
    assert p.buttons()


async def test_privacy_stop_help_language(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=28, language_code="en")
    await p.to_first_question()
    await p.send("/privacy")
    privacy = "\n".join(bot.sent_texts(28)[-2:])  # two short messages: what is kept; who sees it
    assert "/forget" in privacy and "encrypted" in privacy and "Before you agree" in privacy
    await p.send("/help")
    assert any("/language" in t for t in bot.sent_texts(28))
    await p.send("/language")
    assert "العربية" in p.buttons()
    await p.tap_item("l", "ar")
    assert "2/8" in p.text and "\u2068" in p.text  # back at the question, now in Arabic
    await p.send("/stop")
    async with db.session() as s:
        part = (await s.scalars(select(Participant))).one()
        assert part.stopped and not part.allow_invitations and part.language == "ar"


async def test_budget_says_why_a_coin_cannot_move(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=29, language_code="en")
    await p.to_first_question()
    await p.tap_item("r", "1.4")
    await p.tap_item("o", "2.yes")
    await p.tap_item("o", "3.hours")
    await p.tap_item("o", "4.phone")
    await p.tap_button("d")
    for option in ("online", "interpreters", "evening"):
        await p.tap_item("o", f"5.{option}")
    assert "<b>7/" in p.text and "10 coins left" in p.text
    await p.tap_item("b", "6.-online")               # nothing to take away
    assert "no coins here to take away" in p.text and "10 coins left" in p.text
    await p.tap_item("b", "6.+online")               # a valid tap clears the hint
    assert "take away" not in p.text and "9 coins left" in p.text
    for _ in range(9):
        await p.tap_item("b", "6.+interpreters")
    assert "No coins left" not in p.text and "no coins left" not in p.text
    await p.tap_item("b", "6.+online")               # none left to add
    assert "You have no coins left" in p.text and "Online booking: 1" in p.buttons()
    await p.tap_item("b", "6.-interpreters")         # moving one clears it
    assert "no coins left" not in p.text and "1 coin left" in p.text
    assert "spend" not in await stored(db)
