"""Issue 15, points 7 to 10: /admin asks before it closes or makes anything, cuts labels at a
word, and speaks the officer's language for campaign states too."""

from __future__ import annotations

import pytest
from aiogram.methods import SendPhoto
from aiogram_dialog.test_tools import MockMessageManager
from sqlalchemy import select

from bot.models import AuditEvent, Campaign, Invite
from bot.runtime.app import BotConfig, build_dispatcher
from dialogs.i18n import tr
from tests.admin_world import FIRST_USER, Someone, load_open, seed
from tests.participants import Person, RecordingBot

ADMIN = 777_201


@pytest.fixture
async def world(db, keys, example_spec):  # type: ignore[no-untyped-def]
    await load_open(db, example_spec)
    mm = MockMessageManager()
    bot = RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm,
                          config=BotConfig(dedupe=False, admin_ids=frozenset({ADMIN}),
                                           bot_username="CouncilSurveyBot"))
    return dp, mm, bot


async def status(db) -> str:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return (await s.get(Campaign, "clinic-access")).status


async def test_close_now_asks_first_naming_the_campaign_and_who_is_mid_way(world, db, keys) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    await seed(db, keys, "clinic-access", [Someone(FIRST_USER + i, consented_hours_ago=1) for i in range(12)]
               + [Someone(FIRST_USER + 20, consented_hours_ago=1, completed=True)])
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_item("A_c", "clinic-access")
    await admin.tap_button("A_x")
    # nothing closed yet: the question names the campaign and the 12 people mid-way
    assert await status(db) == "open"
    assert "Your say on North Street Health Centre" in admin.text and "12 people" in admin.text, admin.text
    await admin.tap_button("A_n")  # changed my mind
    assert await status(db) == "open"
    await admin.tap_button("A_x")
    await admin.tap_button("A_z")  # close it
    assert await status(db) == "closed"
    assert "The campaign is now closed." in admin.text
    async with db.session() as s:
        assert [e.action for e in (await s.scalars(select(AuditEvent))).all()] == ["close"]


async def test_new_invite_shows_what_will_be_made_and_offers_the_campaigns_groups(world, db) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = world
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_item("A_c", "clinic-access")
    await admin.tap_button("A_i")
    # the example names the campaign's own groups
    assert "community=somali" in admin.text
    await admin.send("somali centre")  # meant: the partner "Somali centre"
    async with db.session() as s:
        assert not (await s.scalars(select(Invite).where(Invite.code == "somali"))).all()
    assert "somali" in admin.text and "centre" in admin.text and "https://t.me/CouncilSurveyBot?start=clinic-access_somali" in admin.text
    labels = admin.buttons()
    assert "Somali" in labels and "Arabic-speaking" in labels, labels
    await admin.tap_button("A_e")  # change it
    await admin.send("somali-centre Somali Centre")
    await admin.tap(next(b for b in admin.buttons() if b == "Somali"))
    assert "✅ Somali" in admin.buttons()
    await admin.tap_button("A_m")  # make it
    async with db.session() as s:
        invite = (await s.scalars(select(Invite).where(Invite.code == "somali-centre"))).one()
        assert not (await s.scalars(select(Invite).where(Invite.code == "somali"))).all()
    assert invite.partner == "Somali Centre" and invite.groups == {"community": ["somali"]}
    assert len([m for m in bot.calls if isinstance(m, SendPhoto)]) == 1


async def test_button_labels_are_cut_at_a_word(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    title = "Tell us how it went at the North Street Health Centre this winter"
    await load_open(db, example_spec.model_copy(update={"title": {lang: title for lang in example_spec.languages}}))
    mm, bot = MockMessageManager(), RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm,
                          config=BotConfig(dedupe=False, admin_ids=frozenset({ADMIN})))
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    label = next(b for b in admin.buttons() if b.startswith("Tell us"))
    head = label.split(" · ")[0]
    assert head.endswith("…"), label
    assert title.startswith(head[:-1].rstrip()) and title[len(head[:-1].rstrip())] == " ", label


@pytest.mark.parametrize("lang", ["uk", "ar"])
async def test_campaign_states_are_translated(world, lang) -> None:  # type: ignore[no-untyped-def]
    from dialogs.admin import STATE_NAMES

    dp, mm, bot = world
    admin = Person(dp, mm, bot, ADMIN, language_code=lang)
    await admin.send("/admin")
    opened = tr(lang).gettext(STATE_NAMES["open"])
    assert opened != "open"
    assert opened in admin.text and opened in " ".join(admin.buttons())
    assert " open," not in admin.text and "· open" not in " ".join(admin.buttons())
