""""Something else…" on a multi question: text typed before Done is kept, never asked for twice.

The example's `channels` question (4th) is a `multi` with `other: true`; `barrier` (3rd) is a
`choice` with `other: true`.
"""

from __future__ import annotations

import json

import pytest
from aiogram.types import Sticker
from sqlalchemy import func, select

from bot.models import Answer, DialogState
from dialogs.i18n import tr
from tests.participants import Person
from tests.test_dialog_survey import stored, world  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("world")

FEW_WORDS = "Please tell us in a few words, and send it."
WRITE_A_FEW = "Please write a few words, then send them."
USE_BUTTONS = "Please answer with the buttons below."
STICKER = {"sticker": Sticker(file_id="s", file_unique_id="s", type="regular", width=1, height=1,
                              is_animated=False, is_video=False)}


async def to_channels(p: Person) -> None:
    await p.to_first_question()
    await p.tap_item("r", "1.3")
    await p.tap_item("o", "2.yes")
    await p.tap_item("o", "3.hours")
    assert "Choose all that fit" in p.text  # the multi question


def shown_to(p: Person) -> list[str]:
    return [m.text or "" for m in p.mm.sent_messages if m.chat.id == p.user_id]


def your_answer(text: str) -> str:
    import html

    t = tr("en")
    return html.escape(t.gettext("Your answer: {answer}").format(answer=t.isolate(text)), quote=False)


async def channel_rows(db) -> list[dict]:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return list((await s.scalars(select(Answer.value).where(Answer.question_id == "channels"))).all())


async def test_text_typed_before_done_is_the_something_else_text(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=31, language_code="en")
    await to_channels(p)
    await p.tap_item("o", "4.chat")
    await p.tap_item("o", "4.other")
    await p.send("By WhatsApp please")
    # the question again, "something else" still ticked, the text acknowledged, no error
    assert "Choose all that fit" in p.text and USE_BUTTONS not in p.text and WRITE_A_FEW not in p.text
    assert your_answer("By WhatsApp please") in p.text
    assert "✅ Something else…" in p.buttons() and "✅ Messaging app" in p.buttons()
    assert "channels" not in await stored(db)  # held until Done, as with the other options
    await p.tap_button("d")
    assert "Which is number 1 for you?" in p.text  # moved on to the rank question
    assert not [x for x in shown_to(p) if FEW_WORDS in x]  # never asked for the text
    assert await channel_rows(db) == [{"options": ["chat", "other"], "text": "By WhatsApp please"}]


async def test_typed_text_is_stored_as_the_ordinary_path_stores_it(world, db) -> None:  # type: ignore[no-untyped-def]
    """Scrubbed of contact details like any other text; not kept raw in the dialog state either."""
    dp, mm, bot = world
    text = "WhatsApp on +44 7700 900123 or amina@example.org"
    ordinary = Person(dp, mm, bot, user_id=32, language_code="en")
    await to_channels(ordinary)
    await ordinary.tap_item("o", "4.other")
    await ordinary.tap_button("d")
    assert FEW_WORDS in ordinary.text
    await ordinary.send(text)
    early = Person(dp, mm, bot, user_id=33, language_code="en")
    await to_channels(early)
    await early.tap_item("o", "4.other")
    await early.send(text)
    assert your_answer("WhatsApp on [phone] or [email]") in early.text
    async with db.session() as s:
        states = json.dumps([row for row in (await s.scalars(select(DialogState.data))).all()])
    assert "900123" not in states and "amina@" not in states
    await early.tap_button("d")
    rows = await channel_rows(db)
    assert rows == [{"options": ["other"], "text": "WhatsApp on [phone] or [email]"}] * 2


async def test_later_text_replaces_and_unticking_drops_it(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=34, language_code="en")
    await to_channels(p)
    await p.tap_item("o", "4.other")
    await p.send("By post")
    await p.send("By WhatsApp")  # a second message replaces the first, nothing is appended
    assert your_answer("By WhatsApp") in p.text and "By post" not in p.text
    await p.tap_item("o", "4.other")  # unticked: the text goes with it
    assert "By WhatsApp" not in p.text and "Something else…" in p.buttons()
    await p.send("By pigeon")  # nothing ticked as "something else": today's hint, nothing kept
    assert USE_BUTTONS in p.text and "By pigeon" not in p.text
    await p.tap_item("o", "4.other")  # ticked again: asked afresh at Done
    assert "By WhatsApp" not in p.text
    await p.tap_button("d")
    assert FEW_WORDS in p.text and WRITE_A_FEW not in p.text
    await p.send("By phone call")
    assert await channel_rows(db) == [{"options": ["other"], "text": "By phone call"}]


