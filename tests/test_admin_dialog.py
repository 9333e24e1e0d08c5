"""/admin in the chat, clicked through with aiogram-dialog's test tools, on both backends."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from aiogram.methods import AnswerCallbackQuery, SendMessage, SendPhoto
from aiogram_dialog.test_tools import MockMessageManager
from sqlalchemy import select

from bot.models import AuditEvent, Campaign, Delivery, Invite
from bot.runtime.app import BotConfig, build_dispatcher
from analysis.disclosure import MAX_NOISE
from bot.services.participation import protect_participation
from dialogs.admin import parse_invite_line
from tests.admin_world import FIRST_USER, Someone, load_open, seed
from tests.participants import Person, RecordingBot

ADMIN, OTHER = 777_001, 777_002


@pytest.fixture
async def world(db, keys, example_spec):  # type: ignore[no-untyped-def]
    await load_open(db, example_spec)
    mm = MockMessageManager()
    bot = RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm,
                          config=BotConfig(dedupe=False, admin_ids=frozenset({ADMIN}),
                                           bot_username="CouncilSurveyBot"))
    return dp, mm, bot


def audit_actions(events: list[AuditEvent]) -> list[tuple[str, str]]:
    return [(e.actor[:6], e.action) for e in events]


async def test_admin_opens_closes_and_sees_participation(world, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    crowd = [Someone(FIRST_USER + i, consented_hours_ago=1,
                     groups={"community": ["somali"] if i < 12 else ["arabic"], "age": ["25_64"]})
             for i in range(15)]
    await seed(db, keys, "clinic-access", crowd)
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    assert "Campaigns" in admin.text and "clinic-access" in admin.text
    # counts are perturbed by at most MAX_NOISE (cell key method); a zero identifies nobody
    assert near(r"(\d+) taking part, 0 finished", admin.text, 15)
    await admin.tap_item("A_c", "clinic-access")
    text = admin.text
    total = near(r"Agreed to take part: (\d+)", text, 15)
    # community is multi-choice: everyone minus Somali would single out the other 3 people, so
    # the Somali row is hidden with them (issue 14, point 1)
    assert "• Somali: c · population 10%" in text
    assert "• Arabic-speaking: &lt;10" in text          # 3 people: hidden
    # everyone is 25 to 64: the other age groups and "not said" are zeros of people, shown as
    # the report shows them (nobody to single out), so 15 can be shown too
    assert "• Under 25: 0 (0%) · population 30%" in text and "• 65 or older: 0 (0%)" in text
    assert near(r"• 25 to 64: (\d+) \(100%\) · population 52%", text, 15) == total  # the same people
    assert "• not said: 0 (0%)" in text
    await admin.tap_button("A_x")
    await admin.tap_button("A_z")  # the confirmation
    assert "The campaign is now closed." in admin.text
    await admin.tap_button("A_o")
    assert "The campaign is now open." in admin.text
    async with db.session() as s:
        assert (await s.get(Campaign, "clinic-access")).status == "open"
        events = (await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    assert audit_actions(events) == [("admin:", "close"), ("admin:", "open")]
    assert events[0].actor == keys.admin(ADMIN) and str(ADMIN) not in repr([e.details for e in events])


async def test_admin_creates_an_invite_and_gets_the_qr_photo(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_item("A_c", "clinic-access")
    await admin.tap_button("A_i")
    await admin.send("noor")  # no partner name
    assert "code and the partner's name" in admin.text
    await admin.send("noor Al-Noor <Mosque> community=klingon")
    assert "'klingon' is not a group of 'community'" in admin.text
    await admin.send("noor Al-Noor <Mosque> community=arabic")
    assert "Partner: Al-Noor &lt;Mosque&gt;" in admin.text  # shown first, made on "Make it"
    await admin.tap_button("A_m")
    photos = [m for m in bot.calls if isinstance(m, SendPhoto)]
    assert len(photos) == 1 and int(photos[0].chat_id) == ADMIN
    assert "https://t.me/CouncilSurveyBot?start=clinic-access_noor" in photos[0].caption
    assert "Al-Noor &lt;Mosque&gt;" in photos[0].caption
    assert "Invite noor is ready" in admin.text
    async with db.session() as s:
        invite = (await s.scalars(select(Invite).where(Invite.code == "noor"))).one()
        event = (await s.scalars(select(AuditEvent))).one()
    assert invite.groups == {"community": ["arabic"]} and event.action == "invite"


async def test_broadcast_after_a_confirmation_runs_in_the_background(world, db, keys) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    await seed(db, keys, "clinic-access", [Someone(FIRST_USER + i, ("en", "ar")[i % 2]) for i in range(3)]
               + [Someone(FIRST_USER + 9, "en", stopped=True)])
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_item("A_c", "clinic-access")
    await admin.tap_button("A_b")
    # three people: as in `coassess broadcast --dry-run`, not how many, only that it is a few
    assert "will go to &lt;10 people (en &lt;10, ar &lt;10)" in admin.text
    await admin.tap_button("A_y")
    assert "Sending has started" in admin.text
    for _ in range(200):
        if any(isinstance(m, SendMessage) and int(m.chat_id) == ADMIN for m in bot.calls):
            break
        await asyncio.sleep(0.02)
    to_participants = [m for m in bot.calls if isinstance(m, SendMessage) and int(m.chat_id) != ADMIN]
    assert sorted(int(m.chat_id) for m in to_participants) == [FIRST_USER, FIRST_USER + 1, FIRST_USER + 2]
    done = [m.text for m in bot.calls if isinstance(m, SendMessage) and int(m.chat_id) == ADMIN]
    assert done and "Sent: 3" in done[-1]
    async with db.session() as s:
        assert len((await s.scalars(select(Delivery))).all()) == 3
        actors = {e.actor for e in (await s.scalars(select(AuditEvent))).all()}
    assert actors == {keys.admin(ADMIN)}


async def test_non_admins_get_the_participant_experience(world, db, caplog) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_item("A_c", "clinic-access")
    admin_close = next(d for d in admin.button_data() if d.endswith("\x1dA_x"))

    other = Person(dp, mm, bot, OTHER, language_code="en")
    await other.send("/admin")
    assert not [m for m in mm.sent_messages if m.chat.id == OTHER]   # no admin dialog
    assert "/start" in bot.sent_texts(OTHER)[-1]                     # the participant's help

    await other.send("/start clinic-access")                         # an ordinary survey
    own_intent = other.button_data()[0].split("\x1d")[0]
    caplog.set_level(logging.INFO)
    for forged in (admin_close, f"{own_intent}\x1dA_x", "A_o"):
        cb_id = await other.raw_callback(forged)
        answers = [m for m in bot.calls if isinstance(m, AnswerCallbackQuery) and m.callback_query_id == cb_id]
        assert answers and answers[0].text == "This button is not for you."
    async with db.session() as s:
        assert (await s.get(Campaign, "clinic-access")).status == "open"
        assert not (await s.scalars(select(AuditEvent))).all()
    refused = [r for r in caplog.records if r.getMessage() == "refused admin callback from a non-admin"]
    assert len(refused) == 3
    assert not any(re.search(rf"\b{OTHER}\b", r.getMessage()) for r in caplog.records)


async def test_campaign_list_hides_small_counts_as_the_campaigns_page_does(world, db, keys) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    await seed(db, keys, "clinic-access", [
        Someone(FIRST_USER, consented_hours_ago=1, completed=True, groups={"community": ["somali"]}),
        Someone(FIRST_USER + 1, consented_hours_ago=1, completed=True, groups={"community": ["somali"]}),
    ])
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    assert "open, &lt;10 taking part, &lt;10 finished" in admin.text
    assert not re.search(r"\b2 (taking part|finished)", admin.text)
    await admin.tap_item("A_c", "clinic-access")
    assert "Agreed to take part: &lt;10" in admin.text
    assert "• Somali: &lt;10" in admin.text
    assert "• Arabic-speaking: 0 · population 15%" in admin.text and "• not said: 0\n" in admin.text


KEYS = {i: (i * 2_654_435_761) % 2 ** 31 for i in range(100)}  # record keys, fixed for the test


def near(pattern: str, text: str, true: int) -> int:
    """The figure `pattern` finds in `text`, checked to be the true count give or take MAX_NOISE."""
    found = re.search(pattern, text)
    assert found, (pattern, text[:3000])
    n = int(found.group(1))
    assert abs(n - true) <= MAX_NOISE and n >= 10, (pattern, n, true)
    return n


def test_invite_line_parsing() -> None:
    assert parse_invite_line("lib Central Library") == ("lib", "Central Library", [])
    assert parse_invite_line(" noor  Al-Noor Mosque community=arabic age=over64 ") == (
        "noor", "Al-Noor Mosque", ["community=arabic", "age=over64"])
    with pytest.raises(ValueError):
        parse_invite_line("lib")


def test_participation_hides_small_and_derivable_counts(example_spec) -> None:  # type: ignore[no-untyped-def]
    # age is one choice: 20 + 4 + 11 + 10 not said = 45. Hiding the 4 alone would not do
    # (45 - 20 - 11 - 10), so a second count is hidden too.
    ages = ["under25"] * 20 + ["25_64"] * 4 + ["over64"] * 11
    chosen = {"age": {i: [a] for i, a in enumerate(ages)}}
    part = protect_participation(example_spec, 45, chosen, "en", keys=KEYS)
    shown = {c.label: c.shown for c in dict(part.dimensions)["How old are you?"]}
    assert shown["25 to 64"] == "<10"
    assert list(shown.values()).count("c") >= 1 or part.total_shown == "c"


def test_participation_shows_zeros_and_protects_who_finished(example_spec) -> None:  # type: ignore[no-untyped-def]
    # 12 agreed, all 25 to 64; 11 finished: the one who did not is not shown, only implied
    chosen = {"age": {i: ["25_64"] for i in range(12)}}
    keys = {i: KEYS[i] for i in range(12)}
    part = protect_participation(example_spec, 12, chosen, "en", finished=11, keys=keys,
                                 finished_key=sum(KEYS[i] for i in range(11)))
    shown = {c.label: c.shown for c in dict(part.dimensions)["How old are you?"]}
    total = part.total_shown
    assert shown == {"Under 25": "0", "25 to 64": total, "65 or older": "0", "": "0"}  # "" is not said
    assert abs(int(total) - 12) <= MAX_NOISE and int(total) >= 10
    assert abs(int(part.finished_shown) - 11) <= MAX_NOISE and int(part.finished_shown) >= 10
    few = protect_participation(example_spec, 12, chosen, "en", finished=3, keys=keys, finished_key=KEYS[0])
    assert few.finished_shown == "<10" and few.total_shown == total
    nobody = protect_participation(example_spec, 0, {}, "en", finished=0)
    assert (nobody.total_shown, nobody.finished_shown) == ("0", "0")
