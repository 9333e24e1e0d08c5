"""Campaign files written from docs/campaigns.md alone, as an outsider would: every valid one is
accepted, loads and can be answered to the end in the sandbox; every invalid one is explained
with its line, what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.campaigns.check import check_file, check_text
from bot.campaigns.store import load_campaign
from bot.db import Database
from bot.models import Invite, Participant, Question, Response, ResponseGroup
from bot.pseudonym import pseudonym
from bot.sandbox import Limits
from bot.simulation import Citizen, make_personas
from tests.live import PSEUDONYM_KEY, assert_stored_equals_sent, live_bot, stored_by_person

DATA = Path(__file__).parent / "data" / "campaigns"
VALID = sorted(p.name for p in DATA.glob("*.yaml") if not p.name.startswith("bad-"))

# Each invalid file and exactly what `campaign check` says about it.
INVALID = {
    "bad-show-if-typo.yaml": [
        "bad-show-if-typo.yaml:14: question 'idea': show_if names question 'barier', which does not "
        "exist: did you mean 'barrier'?",
        "bad-show-if-typo.yaml:18: question 'later': show_if names question 'nothing_like_it', which "
        "does not exist (earlier questions: barrier, idea)",
    ],
    "bad-rtl-missing.yaml": [
        "bad-rtl-missing.yaml:4: title: text missing in 'en' (English): add a line 'en: ...'",
        "bad-rtl-missing.yaml:6: question 'q': 'scale' must be less than or equal to 10, not 11",
        "bad-rtl-missing.yaml:6: question 'q': labels in 'ar' must be two texts: [lowest, highest]",
        "bad-rtl-missing.yaml:6: question 'q': labels missing in 'en' (English)",
        "bad-rtl-missing.yaml:6: question 'q': text missing in 'en' (English): add a line 'en: ...'",
    ],
    "bad-dates-and-values.yaml": [
        "bad-dates-and-values.yaml:1: 'Bad_ID' is not a valid campaign id: use 3 to 40 lowercase "
        "letters, digits and -",
        "bad-dates-and-values.yaml:6: 'closes' (2026-01-01 00:00 UTC) must be after 'opens' "
        "(2027-01-01 00:00 UTC)",
        "bad-dates-and-values.yaml:8: question 'q': 'options' does not apply to a yesno question "
        "(only to budget, choice, multi, rank)",
        "bad-dates-and-values.yaml:9: question 'r': 'maybe' is not an option of question 'q' "
        "(options: no, yes)",
    ],
    "bad-groups-invites.yaml": [
        "bad-groups-invites.yaml:6: group dimension 'age', option 'prefer_not_to_say': "
        "'prefer_not_to_say' is reserved (it is offered by itself): choose another id",
        "bad-groups-invites.yaml:8: baseline names group 'old', which is not an option of 'age' "
        "(young, prefer_not_to_say)",
        "bad-groups-invites.yaml:8: the shares for 'age' add up to 1.1; they must add up to 1",
        "bad-groups-invites.yaml:10: invite 'bad code': 'bad code' is not a valid invite code: use 1 "
        "to 20 letters, digits and -",
        "bad-groups-invites.yaml:11: invite 'ok': 'partner' must not be empty",
        "bad-groups-invites.yaml:11: invite 'ok': unknown group dimension 'gender'",
    ],
    "bad-tab.yaml": [
        "bad-tab.yaml:6: a tab is used to indent here: YAML needs spaces. Replace the tab with spaces "
        "(most editors: 'convert indentation to spaces').",
    ],
    "bad-alias.yaml": [
        "bad-alias.yaml:8: this is not valid YAML: found undefined alias 'missing'. An alias (*name) "
        "must come after its anchor (&name), spelled the same.",
    ],
    "bad-type-keys.yaml": [
        "bad-type-keys.yaml:6: question 'q': pick is 3 but there are only 2 options",
        "bad-type-keys.yaml:7: question 'r', option 'other': 'other' is reserved (use 'other: true'): "
        "choose another id",
        "bad-type-keys.yaml:7: question 'r': 'tokens' must be greater than or equal to 1, not 0",
        "bad-type-keys.yaml:8: question 's': a choice question needs 'options' (at least 2)",
        "bad-type-keys.yaml:9: question 't': show_if cannot depend on a rank question ('q')",
        "bad-type-keys.yaml:10: question 'u': 'optional' must be true or false, not 'maybe'",
    ],
    "bad-languages.yaml": [
        "bad-languages.yaml:3: 'xx' is not a language code Babel knows (use codes such as en, ar, so, "
        "uk, fa-AF)",
        "bad-languages.yaml:3: write the language code 'EN' with a lowercase language part ('en'), as "
        "Telegram does",
        "bad-languages.yaml:4: title: 'fr' is not one of the campaign languages (en)",
    ],
    "bad-common-slips.yaml": [
        "bad-common-slips.yaml:1: 'title' is missing: add a line 'title: ...' (see docs/campaigns.md)",
        "bad-common-slips.yaml:2: 'co-assessment' is not allowed here: use 'coassessment', 'codesign' "
        "or 'cocommissioning'",
        "bad-common-slips.yaml:7: share 40 must be between 0 and 1",
        "bad-common-slips.yaml:7: share 60 must be between 0 and 1",
        "bad-common-slips.yaml:7: the shares for 'age' add up to 100; they must add up to 1 (write "
        "shares as fractions: 40% is 0.40)",
        "bad-common-slips.yaml:9: question 'q': 'type' is missing: add a line 'type: ...' with one of "
        "rating, choice, multi, yesno, rank, budget, text, info",
        "bad-common-slips.yaml:10: question 'r': show_if names 'age', which is a group dimension: "
        "show_if can only name an earlier question (groups are compared in the reports)",
        "bad-common-slips.yaml:14: question 's': option #1 must look like {id: ..., text: "
        "{language: ...}}, not 'a'",
        "bad-common-slips.yaml:14: question 's': option #2 must look like {id: ..., text: "
        "{language: ...}}, not 'b'",
    ],
    "bad-text-without-language.yaml": [
        "bad-text-without-language.yaml:4: 'title' must give the text per language, e.g. title: "
        "{en: My title}, not 'My title'",
        "bad-text-without-language.yaml:6: question 'q': 'text' must give the text per language, "
        "e.g. text: {en: Hello there}, not 'Hello there'",
    ],
    "bad-yaml-colon.yaml": [
        "bad-yaml-colon.yaml:4: this is not valid YAML: expected ',' or '}', but got ':'. A text that "
        "contains ': ' must be in quotes, e.g. en: \"Note: bring your card\".",
    ],
    "bad-yaml-two-documents.yaml": [
        "bad-yaml-two-documents.yaml:7: the file goes on after a '---' line with a second document: a "
        "campaign file is one document. Remove the '---' line, or put the rest in its own file.",
    ],
    "bad-yaml-comment.yaml": [
        "bad-yaml-comment.yaml:7: this is not valid YAML: a '{' or '[' opened on this line is never closed. If a text here has "
        "' #' in it, put the text in quotes: ' #' starts a comment.",
    ],
    "bad-yaml-quote.yaml": [
        "bad-yaml-quote.yaml:4: this is not valid YAML: a quote opened here is never closed: add the closing quote at the end "
        "of the text",
    ],
    "bad-yaml-comma.yaml": [
        "bad-yaml-comma.yaml:6: question 'q', option 'a': 'B' has no text: if it is part of the text "
        "before it, put that text in quotes (a ',' inside {...} ends a text), e.g. en: \"A, B\"",
    ],
    "bad-no-questions.yaml": [
        "bad-no-questions.yaml:5: 'questions' is empty: give it a value after the colon "
        "(see docs/campaigns.md)",
    ],
}


def test_every_invalid_file_has_its_expected_messages() -> None:
    assert sorted(INVALID) == sorted(p.name for p in DATA.glob("bad-*.yaml"))


@pytest.mark.parametrize("name", VALID)
def test_valid_file_is_accepted(name: str) -> None:
    result = check_file(DATA / name)
    assert result.ok, [p.render(name) for p in result.problems]


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_file_is_explained(name: str) -> None:
    result = check_file(DATA / name)
    assert not result.ok
    assert [p.render(name) for p in result.problems] == INVALID[name]


def _run(*args: str, **env: str):  # type: ignore[no-untyped-def]
    import subprocess

    return subprocess.run([sys.executable, "-m", "bot.cli.__main__", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "250", **env})


def test_cli_check_counts_in_plain_words() -> None:
    proc = _run("campaign", "check", str(DATA / "minimal.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert ("minimal.yaml: OK — campaign 'min', 1 question, 0 group dimensions, 0 invites, "
            "1 language (en); about 1 minute for a participant, as the consent screen says") in proc.stdout
    bad = _run("campaign", "check", str(DATA / "bad-tab.yaml"))
    assert bad.returncode == 1 and "1 problem in " in bad.stderr and "Traceback" not in bad.stderr


def test_question_mark_in_braces_is_part_of_the_text() -> None:
    """The documented `{en: How easy was it to get an appointment?, ...}` is the question."""
    spec = check_file(DATA / "minimal.yaml").spec
    assert spec is not None and spec.questions[0].text == {"en": "Anything to tell us?"}


def test_bare_words_are_kept_as_written_where_ids_and_texts_belong() -> None:
    spec = check_file(DATA / "bare-yes-no.yaml").spec
    assert spec is not None
    assert spec.languages == ["en", "no"]
    assert spec.title == {"en": "Yes or no", "no": "Ja eller nei"}
    q2, q3 = spec.question("q2"), spec.question("q3")
    assert q2.option_ids == ["yes", "no", "3"]
    assert q2.options and q2.options[2].text == {"en": "3", "no": "3"}
    assert q3.optional is True and q3.show_if == {"q1": ["no"], "q2": ["yes", 3]}


def test_yaml_merge_keys_and_block_texts() -> None:
    spec = check_file(DATA / "yaml-features.yaml").spec
    assert spec is not None
    q1, q2 = spec.question("q_1"), spec.question("q_2")
    assert (q2.type, q2.text, q2.option_ids, q2.optional) == (q1.type, q1.text, q1.option_ids, True)
    assert spec.question("q_4").option_ids == ["0_5", "25_64"]
    assert spec.title["en"] == "Folded title on two lines"
    assert spec.intro and spec.intro["en"].endswith("a # not a comment.\n")
    assert spec.min_group_size == 5 and spec.question("007").rating_scale == 4


def test_a_merge_of_something_else_is_explained() -> None:
    text = ("id: abc\nmode: codesign\nlanguages: [en]\ntitle: {en: t}\nquestions:\n"
            "  - <<: 5\n    id: q\n    type: text\n    text: {en: hi}\n")
    result = check_text(text, "c.yaml")
    assert [p.render("c.yaml") for p in result.problems] == [
        "c.yaml:6: '<<:' must be followed by an anchor of a set of 'key: value' lines (such as "
        "<<: *base) or a list of them"]


def test_dates_with_and_without_zone() -> None:
    spec = check_file(DATA / "every-type-alone.yaml").spec
    assert spec is not None and spec.opens and spec.closes
    assert spec.opens.isoformat() == "2026-01-01T00:00:00+00:00"
    assert spec.closes.utcoffset() is not None and spec.closes.hour == 18


@pytest.mark.parametrize("name", VALID)
async def test_valid_file_loads_twice(name: str, tmp_path: Path) -> None:
    spec = check_file(DATA / name).spec
    assert spec is not None
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    await db.upgrade()
    try:
        for version in (1, 2):
            async with db.session() as s:
                c, created = await load_campaign(s, spec)
                await s.commit()
                assert (c.version, created) == (version, version == 1)
        async with db.session() as s:
            ids = (await s.scalars(select(Question.id).where(Question.campaign_id == spec.id)
                                   .order_by(Question.position))).all()
            assert list(ids) == [q.id for q in spec.questions]
            codes = (await s.scalars(select(Invite.code).where(Invite.campaign_id == spec.id))).all()
            assert sorted(codes) == sorted(i.code for i in spec.invites)
    finally:
        await db.dispose()


class PatientCitizen(Citizen):
    """Waits for the bot to be quiet a little longer: on 2 busy cores the bot's 'remove the old
    keyboard' and 'send the next question' can be further apart than the default."""

    IDLE = 0.4


