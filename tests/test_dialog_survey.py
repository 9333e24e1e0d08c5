"""The participant's conversation, clicked through with aiogram-dialog's test tools, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram_dialog.test_tools import MockMessageManager
from sqlalchemy import select

from bot.campaigns.store import load_campaign
from bot.db import Database
from bot.models import Answer, Campaign, Response, ResponseGroup
from bot.runtime.app import BotConfig, build_dispatcher
from dialogs.context import forget_cached_campaigns
from tests.participants import Person, RecordingBot


@pytest.fixture
async def world(db: Database, keys, example_spec):  # type: ignore[no-untyped-def]
    async with db.session() as s:
        c, _ = await load_campaign(s, example_spec)
        c.status = "open"
        await s.commit()
    forget_cached_campaigns()
    mm = MockMessageManager()
    bot = RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm, config=BotConfig(dedupe=False))
    return dp, mm, bot


async def stored(db: Database) -> dict[str, Any]:
    async with db.session() as s:
        rows = (await s.execute(select(Answer.question_id, Answer.status, Answer.value))).all()
    return {q: (st, v) for q, st, v in rows}


async def complete_example(p: Person) -> None:
    """Every question type, answered by callback data so it works in any language."""
    await p.send("/start clinic-access_mosque")
    await p.tap_button("y")                      # consent
    await p.tap_item("g", "0.somali")            # community (multiple; the invite preset arabic)
    await p.tap_button("d")
    await p.tap_item("g", "1.25_64")             # age
    await p.tap_item("g", "2.no")                # disability
    await p.tap_button("c")                      # info
    await p.tap_item("r", "1.4")                 # rating
    await p.tap_item("o", "2.no")                # yesno
    await p.tap_item("o", "3.other")             # choice: something else
    await p.send("The stairs <b>&</b> no lift")
    await p.tap_item("o", "4.phone")             # multi
    await p.tap_item("o", "4.chat")
    await p.tap_item("o", "4.phone")             # toggled off again
    await p.tap_button("d")
    await p.tap_item("o", "5.online")            # rank, pick 3
    await p.tap_item("o", "5.interpreters")
    await p.tap_button("u")                      # undo
    await p.tap_item("o", "5.evening")
    await p.tap_item("o", "5.waiting")
    for _ in range(7):                           # budget: 7 + 3 coins
        await p.tap_item("b", "6.+interpreters")
    for _ in range(4):                           # the 4th is refused: no coins left
        await p.tap_item("b", "6.+online")
    assert "d" in [x.split("\x1d")[-1] for x in p.button_data()]      # all spent: Done
    await p.tap_item("b", "6.-online")
    assert "d" not in [x.split("\x1d")[-1] for x in p.button_data()]  # one left: no Done
    await p.tap_item("b", "6.+online")
    await p.tap_button("d")
    await p.send("Please call me on +44 7700 900123 or mail me at amina@example.org")


@pytest.mark.parametrize("lang", ["ar", "so"])
async def test_complete_every_type_in_two_languages(world, db, lang: str) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=424242, language_code=lang)
    await complete_example(p)
    assert "Thank" in p.text or p.buttons(), p.text  # the end, in some language
    await p.tap_button("y")  # wants to hear back
    answers = await stored(db)
    assert answers["welcome"] == ("answered", {"seen": True})
    assert answers["ease"] == ("answered", {"value": 4})
    assert answers["got_help"] == ("answered", {"value": "no"})
    assert answers["barrier"] == ("answered", {"option": "other", "text": "The stairs <b>&</b> no lift"})
    assert answers["channels"] == ("answered", {"options": ["chat"]})
    assert answers["order"] == ("answered", {"order": ["online", "evening", "waiting"]})
    assert answers["spend"] == ("answered", {"coins": {"interpreters": 7, "evening": 0, "online": 3}})
    assert answers["idea"] == ("answered", {"text": "Please call me on [phone] or mail me at [email]"})
    async with db.session() as s:
        r = (await s.scalars(select(Response))).one()
        assert r.language == lang and r.completed_at is not None and r.wants_outcome
        assert r.consent_version and r.invite_id is not None
        groups = {g.dimension_id: (g.groups, g.source) for g in (await s.scalars(select(ResponseGroup)))}
    assert groups["community"][0] == ["somali", "arabic"]
    assert groups["age"] == (["25_64"], "asked") and groups["disability"] == (["no"], "asked")


async def test_rtl_progress_is_isolated(world) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=7, language_code="ar")
    await p.send("/start clinic-access")
    await p.tap_button("y")
    assert "\u20681/3\u2069" in p.text  # group progress, kept left-to-right inside Arabic


async def test_language_picker_when_not_offered(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=8, language_code="de")
    await p.send("/start clinic-access")
    assert "Soomaali" in p.buttons() and "العربية" in p.buttons() and "Українська" in p.buttons()
    await p.tap_item("l", "so")
    await p.tap_button("y")
    async with db.session() as s:
        assert (await s.scalars(select(Response))).one().language == "so"


async def test_skip_back_change_and_show_if(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=9, language_code="en")
    await p.to_first_question()
    await p.tap_item("r", "1.2")
    assert "3/8" in p.text
    await p.tap_button("k")               # Back to the rating
    assert "2/8" in p.text and "✅ 2" in p.buttons()
    await p.tap_item("r", "1.5")          # changed
    await p.tap_item("o", "2.yes")
    await p.tap_item("o", "3.hours")      # barrier hours -> idea will be shown
    await p.tap_item("o", "4.walkin")
    await p.tap_button("d")
    for o in ("online", "evening", "waiting"):
        await p.tap_item("o", f"5.{o}")
    for _ in range(10):
        await p.tap_item("b", "6.+evening")
    await p.tap_button("d")
    assert "voice" in p.text.lower()      # the idea question is shown
    await p.tap_button("s")               # skipped
    answers = await stored(db)
    assert answers["ease"] == ("answered", {"value": 5})
    assert answers["idea"] == ("skipped", None)
    async with db.session() as s:
        g = {x.dimension_id: x.groups for x in (await s.scalars(select(ResponseGroup)))}
    assert g["community"] == ["prefer_not_to_say"]


async def test_skip_hidden_by_show_if_has_no_answer(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=10, language_code="en")
    await p.send("/start clinic-access")
    await p.tap_button("y")
    for item in ("0.latin",):
        await p.tap_item("g", item)
    await p.tap_button("d")
    for item in ("1.under25", "2.no"):
        await p.tap_item("g", item)
    await p.tap_button("c")
    await p.tap_item("r", "1.3")
    await p.tap_item("o", "2.yes")
    await p.tap_button("s")               # barrier skipped -> idea hidden
    await p.tap_item("o", "4.chat")
    await p.tap_button("d")
    for o in ("online", "evening", "waiting"):
        await p.tap_item("o", f"5.{o}")
    for _ in range(10):
        await p.tap_item("b", "6.+online")
    await p.tap_button("d")
    answers = await stored(db)
    assert answers["barrier"] == ("skipped", None) and "idea" not in answers
    async with db.session() as s:
        assert (await s.scalars(select(Response))).one().completed_at is not None


async def test_resume_after_restart_with_a_new_dispatcher(world, db, keys) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=11, language_code="en")
    await p.to_first_question()
    await p.tap_item("r", "1.3")
    old_message = p.message
    # the bot restarts: a new dispatcher, the same database (dialog state is stored there)
    mm2 = MockMessageManager()
    dp2 = build_dispatcher(db, keys, message_manager=mm2, config=BotConfig(dedupe=False))
    p2 = Person(dp2, mm2, bot, user_id=11, language_code="en")
    p2.client.last_update_id = p.client.last_update_id
    await p2.client.click(old_message, __import__("aiogram_dialog.test_tools.keyboard", fromlist=["x"])
                          .InlineButtonDataLocator(r".*\x1do:2\.yes"))
    answers = await stored(db)
    assert answers["got_help"] == ("answered", {"value": "yes"})
    assert "4/" in p2.text  # moved on to the barrier question


async def test_resume_with_lost_dialog_state(world, db, keys) -> None:  # type: ignore[no-untyped-def]
    from bot.models import DialogState

    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=12, language_code="en")
    await p.to_first_question()
    old = p.message
    async with db.session() as s:  # the state store was wiped
        await s.execute(DialogState.__table__.delete())
        await s.commit()
    from aiogram_dialog.test_tools.keyboard import InlineButtonDataLocator

    cb = await p.client.click(old, InlineButtonDataLocator(r".*\x1dr:1\.4"))
    # answered, no crash: an unknown intent may be forged, so the tap itself is not stored;
    # the person is shown the first unanswered question again
    assert cb and "ease" not in await stored(db)
    assert "2/8" in p.text


async def test_campaign_closed_and_unknown(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=13, language_code="en")
    await p.send("/start nope-campaign")
    assert any("could not find" in t for t in bot.sent_texts(13))
    async with db.session() as s:
        c = await s.get(Campaign, "clinic-access")
        c.status = "closed"
        await s.commit()
    forget_cached_campaigns()
    await p.send("/start clinic-access")
    assert any("closed" in t for t in bot.sent_texts(13))
