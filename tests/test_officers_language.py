"""Issue 15, points 1 and 2: people are re-contacted in the language they used; the interface
falls back as `campaign check` says it does."""

from __future__ import annotations

import pytest
from aiogram_dialog.test_tools import MockMessageManager
from sqlalchemy import select

from bot.models import Participant
from bot.runtime.app import BotConfig, build_dispatcher
from dialogs.i18n import tr
from bot.services.broadcasts import InvitationFilters, invitation_message, invitation_recipients, \
    load_candidates, message_language
from tests.admin_world import load_open
from tests.participants import Person, RecordingBot


@pytest.fixture
async def world(db, keys, example_spec):  # type: ignore[no-untyped-def]
    await load_open(db, example_spec)
    mm = MockMessageManager()
    bot = RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm, config=BotConfig(dedupe=False))
    return dp, mm, bot


async def languages(db, keys, *user_ids: int) -> list[str | None]:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return [await s.scalar(select(Participant.language).where(
            Participant.pseudonym == keys.pseudonym(u))) for u in user_ids]


async def test_the_language_a_person_used_is_stored_and_used_for_the_next_campaign(  # type: ignore[no-untyped-def]
        world, db, keys, example_spec) -> None:
    dp, mm, bot = world
    # Telegram says Arabic, Somali, Ukrainian: the campaign offers each, so nobody is asked
    people = [Person(dp, mm, bot, 610_001 + i, language_code=code) for i, code in enumerate(("ar", "so", "uk"))]
    for p in people:
        await p.send("/start clinic-access")
        await p.tap_button("y")  # consent
    assert await languages(db, keys, 610_001, 610_002, 610_003) == ["ar", "so", "uk"]
    # /language changes it, for good
    await people[1].send("/language")
    await people[1].tap_item("l", "fa")
    assert await languages(db, keys, 610_002) == ["fa"]
    # a later campaign in Arabic and English: the invitation goes in each person's language
    later = example_spec.model_copy(update={"id": "later-round", "languages": ["en", "ar", "uk"]})
    campaign = await load_open(db, later)
    async with db.session() as s:
        candidates = await load_candidates(s, campaign.id)
    arabic = invitation_recipients(candidates, InvitationFilters.make("ar"), campaign.languages)
    assert len(arabic) == 1
    by_lang = sorted(message_language(c, campaign.languages) for c in candidates)
    # Persian is not offered: that person reads the campaign's first language
    assert by_lang == ["ar", "en", "uk"]
    assert invitation_message(campaign, "ar", "Bot").text != invitation_message(campaign, "en", "Bot").text


async def test_the_upgrade_gives_people_the_language_they_answered_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from bot.db import Database, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    await upgrade(url, "0003")
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO campaign (id, mode, languages, min_group_size, title, status, "
                                "definition, version, created_at, updated_at) VALUES ('c1', 'assess', "
                                "'[\"en\",\"ar\"]', 10, '{}', 'open', '{}', 1, '2026-01-01', '2026-01-01')"))
        await conn.execute(text("INSERT INTO participant (id, pseudonym, language, allow_invitations, stopped, "
                                "created_at) VALUES (1, 'p1', NULL, 1, 0, '2026-01-01'), "
                                "(2, 'p2', 'so', 1, 0, '2026-01-01'), (3, 'p3', NULL, 1, 0, '2026-01-01')"))
        await conn.execute(text("INSERT INTO response (campaign_id, participant_id, language, started_at, "
                                "wants_outcome) VALUES ('c1', 1, 'ar', '2026-01-02', 0), "
                                "('c1', 2, 'en', '2026-01-02', 0)"))
    await db.dispose()
    await upgrade(url, "head")
    db = Database(url)
    async with db.session() as s:
        rows = dict((await s.execute(select(Participant.id, Participant.language))).all())
    await db.dispose()
    assert rows == {1: "ar", 2: "so", 3: None}


GERMAN_ONLY = """id: verein
mode: coassessment
languages: [de]
title: {de: Unser Verein}
questions:
  - id: q
    type: text
    text: {de: Was sollen wir besser machen?}
"""

URDU_AFTER_ARABIC = GERMAN_ONLY.replace("languages: [de]", "languages: [ar, ur]").replace(
    "title: {de: Unser Verein}", "title: {ar: نادينا, ur: ہمارا کلب}").replace(
    "text: {de: Was sollen wir besser machen?}", "text: {ar: ماذا نحسن؟, ur: ہم کیا بہتر کریں؟}")


def _check(tmp_path, text: str):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "bot.cli", "campaign", "check", str(path)], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)


def test_the_fallback_note_says_what_people_really_see(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    german = _check(tmp_path, GERMAN_ONLY)
    assert german.returncode == 0, german.stderr
    # no catalog for German at all: the consent and buttons come in English, and the note says so
    assert "see those in English (en)" in german.stdout, german.stdout
    assert "see those in de" not in german.stdout
    urdu = _check(tmp_path, URDU_AFTER_ARABIC)
    assert "people who choose it see those in Arabic (ar), the campaign's first language" in urdu.stdout, urdu.stdout
    # `i18n check --campaign` tells the same
    coverage = subprocess.run([sys.executable, "-m", "bot.cli", "i18n", "check", "--campaign",
                               str(tmp_path / "c.yaml")], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert "none: falls back to ar" in coverage.stdout and "so they show in العربية or English" in coverage.stdout, coverage.stdout


async def test_people_see_the_bots_words_as_the_note_says(db, keys) -> None:  # type: ignore[no-untyped-def]
    from bot.campaigns.check import check_text

    # what a German participant really gets: the consent in English, the campaign's own texts in German
    spec = check_text(GERMAN_ONLY, "c.yaml").spec
    await load_open(db, spec)
    mm, bot = MockMessageManager(), RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm, config=BotConfig(dedupe=False))
    p = Person(dp, mm, bot, 620_001, language_code="de")
    await p.send("/start verein")
    assert "Unser Verein" in p.text and "We will ask you a few short questions" in p.text

    spec = check_text(URDU_AFTER_ARABIC, "c.yaml").spec
    await load_open(db, spec)
    p = Person(dp, mm, bot, 620_002, language_code="ur")
    await p.send("/start verein")
    assert "ہمارا کلب" in p.text and "We will ask you" not in p.text  # the consent in Arabic
    await p.send("/language")  # and the language list too
    assert p.text == tr("ar").gettext("Which language would you like to use?"), p.text