# at-the-limits.yaml is checked and loaded above; its 100 coins over 20 options take minutes to tap
E2E = [n for n in VALID if n != "at-the-limits.yaml"]


@pytest.mark.parametrize("name", E2E)
async def test_valid_file_is_answered_to_the_end(name: str, tmp_path: Path) -> None:
    spec = check_file(DATA / name).spec
    assert spec is not None
    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    personas = make_personas(spec, len(spec.languages), seed=11)
    for i, p in enumerate(personas):
        p.language = spec.languages[i % len(spec.languages)]
        p.stop_after, p.blocks, p.voice_rate = None, False, 0.3
    limits = Limits(global_per_second=None, per_chat_per_second=None)
    async with live_bot(url, spec, tmp_path, limits=limits) as live:
        results = await asyncio.gather(*(PatientCitizen(live.sandbox.client, spec, p).run()
                                         for p in personas))
    stored = await stored_by_person(url, None)
    assert_stored_equals_sent(results, stored, lambda uid: pseudonym(PSEUDONYM_KEY.encode(), uid))
    assert all(r.finished for r in results), [(r.persona.language, r.error) for r in results]


async def test_removed_invite_stops_admitting_and_keeps_its_people(tmp_path: Path) -> None:
    spec = check_file(DATA / "groups-and-invites.yaml").spec
    assert spec is not None
    without = spec.model_copy(update={"invites": [i for i in spec.invites if i.code != "school"]})
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    await db.upgrade()
    try:
        async with db.session() as s:
            await load_campaign(s, spec)
            school = await s.scalar(select(Invite).where(Invite.code == "school"))
            assert school is not None
            person = Participant(pseudonym="came-through-the-school")
            s.add(person)
            await s.flush()
            s.add(Response(campaign_id=spec.id, participant_id=person.id, language="en", invite_id=school.id))
            await s.commit()
            school_id = school.id
        async with db.session() as s:
            await load_campaign(s, without)
            await s.commit()
        async with db.session() as s:
            # the link's code no longer finds the invite; the person who came through it keeps it
            assert await s.scalar(select(Invite).where(Invite.campaign_id == spec.id,
                                                       Invite.code == "school")) is None
            kept = await s.get(Invite, school_id)
            assert kept is not None and kept.partner == "Eastside School" and kept.groups == {"age": ["13_17"]}
            assert (await s.scalar(select(Response.invite_id))) == school_id
        async with db.session() as s:
            await load_campaign(s, spec)
            await s.commit()
        async with db.session() as s:
            back = await s.scalar(select(Invite).where(Invite.code == "school"))
            assert back is not None and back.id == school_id
    finally:
        await db.dispose()