async def test_untick_then_done_stores_no_text(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=35, language_code="en")
    await to_channels(p)
    await p.tap_item("o", "4.other")
    await p.send("By WhatsApp")
    await p.tap_item("o", "4.walkin")
    await p.tap_item("o", "4.other")
    await p.tap_button("d")
    assert await channel_rows(db) == [{"options": ["walkin"]}]


async def test_bad_text_before_done_gets_the_other_text_messages(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=36, language_code="en")
    await to_channels(p)
    await p.tap_item("o", "4.other")
    await p.send("x" * 2001)
    assert "2,001" in p.text and "shorter" in p.text and "✅ Something else…" in p.buttons()
    await p.send_update(**STICKER)
    assert WRITE_A_FEW in p.text
    await p.send("   ")
    assert WRITE_A_FEW in p.text and "Your answer" not in p.text
    await p.send("By WhatsApp")  # a valid text clears the error
    assert WRITE_A_FEW not in p.text and your_answer("By WhatsApp") in p.text
    await p.send("y" * 2001)  # a bad one later keeps what was given
    assert "shorter" in p.text and your_answer("By WhatsApp") in p.text
    await p.tap_button("d")
    assert await channel_rows(db) == [{"options": ["other"], "text": "By WhatsApp"}]


async def test_fresh_few_words_screen_has_no_error_line(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=37, language_code="en")
    await to_channels(p)
    await p.tap_item("o", "4.other")
    await p.send_update(**STICKER)  # an error on the question screen ...
    assert "<i>" in p.text
    await p.tap_button("d")  # ... is not carried over to the "few words" screen
    assert FEW_WORDS in p.text
    assert WRITE_A_FEW not in p.text and USE_BUTTONS not in p.text and "<i>" not in p.text
    await p.tap_button("k")
    await p.send("z" * 2001)  # nor is "too long"
    assert "shorter" in p.text
    await p.tap_button("d")
    assert FEW_WORDS in p.text and "shorter" not in p.text and "<i>" not in p.text
    await p.send_update(**STICKER)  # an invalid text on this screen: now the error shows
    assert FEW_WORDS in p.text and WRITE_A_FEW in p.text
    await p.send("By WhatsApp")
    assert await channel_rows(db) == [{"options": ["other"], "text": "By WhatsApp"}]


async def test_choice_other_asks_at_once_without_a_leftover_error(world, db) -> None:  # type: ignore[no-untyped-def]
    """A single choice opens the "few words" screen on the tap itself: no gap to type into."""
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=38, language_code="en")
    await p.to_first_question()
    await p.tap_item("r", "1.3")
    await p.tap_item("o", "2.yes")
    await p.send("The stairs")  # typed before choosing anything: the buttons hint
    assert USE_BUTTONS in p.text
    await p.tap_item("o", "3.other")
    assert FEW_WORDS in p.text and USE_BUTTONS not in p.text and WRITE_A_FEW not in p.text
    await p.send("The stairs")
    assert (await stored(db))["barrier"] == ("answered", {"option": "other", "text": "The stairs"})


async def test_back_to_an_answered_multi_keeps_its_text(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=39, language_code="en")
    await to_channels(p)
    await p.tap_item("o", "4.other")
    await p.tap_button("d")
    await p.send("By WhatsApp")
    assert "Which is number 1 for you?" in p.text
    await p.tap_button("k")  # back to the multi question: the text is shown, Done keeps it
    assert your_answer("By WhatsApp") in p.text and "✅ Something else…" in p.buttons()
    await p.tap_button("d")
    assert "Which is number 1 for you?" in p.text
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Answer)
                              .where(Answer.question_id == "channels")) == 1
    assert await channel_rows(db) == [{"options": ["other"], "text": "By WhatsApp"}]
