"""Every word in the participant's own language: complete catalogs, CLDR plurals, the fallback
chain, right-to-left isolation, and every screen in every shipped language within Telegram's limits.

The sweep through every screen in all 14 languages runs on SQLite only: what it checks (texts,
labels, limits) does not depend on the database, and the conversations in Arabic and Somali run
on both backends.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import SendMessage
from aiogram.types import Sticker
from aiogram_dialog.test_tools import MockMessageManager
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from bot.campaigns.check import check_text
from bot.campaigns.schema import MAX_OPTION_TEXT, CampaignSpec, Question
from bot.campaigns.store import load_campaign
from bot.db import Database
from bot.models import Campaign
from bot.runtime.app import BotConfig, build_dispatcher
from dialogs import i18n
from dialogs.commands import command_descriptions, help_text
from dialogs.context import forget_cached_campaigns
from dialogs.i18n import FSI, MAX_BUTTON_LABEL, PDI, language_name, tr
from locales import DOMAIN, LOCALES_DIR, available
from locales.coverage import ROOT, check_catalog, placeholders, source_messages
from locales.extract import extract_python
from tests.participants import Person, RecordingBot
from tests.test_dialog_limits import visible_length, worst_case_yaml
from tests.test_dialog_survey import complete_example

SHIPPED = ["en", "ar", "fa", "ps", "uk", "ru", "es", "fr", "pt", "so", "ti", "tr", "pl", "ro"]
RTL = {"ar", "fa", "ps"}
# msgids the bot puts on buttons (the rest of its buttons carry campaign texts or numbers)
BUTTONS = ["Back", "Skip", "Done", "Undo", "Continue", "Yes", "No", "Something else…", "Prefer not to say",
           "Yes, I agree", "Not now", "Yes, tell me", "No, thanks", "Erase everything", "Cancel",
           "Take part", "Carry on"]
SCRIPT = {"ar": "\u0600-\u06ff", "fa": "\u0600-\u06ff", "ps": "\u0600-\u06ff", "uk": "\u0400-\u04ff",
          "ru": "\u0400-\u04ff", "ti": "\u1200-\u137f"}
RAW_PLACEHOLDER = re.compile(r"\{[a-z_]*\}")
CHECK = "✅ "
TELEGRAM_TEXT = 4096
TELEGRAM_CALLBACK = 64
TELEGRAM_COMMAND_DESCRIPTION = 256

MESSAGES = source_messages()


def catalog(lang: str):  # type: ignore[no-untyped-def]
    with (LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def translations(lang: str) -> Iterator[tuple[str, list[str]]]:
    """(msgid, every translated form) for each message of `lang`'s catalog."""
    for m in catalog(lang):
        if m.id:
            msgid = m.id if isinstance(m.id, str) else m.id[0]
            yield msgid, list(m.string) if isinstance(m.string, (list, tuple)) else [m.string]


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with its `{name}` or `%(name)s` fields filled, as the code does."""
    if "%(" in text:
        return text % values
    return text.format(**values) if "{" in text else text


def leaked_english(lang: str) -> list[str]:
    """English msgids that, in `lang`, read differently: they must never be shown to its speakers."""
    if lang == "en":
        return []
    return [msgid for msgid, forms in translations(lang) if len(msgid) >= 12 and msgid not in forms]


# --------------------------------------------------------------------------- the catalogs

def test_all_fourteen_languages_ship_a_catalog() -> None:
    assert set(SHIPPED) <= set(available())


@pytest.mark.parametrize("lang", SHIPPED)
def test_catalog_is_complete(lang: str) -> None:
    c = check_catalog(lang, MESSAGES)  # the source is extracted once, for every language
    assert not c.missing_catalog
    assert not c.untranslated, f"{lang}: untranslated {c.untranslated} (translate them, then make catalogs)"
    assert not c.fuzzy, f"{lang}: fuzzy {c.fuzzy}"
    assert not c.placeholder_mismatches, f"{lang}: placeholders differ {c.placeholder_mismatches}"
    assert c.translated == c.total == len(MESSAGES)


@pytest.mark.parametrize("lang", SHIPPED)
def test_every_form_keeps_exactly_the_placeholders_of_its_source(lang: str) -> None:
    cat = catalog(lang)
    assert cat.num_plurals == get_plural(lang).num_plurals, f"{lang}: Plural-Forms is not Babel's"
    for m in cat:
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        forms = [m.string] if isinstance(m.string, str) else list(m.string)
        if not isinstance(m.id, str):
            assert len(forms) == cat.num_plurals and all(forms), (lang, m.id)
        source = set().union(*(placeholders(x) or {} for x in ids))
        for form in forms:
            got = placeholders(form)
            assert got is not None and set(got) == source, (lang, m.id, form)
            assert "X" in fill(form, {name.strip("%()"): "X" for name in source}) or not source


def test_extraction_finds_calls_inside_f_strings_and_skips_variables() -> None:
    source = (b'x = f"<b>{_e(_(\'Campaigns\'))}</b>"\n'
              b't.ngettext("{n} coin left", "{n} coins left", n)\n'
              b'_(HINTS[key])\n'
              b'_("Say " "hello")\n')
    found = [(line, name, args) for line, name, args, _ in
             extract_python(io.BytesIO(source), {"_", "ngettext"}, [], {})]
    assert found == [(1, "_", "Campaigns"), (2, "ngettext", ("{n} coin left", "{n} coins left", None)),
                     (3, "_", None), (4, "_", "Say hello")]
    method_map, _ = parse_mapping_cfg((ROOT / "babel.cfg").open())
    assert method_map == [("**.py", "locales.extract.extract_python")]  # what make catalogs uses


@pytest.mark.parametrize("lang", SHIPPED)
def test_button_labels_and_command_descriptions_fit(lang: str) -> None:
    forms = dict(translations(lang))
    for msgid in BUTTONS:
        if msgid in forms:  # invitation buttons exist once the broadcasts feature is there
            for label in forms[msgid]:
                assert 1 <= len(label) <= MAX_BUTTON_LABEL, (lang, msgid, label)
    for command, description in command_descriptions(tr(lang)):
        assert 1 <= len(description) <= TELEGRAM_COMMAND_DESCRIPTION, (lang, command)


@pytest.mark.parametrize("lang", SHIPPED)
def test_every_message_renders_without_a_raw_placeholder(lang: str) -> None:
    t = tr(lang)
    values = {"n": t.number(2001), "max": t.number(2000), "who": t.isolate("North Street Health Centre"),
              "answer": t.isolate("an answer")}
    for msgid in MESSAGES:
        source = msgid if isinstance(msgid, str) else msgid[0] + msgid[1]
        sample = values | {name.strip("%()"): "X" for name in placeholders(source) or {}
                           if name.strip("%()") not in values}
        if isinstance(msgid, tuple):
            texts = [fill(t.ngettext(msgid[0], msgid[1], n), sample | {"n": t.number(n)})
                     for n in (0, 1, 2, 3, 5, 11, 21, 100)]
        else:
            texts = [fill(t.gettext(msgid), sample)]
        for text in texts:
            assert not RAW_PLACEHOLDER.search(text) and "%(" not in text, (lang, msgid, text)
            assert len(text) <= 600, (lang, msgid, text)


# --------------------------------------------------------------------------- plurals and numbers

@pytest.mark.parametrize(("lang", "counts"), [
    ("en", {1: "1 coin left", 0: "0 coins left", 7: "7 coins left"}),
    ("ru", {1: "1 монета", 21: "21 монета", 2: "2 монеты", 24: "24 монеты", 5: "5 монет", 11: "11 монет"}),
    ("uk", {1: "1 монета", 3: "3 монети", 12: "12 монет"}),
    ("pl", {1: "1 moneta", 3: "3 monety", 5: "5 monet", 22: "22 monety", 12: "12 monet"}),
    ("ro", {1: "1 monedă", 2: "2 monede", 19: "19 monede", 20: "20 de monede"}),
    ("fr", {0: "0 pièce", 1: "1 pièce", 2: "2 pièces"}),
    ("es", {1: "1 moneda", 2: "2 monedas"}),
    ("ar", {2: "عملتان", 3: "عملات", 10: "عملات", 11: "عملة", 100: "عملة"}),
])
def test_plurals_follow_cldr(lang: str, counts: dict[int, str]) -> None:
    t = tr(lang)
    for n, expected in counts.items():
        text = t.ngettext("{n} coin left", "{n} coins left", n).format(n=t.number(n))
        assert expected in text.replace(FSI, "").replace(PDI, ""), (lang, n, text)


def test_numbers_use_the_participants_locale() -> None:
    assert tr("en").number(2000) == "2,000"
    assert tr("fr").number(2000) == "2\u202f000"
    assert tr("ar").number(2000).startswith(FSI)


# --------------------------------------------------------------------------- fallback chain and names

def test_fallback_participant_then_campaign_first_then_english(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # a language with a half-done catalog: what it lacks comes from the campaign's first language
    po = tmp_path / "am" / "LC_MESSAGES" / f"{DOMAIN}.po"
    po.parent.mkdir(parents=True)
    for lang in ("ar", "en"):
        (tmp_path / lang / "LC_MESSAGES").mkdir(parents=True)
        src = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        (tmp_path / lang / "LC_MESSAGES" / f"{DOMAIN}.po").write_bytes(src.read_bytes())
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "Back"\nmsgstr "ተመለስ"\n', encoding="utf-8")
    for lang in ("am", "ar", "en"):
        path = tmp_path / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        with path.open("rb") as fh, path.with_suffix(".mo").open("wb") as out:
            write_mo(out, read_po(fh, locale=lang))
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    i18n.reset_cache()
    try:
        t = i18n.Tr("am", "ar")
        assert t.gettext("Back") == "ተመለስ"                                  # the participant's own
        assert t.gettext("Skip") == "تخطي"                                   # the campaign's first
        assert i18n.Tr("am", "de").gettext("Skip") == "Skip"                 # English
        # Arabic that stands in for a missing text still gets its commands isolated
        assert f"{FSI}/start{PDI}" in t.gettext("That is fine. If you change your mind, send /start.")
    finally:
        i18n.reset_cache()


def test_unknown_languages_fall_back_and_never_show_keys() -> None:
    assert tr("xx").gettext("Skip") == "Skip"
    assert tr("de", "so").gettext("Skip") == "Ka gudub"
    assert tr("so-SO").gettext("Skip") == "Ka gudub"
    assert tr(None).gettext("Done") == "Done"


@pytest.mark.parametrize(("code", "name"), [
    ("ar", "العربية"), ("so", "Soomaali"), ("uk", "Українська"), ("ti", "ትግርኛ"), ("fa", "فارسی"),
    ("ps", "پښتو"), ("ru", "Русский"), ("es", "Español"), ("fr", "Français"), ("pt", "Português"),
    ("tr", "Türkçe"), ("pl", "Polski"), ("ro", "Română"), ("en", "English"), ("zz-nonsense", "zz-nonsense"),
])
def test_language_names_are_native(code: str, name: str) -> None:
    assert language_name(code) == name


# --------------------------------------------------------------------------- right to left

def test_commands_numbers_and_names_are_isolated_in_right_to_left_text() -> None:
    ar = tr("ar")
    consent = ar.gettext("You can see what we keep with /privacy and erase it all with /forget.")
    assert f"{FSI}/privacy{PDI}" in consent and f"{FSI}/forget{PDI}" in consent
    assert f"{FSI}/start{PDI} — " in help_text(ar)
    assert ar.fraction(2, 6) == f"{FSI}2/6{PDI}"
    assert ar.number(3) == f"{FSI}3{PDI}"
    en = tr("en")
    assert FSI not in en.gettext("You can see what we keep with /privacy and erase it all with /forget.")
    assert en.fraction(2, 6) == "2/6" and help_text(en).splitlines()[1].startswith("/start — ")
    # links and markup are left alone
    assert i18n.COMMAND.findall("https://t.me/bot?start=x </b> a/b") == []


# --------------------------------------------------------------------------- conversations

def spec_in(languages: list[str], spec: CampaignSpec, extra: list[Question] | None = None) -> CampaignSpec:
    return spec.model_copy(update={"languages": languages, "questions": [*spec.questions, *(extra or [])]})


async def open_world(db: Database, keys: Any, spec: CampaignSpec) -> tuple[Any, MockMessageManager, RecordingBot]:
    async with db.session() as s:
        c, _ = await load_campaign(s, spec)
        c.status = "open"
        await s.commit()
    forget_cached_campaigns()
    mm, bot = MockMessageManager(), RecordingBot()
    dp = build_dispatcher(db, keys, message_manager=mm, config=BotConfig(dedupe=False))
    return dp, mm, bot


async def test_a_conversation_in_arabic(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = await open_world(db, keys, example_spec)
    p = Person(dp, mm, bot, user_id=501, language_code="ar")
    await complete_example(p)
    arabic = re.compile("[\u0600-\u06ff]")
    for m in mm.sent_messages:
        assert m.text and arabic.search(m.text), m.text
        for label in [b.text for row in (m.reply_markup.inline_keyboard if m.reply_markup else []) for b in row]:
            assert label in "−+" or re.search(r"\d", label) or arabic.search(label), label
    texts = [m.text or "" for m in mm.sent_messages]
    assert any(f"{FSI}/privacy{PDI}" in t and f"{FSI}/forget{PDI}" in t for t in texts)  # consent
    assert any(f"{FSI}1/3{PDI}" in t for t in texts)                      # group progress
    assert any(f"{FSI}2/8{PDI}" in t or f"{FSI}2/7{PDI}" in t for t in texts)  # question progress
    assert any(f"{FSI}1{PDI} عملة" in t for t in texts)                  # one coin left
    assert any(f"مترجمون: {FSI}7{PDI}" == b.text for m in mm.sent_messages if m.reply_markup
               for row in m.reply_markup.inline_keyboard for b in row)   # budget label "Option: 7"
    assert "شكرًا لك! حفظنا إجاباتك." in p.text and "نعم، أخبروني" in p.buttons()
    for english in leaked_english("ar"):
        assert all(english not in t for t in texts), english


async def test_a_conversation_in_somali(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = await open_world(db, keys, example_spec)
    p = Person(dp, mm, bot, user_id=502, language_code="so")
    await p.send("/start clinic-access")
    assert "Ma ku raacsan tahay inaad ka qayb qaadato?" in p.text
    assert p.buttons() == ["Haa, waan ku raacsanahay", "Hadda maya"]
    await p.tap_button("y")
    assert "Wax adiga kugu saabsan" in p.text and "Dhammee" in p.text
    await p.send("shan")
    assert "Fadlan ku jawaab badhamada hoose." in p.text
    p2 = Person(dp, mm, bot, user_id=503, language_code="so")
    await complete_example(p2)
    assert "Mahadsanid! Jawaabahaaga waa la kaydiyay." in p2.text
    assert p2.buttons() == ["Haa, ii sheega", "Maya, mahadsanid"]
    await p2.send("/privacy")
    privacy = "\n".join(bot.sent_texts(503)[-2:])  # what is kept; who sees it
    assert "Waxa aan kaydinno" in privacy and "/forget" in privacy and FSI not in privacy
    texts = [m.text or "" for m in mm.sent_messages] + bot.sent_texts()
    for english in leaked_english("so"):
        assert all(english not in t for t in texts), english


async def test_interface_falls_back_to_the_campaigns_first_language(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    spec = spec_in(["ar", "en"], example_spec)
    dp, mm, bot = await open_world(db, keys, spec)
    p = Person(dp, mm, bot, user_id=504, language_code="de")  # German is neither offered nor shipped
    await p.send("/start clinic-access")
    assert "ما اللغة التي تريد استخدامها؟" in p.text and p.buttons() == ["العربية", "English"]


# --------------------------------------------------------------------------- every screen, every language

LAST = Question.model_validate({"id": "last", "type": "info", "text": {"en": "One last screen."}})


def campaign_texts(spec: CampaignSpec) -> set[str]:
    """Every option and title text of a campaign, in any language (these are not the bot's words)."""
    out = set(spec.title.values())
    for item in [*spec.groups, *spec.questions]:
        for option in item.options or []:
            out |= set(option.text.values())
    return out


def check_screen(lang: str, text: str, buttons: list[tuple[str, str]], leaks: list[str],
                 interface_labels: set[str], content: set[str], where: str) -> None:
    assert 1 <= visible_length(text) <= TELEGRAM_TEXT, where
    assert not RAW_PLACEHOLDER.search(html.unescape(text)), (where, text)
    for english in leaks:
        assert english not in text, (where, english)
    if lang in RTL:  # progress and counts keep their left-to-right order inside right-to-left text
        assert not re.search(r"(?<!\u2068)\b\d+/\d+", text), (where, text)
    for label, data in buttons:
        assert 1 <= len(data.encode()) <= TELEGRAM_CALLBACK, (where, data)
        assert label and not RAW_PLACEHOLDER.search(label), (where, label)
        bare = label.removeprefix(CHECK)
        if bare in interface_labels:
            assert len(bare) <= MAX_BUTTON_LABEL, (where, label)
        else:  # campaign content: an option (with ✅ or a coin count), a title, a language name
            assert len(label) <= MAX_OPTION_TEXT + 12, (where, label)
        if lang != "en" and bare not in content:
            assert label not in BUTTONS or label in interface_labels, (where, f"English button {label!r}")


def in_script(lang: str, text: str) -> bool:
    return lang not in SCRIPT or bool(re.search(f"[{SCRIPT[lang]}]", text))


async def every_screen(p: Person, q_back: int) -> None:
    """Every screen of the conversation, with each hint, for one participant."""
    sticker = {"sticker": Sticker(file_id="s", file_unique_id="s", type="regular", width=1, height=1,
                                  is_animated=False, is_video=False)}
    await p.send("/start nope-campaign")                 # not found, and the open list
    await p.send("/start !!!")                           # a broken link
    await p.send("/help")
    await p.send("/privacy")
    await p.send("/start clinic-access")
    await p.tap_button("n")                              # not now
    await p.send("/start clinic-access_mosque")          # consent again
    await p.tap_button("y")                              # groups: filled in from the invitation
    await p.send("hello")                                # hint: use the buttons
    await p.tap_item("g", "0.somali")
    await p.tap_button("d")
    await p.tap_item("g", "1.25_64")
    await p.tap_button("k")                              # back to the age
    await p.tap_item("g", "1.25_64")
    await p.tap_item("g", "2.no")
    await p.send("/language")                            # the picker, then cancel
    await p.tap_button("x")
    await p.tap_button("c")                              # info
    await p.send("five")                                 # hint on a rating
    await p.tap_item("r", "1.4")
    await p.tap_item("o", "2.no")
    await p.tap_item("o", "3.other")                     # something else: a few words
    await p.send_update(**sticker)                       # hint
    await p.send("x" * 2001)                             # too long
    await p.send("The stairs")
    await p.tap_item("o", "4.phone")
    await p.tap_button("d")
    await p.tap_item("o", "5.online")                    # rank: "tap your choice number 2"
    await p.tap_button("u")
    for o in ("online", "evening", "waiting"):
        await p.tap_item("o", f"5.{o}")
    for _ in range(9):                                   # 10, 9 … 1 coins left
        await p.tap_item("b", "6.+interpreters")
    await p.tap_item("b", "6.+online")
    await p.tap_button("d")
    await p.send_update(**sticker)                       # text question: type or voice
    await p.send("x" * 2001)                             # too long
    await p.send_voice(4)                                # a voice note, then back to see it
    await p.tap_button("k")
    await p.send("My idea")                              # replaced by text, then back to see it
    await p.tap_button("k")
    await p.tap_button("d")
    await p.tap_button("c")                              # the last screen: the end
    await p.tap_button("y" if q_back % 2 else "n")       # outcome yes or no
    await p.send("/start clinic-access")                 # already taken part
    await p.send("/forget")
    await p.tap_button("n")                              # nothing erased
    await p.send("/stop")
    await p.send("/forget")
    await p.tap_button("y")                              # erased


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_screen_in_every_language_within_telegram_limits(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    spec = spec_in(SHIPPED, example_spec, [LAST])
    dp, mm, bot = await open_world(db, keys, spec)
    people = {}
    for i, lang in enumerate(SHIPPED):
        p = people[lang] = Person(dp, mm, bot, user_id=1000 + i, language_code=lang)
        await every_screen(p, i)
        late = people[lang + "+"] = Person(dp, mm, bot, user_id=2000 + i, language_code=lang)
        await late.send("/start clinic-access")          # at the consent when the survey closes
    async with db.session() as s:
        (await s.get(Campaign, "clinic-access")).status = "closed"
        await s.commit()
    forget_cached_campaigns()
    for i, lang in enumerate(SHIPPED):
        await people[lang + "+"].tap_button("y")        # sorry, closed now
        await Person(dp, mm, bot, user_id=3000 + i, language_code=lang).send("/start clinic-access")
    async with db.session() as s:
        c = await s.get(Campaign, "clinic-access")
        c.status, c.opens, c.closes = "draft", c.opens.replace(year=2999), None
        await s.commit()
    forget_cached_campaigns()
    for i, lang in enumerate(SHIPPED):
        await Person(dp, mm, bot, user_id=4000 + i, language_code=lang).send("/start clinic-access")

    lang_of = {1000 + i: lang for i, lang in enumerate(SHIPPED)}
    lang_of |= {base + i: lang for base in (2000, 3000, 4000) for i, lang in enumerate(SHIPPED)}
    shown: dict[str, list[str]] = {lang: [] for lang in SHIPPED}
    screens: list[tuple[str, str, list[tuple[str, str]], str]] = []
    for m in mm.sent_messages:
        buttons = [(b.text, b.callback_data or b.url or "")
                   for row in (m.reply_markup.inline_keyboard if m.reply_markup else []) for b in row]
        screens.append((lang_of[m.chat.id], m.text or "", buttons, f"dialog message to {m.chat.id}"))
    for call in bot.calls:
        if isinstance(call, SendMessage):
            markup = call.reply_markup
            buttons = [(b.text, b.callback_data or b.url or "")
                       for row in (markup.inline_keyboard if markup else []) for b in row]  # type: ignore[union-attr]
            screens.append((lang_of[int(call.chat_id)], call.text, buttons, f"message to {call.chat_id}"))
    content = campaign_texts(spec)
    for lang in SHIPPED:
        interface = {form for msgid, forms in translations(lang) if msgid in BUTTONS for form in forms}
        leaks = leaked_english(lang)
        for screen_lang, text, buttons, where in screens:
            if screen_lang == lang:
                check_screen(lang, text, buttons, leaks, interface, content, f"{lang} {where}")
                shown[lang].append(text)
    expected = {  # the texts each language must have shown, besides the dialog screens
        "We could not find that survey.", "That link does not work.", "What we keep",
        "That is fine. If you change your mind, send /start.",
        "We filled this in from your invitation. Tap Done to keep it, or change it.",
        "Please answer with the buttons below.", "Please write a few words, then send them.",
        "Please type your answer, or send a voice note.", "You sent a voice note.",
        "You have already taken part in this survey. Thank you!", "Nothing was erased.",
        "Done. Everything we kept about you has been erased.",
        "Sorry, this survey is closed now. Thank you for your interest.",
        "This survey is closed now. Thank you for your interest.",
        "There is no survey open right now. Thank you for your interest.",
        "This survey is not open yet. Please come back later.",
        "Which language would you like to use?", "Prefer not to say",
    }
    for lang in SHIPPED:
        t = tr(lang)
        everything = "\n".join(shown[lang])
        for msgid in expected:
            if msgid == "Prefer not to say":
                continue  # a button, checked above
            want = html.escape(t.gettext(msgid), quote=False)
            assert want in everything, (lang, msgid)
        assert "Your answer: {answer}" not in everything
        assert html.escape(t.gettext("Your answer: {answer}").format(answer=t.isolate("My idea")),
                           quote=False) in everything, lang
        assert all(in_script(lang, x) for x in shown[lang] if "<b>" not in x[:3]), lang


def wordiest_language() -> str:
    """The shipped language whose interface texts are longest altogether (French, as of writing)."""
    return max(SHIPPED, key=lambda lang: sum(len(forms[0]) for _, forms in translations(lang)))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_worst_case_campaign_in_the_wordiest_language(db, keys) -> None:  # type: ignore[no-untyped-def]
    lang = wordiest_language()
    result = check_text(worst_case_yaml(), "worst.yaml")
    assert result.ok and result.spec is not None
    # the campaign offers the language; its texts (all at their maximum) fall back to English
    dp, mm, bot = await open_world(db, keys, spec_in(["en", lang], result.spec))
    p = Person(dp, mm, bot, user_id=99, language_code=lang)
    o = "o" * 21
    await p.send(f"/start {'c' * 40}")
    await p.tap_button("y")
    await p.tap_item("g", f"0.{o}000")
    await p.tap_button("d")
    steps = ["R:0.10", "o:1.other", "x" * 2001, "x" * 2000, "o:2." + o + "000", "d",
             *[f"o:3.{o}{k:03d}" for k in range(20)], *[f"b:4.+{o}000"] * 100, "d", "o:5.yes",
             "x" * 2001, "x" * 2000, "k", "d", "c"]
    for step in steps:
        if step.startswith("x"):
            await p.send(step)
        elif ":" in step:
            widget, item = step.split(":", 1)
            await p.tap_item(widget, item)
        else:
            await p.tap_button(step)
    assert tr(lang).gettext("Thank you! Your answers are saved.") in p.text
    longest = max(visible_length(m.text or "") for m in mm.sent_messages)
    assert longest <= TELEGRAM_TEXT, (lang, longest)
    for m in mm.sent_messages:
        for row in m.reply_markup.inline_keyboard if m.reply_markup else []:
            for b in row:
                assert 1 <= len((b.callback_data or "x").encode()) <= TELEGRAM_CALLBACK


def test_the_participants_language_is_found_under_its_other_codes() -> None:
    """A phone set to Norwegian Bokmål reports 'nb'; a campaign offers Norwegian as 'no'."""
    assert i18n.best_language(["nb-NO"], ["en", "no"]) == "no"
    assert i18n.best_language(["no"], ["en", "nb"]) == "nb"
    assert i18n.best_language(["iw"], ["en", "he"]) == "he"
    assert i18n.best_language(["pt-br"], ["en", "pt"]) == "pt"
    assert i18n.best_language(["de"], ["en", "no"]) is None  # not offered: the language picker
    assert i18n.best_language([None, "nn"], ["ar", "no"]) == "no"


def test_consent_says_how_long_this_campaign_takes_in_each_language(example_spec: CampaignSpec) -> None:
    from dialogs.survey import consent_text

    assert example_spec.minutes() == 4  # eight questions of every type and three group questions
    one_question = example_spec.model_copy(update={"questions": example_spec.questions[1:2], "groups": []})
    assert one_question.minutes() == 1
    long_one = example_spec.model_copy(update={"questions": [example_spec.question("idea")] * 30})
    assert long_one.minutes() > 20  # thirty written answers are not "a few minutes"

    assert "It takes about 4 minutes." in consent_text(tr("en"), example_spec)
    assert "It takes about 1 minute." in consent_text(tr("en"), one_question)
    assert "около 4 минут" in consent_text(tr("ru"), example_spec)
    assert "около 1 минуты" in consent_text(tr("ru"), one_question)
    # in Arabic the number is isolated in the right-to-left sentence, the noun agreeing with it
    assert f"{FSI}4{PDI} دقائق" in consent_text(tr("ar"), example_spec)