async def test_invites_made_outside_the_file_are_not_retired(tmp_path: Path) -> None:
    spec = check_file(DATA / "groups-and-invites.yaml").spec
    assert spec is not None
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    await db.upgrade()
    try:
        async with db.session() as s:
            await load_campaign(s, spec)
            s.add(Invite(campaign_id=spec.id, code="poster", partner="Made by hand", groups={}))
            await s.commit()
        async with db.session() as s:
            await load_campaign(s, spec)
            await s.commit()
        async with db.session() as s:
            codes = set((await s.scalars(select(Invite.code))).all())
            assert codes == {"Mosque-2027", "school", "2027", "poster"}
    finally:
        await db.dispose()


def test_cli_show_lists_invite_links(tmp_path: Path) -> None:
    env = {"COASSESS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db",
           "COASSESS_BOT_USERNAME": "CouncilAskBot"}
    full = DATA / "groups-and-invites.yaml"
    assert _run("campaign", "load", str(full), **env).returncode == 0
    reduced = tmp_path / "reduced.yaml"
    reduced.write_text("".join(line for line in full.read_text(encoding="utf-8").splitlines(True)
                               if "code: school" not in line), encoding="utf-8")
    assert _run("campaign", "load", str(reduced), **env).returncode == 0
    proc = _run("campaign", "show", "youth-2027", **env, COLUMNS="80")  # whole links at 80 columns
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 questions, 2 group dimensions, 3 invites" in out
    assert "https://t.me/CouncilAskBot?start=youth-2027_Mosque-2027\n" in out
    assert "https://t.me/CouncilAskBot?start=youth-2027_2027\n" in out
    assert "https://t.me/CouncilAskBot?start=youth-2027\n" in out
    assert "removed from the campaign file" in out and "start=youth-2027_school" not in out


async def test_invite_links_in_the_chat_after_one_is_removed(tmp_path: Path) -> None:
    """Through the sandbox: a mixed-case invite code brings its partner and preset groups; the
    link of an invite taken out of the file lets the person answer, counted for no partner."""
    spec = check_file(DATA / "groups-and-invites.yaml").spec
    assert spec is not None
    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    db = Database(url)
    await db.upgrade()
    async with db.session() as s:
        await load_campaign(s, spec)  # 'school' is in the first file ...
        await s.commit()
    await db.dispose()
    without = spec.model_copy(update={"invites": [i for i in spec.invites if i.code != "school"]})
    personas = make_personas(without, 2, seed=3)
    for p, code in zip(personas, ["Mosque-2027", "school"], strict=True):
        p.language, p.invite, p.stop_after, p.blocks, p.skip_rate = "en", code, None, False, 0.0
        p.groups = {"age": ["18_24"], "lang_home": ["so", "ar"]}
    limits = Limits(global_per_second=None, per_chat_per_second=None)
    async with live_bot(url, without, tmp_path, limits=limits) as live:  # ... and not in this one
        results = [await PatientCitizen(live.sandbox.client, without, p).run() for p in personas]
    assert all(r.error is None and r.finished for r in results), [r.error for r in results]
    db = Database(url)
    try:
        async with db.session() as s:
            rows = (await s.execute(select(Response.id, Invite.code, Invite.partner)
                                    .outerjoin(Invite, Invite.id == Response.invite_id)
                                    .order_by(Response.id))).all()
            groups = {(rid, dim): (g, src) for rid, dim, g, src in (await s.execute(
                select(ResponseGroup.response_id, ResponseGroup.dimension_id, ResponseGroup.groups,
                       ResponseGroup.source))).all()}
    finally:
        await db.dispose()
    assert [(code, partner) for _, code, partner in rows] == [("Mosque-2027", "Al-Huda Mosque"), (None, None)]
    mosque, school = rows[0][0], rows[1][0]
    assert groups[(mosque, "lang_home")] == (["so", "ar"], "invite")
    assert groups[(school, "age")] == (["18_24"], "asked")  # the retired invite's preset is not used


def test_translation_reached_through_a_merge_is_explained(tmp_path: Path) -> None:
    from bot.campaigns.translations import TranslationError, export_translations, import_translations

    campaign = tmp_path / "yaml-features.yaml"
    original = (DATA / "yaml-features.yaml").read_text(encoding="utf-8")
    campaign.write_text(original, encoding="utf-8")
    export_translations(campaign, "po", tmp_path / "po")
    po = tmp_path / "po" / "uk.po"
    text = po.read_text(encoding="utf-8")
    text = text.replace('msgstr "Виберіть: що?"', 'msgstr "Нове: що?"', 1)
    text = text.replace('msgstr "0,5"', 'msgstr "пів"')
    po.write_text(text, encoding="utf-8")
    with pytest.raises(TranslationError) as refused:
        import_translations(campaign, po, write=True)
    # the line of the entry's msgid (the export's comments above it may grow)
    line = text.splitlines().index('msgctxt "questions.q_1.text"') + 2
    assert refused.value.problems == [
        f"uk.po line {line}: cannot write the 'uk' text of 'questions.q_1.text': it uses a YAML anchor, "
        "alias or tag; change it in the file by hand"]
    assert campaign.read_text(encoding="utf-8") == original
    po.write_text(text.replace('msgstr "Нове: що?"', 'msgstr "Виберіть: що?"'), encoding="utf-8")
    import_translations(campaign, po, write=True)
    assert campaign.read_text(encoding="utf-8") == original.replace('uk: "0,5"', "uk: пів")


def test_cli_check_notes_languages_without_interface_translation() -> None:
    proc = _run("campaign", "check", str(DATA / "rtl-many-languages.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert ("note: the bot's own words (consent, buttons, help) are not translated into ur (Urdu), "
            "he (Hebrew): people who choose them see those in Arabic (ar), the campaign's first language.") in proc.stdout
    assert "note:" not in _run("campaign", "check", str(DATA / "minimal.yaml")).stdout


async def test_refused_reload_counts_answers_in_plain_words(tmp_path: Path) -> None:
    from bot.campaigns.store import CampaignChangeRefused
    from bot.models import Answer

    spec = check_file(DATA / "bare-yes-no.yaml").spec
    assert spec is not None
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    await db.upgrade()
    try:
        async with db.session() as s:
            await load_campaign(s, spec)
            person = Participant(pseudonym="one-person")
            s.add(person)
            await s.flush()
            response = Response(campaign_id=spec.id, participant_id=person.id, language="no")
            s.add(response)
            await s.flush()
            s.add(Answer(response_id=response.id, question_id="q2", status="answered", value={"option": "3"}))
            await s.commit()
        changed = spec.model_copy(update={"questions": [spec.question("q1"), spec.question("q3")]})
        async with db.session() as s:
            with pytest.raises(CampaignChangeRefused) as refused:
                await load_campaign(s, changed)
        assert "question 'q2' has 1 answer and cannot be removed" in str(refused.value)
    finally:
        await db.dispose()


def test_a_folder_instead_of_a_file_is_explained(tmp_path: Path) -> None:
    result = check_file(tmp_path)
    assert [p.message for p in result.problems] == [
        f"{tmp_path} is a folder: give the campaign file itself, e.g. {tmp_path}/campaign.yaml"]


def test_cli_check_notes_a_closing_date_that_has_passed(tmp_path: Path) -> None:
    past = tmp_path / "past.yaml"
    past.write_text("id: past\nmode: codesign\nlanguages: [en]\ntitle: {en: T}\nopens: 2025-01-01\n"
                    "closes: 2025-06-01\nquestions:\n  - {id: q, type: text, text: {en: Hi}}\n", encoding="utf-8")
    proc = _run("campaign", "check", str(past))
    assert proc.returncode == 0, proc.stderr
    assert ("note: 'closes' (2025-06-01 00:00 UTC) has passed: once loaded, nobody new can start this "
            "campaign.") in proc.stdout


async def test_show_if_chain_in_the_chat(tmp_path: Path) -> None:
    """Back to the first question and a different answer: the chain below it is not asked, its
    answers are removed, and the progress count follows."""
    spec = check_file(DATA / "show-if-chain.yaml").spec
    assert spec is not None
    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    limits = Limits(global_per_second=None, per_chat_per_second=None)
    seen: list[tuple[str, list[str]]] = []
    async with live_bot(url, spec, tmp_path, limits=limits) as live:
        client, uid = live.sandbox.client, 910_000_001
        await client.create_user(uid, first_name="Chain", language_code="en")
        message: dict = {}

        async def after(sent) -> None:  # type: ignore[no-untyped-def]
            nonlocal message
            reply = await client.wait_for_bot(uid, after=sent, timeout=20, idle=0.4)
            message = reply.last or message
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            seen.append((message["text"].split("\n")[0], [b["text"] for row in rows for b in row]))

        async def tap(label: str) -> None:
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            data = next(b["callback_data"] for row in rows for b in row if b["text"] == label)
            await after(await client.tap(uid, message["message_id"], data=data))

        await after(await client.send_command(uid, "start", "chain"))
        await tap("Yes, I agree")
        await tap("Yes")
        await tap("X")
        await after(await client.send_text(uid, "some text"))
        for _ in range(3):
            await tap("Back")
        await tap("No")
        await tap("2")
    # b and c count while a is unanswered, so the total never grows (not 1/2, then 2/3)
    assert [head for head, _ in seen[1:7]] == ["1/4", "2/4", "3/4", "4/4", "3/4", "2/4"]
    assert seen[7] == ("1/4", ["✅ Yes", "No", "🔊"])  # 🔊: listen to the question (issue 17)
    assert seen[8][0] == "2/2"  # only d is left after a = no
    stored = await stored_by_person(url, None)
    assert list(stored.values()) == [{"a": {"value": "no"}, "d": {"value": 2}}]
