"""Reads as a native speaker wrote it: the translators' review of issue 16 (points 7 and 11-19).

Catalog content tests on purpose: each names the wording the review asked for, so that a later
edit that brings the old wording back fails here.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
from openpyxl import load_workbook

from bot.campaigns.translations import export_po, export_xlsx, read_campaign
from dialogs.i18n import FSI, PDI, tr
from locales import DOMAIN, LOCALES_DIR
from locales import coverage as cov
from locales.coverage import placeholders, source_messages
from tests.participants import Person
from tests.test_i18n import MAX_VISIBLE, SHIPPED, fill, open_world, spec_in, translations, visible

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "clinic-access.yaml"
MESSAGES = source_messages()
LATIN_DIGIT = re.compile(r"[0-9]")
PERSIAN_DIGIT = re.compile("[\u06f0-\u06f9]")
ARABIC_DIGIT = re.compile("[\u0660-\u0669]")


def forms(lang: str) -> dict[str, list[str]]:
    return dict(translations(lang))


def every_form(lang: str) -> list[str]:
    return [f for fs in forms(lang).values() for f in fs]


# --------------------------------------------------------------------------- 7: 600 characters

@pytest.mark.parametrize("lang", SHIPPED)
def test_every_catalog_message_fits_600_visible_characters(lang: str) -> None:
    t = tr(lang)
    long = {"who": t.isolate("North Street Health Centre and Community Clinic"), "title": "T" * 60,
            "answer": t.isolate("a" * 300), "n": t.number(2001), "max": t.number(2000)}
    for msgid in MESSAGES:
        source = msgid if isinstance(msgid, str) else msgid[0] + msgid[1]
        values = {name.strip("%()"): long.get(name.strip("%()"), "X") for name in placeholders(source) or {}}
        texts = ([t.ngettext(msgid[0], msgid[1], n) for n in (0, 1, 2, 3, 11, 100)]
                 if isinstance(msgid, tuple) else [t.gettext(msgid)])
        for text in texts:
            assert visible(fill(text, values)) <= MAX_VISIBLE, (lang, msgid)


@pytest.mark.parametrize("lang", SHIPPED)
def test_consent_and_privacy_of_the_example_campaign_fit_600(lang: str, example_spec) -> None:  # type: ignore[no-untyped-def]
    from dialogs.commands import privacy_texts
    from dialogs.survey import consent_text

    spec = spec_in(SHIPPED, example_spec)
    t = tr(lang, spec.languages[0])
    screen = "\n\n".join([f"<b>{spec.text(spec.title, lang)}</b>", spec.text(spec.intro, lang),
                          consent_text(t, spec)])
    assert visible(screen) <= MAX_VISIBLE, (lang, visible(screen))
    for text in privacy_texts(t):
        assert visible(text) <= MAX_VISIBLE, (lang, visible(text))


# --------------------------------------------------------------------------- 11: the ranking prompt

def test_ranking_prompt_asks_which_is_number_n() -> None:
    assert "Which is number {n} for you? Tap it." in MESSAGES
    assert "Tap your choice number {n}." not in MESSAGES
    for lang in SHIPPED:
        prompt = tr(lang).gettext("Which is number {n} for you? Tap it.")
        assert prompt != "Which is number {n} for you? Tap it." or lang == "en", lang
        assert re.search("[?؟፧]", prompt), (lang, prompt)  # a question, not "tap option no. n"


# --------------------------------------------------------------------------- 12: one digit system

def test_one_digit_system_per_language_in_the_formatter() -> None:
    fa, ps, ar, en = tr("fa"), tr("ps"), tr("ar"), tr("en")
    assert fa.number(10) == f"{FSI}۱۰{PDI}" and ps.number(10) == f"{FSI}۱۰{PDI}"
    assert fa.fraction(2, 6) == f"{FSI}۲/۶{PDI}"
    assert ar.number(10) == f"{FSI}10{PDI}" and en.number(2000) == "2,000"
    for lang, wrong in (("fa", LATIN_DIGIT), ("ps", LATIN_DIGIT), ("ar", PERSIAN_DIGIT)):
        for form in every_form(lang):
            assert not wrong.search(form) and not ARABIC_DIGIT.search(form), (lang, form)


def test_i18n_check_finds_campaign_texts_in_the_other_digits(tmp_path: Path) -> None:
    from bot.cli.i18n import campaign_coverage

    assert all(c.complete for c in campaign_coverage(read_campaign(EXAMPLE)))
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(EXAMPLE.read_text(encoding="utf-8").replace("fa: شما ۱۰ سکه دارید.", "fa: شما 10 سکه دارید.")
                     .replace("ar: لديك 10 قطع", "ar: لديك ١٠ قطع"), encoding="utf-8")
    rows = {c.lang: c for c in campaign_coverage(read_campaign(mixed))}
    assert rows["fa"].other_digits == ["questions.spend.text"] and not rows["fa"].complete
    assert rows["ar"].other_digits == ["questions.spend.text"]
    assert rows["es"].other_digits == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # words, not storage
async def test_a_persian_screen_shows_no_mixed_digits(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from tests.test_dialog_survey import complete_example

    dp, mm, bot = await open_world(db, keys, example_spec)
    p = Person(dp, mm, bot, user_id=611, language_code="fa")
    await complete_example(p)
    shown = [m.text or "" for m in mm.sent_messages] + bot.sent_texts()
    labels = [b.text for m in mm.sent_messages if m.reply_markup
              for row in m.reply_markup.inline_keyboard for b in row]
    assert any(PERSIAN_DIGIT.search(x) for x in shown)  # progress, coins, the campaign's "۱۰ سکه"
    for x in shown + labels:
        assert not LATIN_DIGIT.search(x), x


# --------------------------------------------------------------------------- 13: not said twice

@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("lang", ["en", "ar", "so", "uk", "fa", "es"])
async def test_choose_all_that_fit_is_not_said_twice(db, keys, example_spec, lang: str) -> None:  # type: ignore[no-untyped-def]
    dp, mm, bot = await open_world(db, keys, example_spec)
    p = Person(dp, mm, bot, user_id=620, language_code=lang)
    await p.send("/start clinic-access")
    await p.tap_button("y")
    for item in ("0.prefer_not_to_say", "1.over64", "2.yes"):
        await p.tap_item("g", item)
    await p.tap_button("c")
    await p.tap_item("r", "1.3")
    await p.tap_item("o", "2.yes")
    await p.tap_item("o", "3.hours")
    t = tr(lang)
    question = example_spec.text(example_spec.question("channels").text, lang)
    assert html.escape(question, quote=False) in p.text
    assert html.escape(t.gettext("Choose all that fit, then tap Done."), quote=False) not in p.text
    assert html.escape(t.gettext("When you have chosen, tap Done."), quote=False) in p.text


def test_a_multiple_group_question_without_the_words_gets_the_full_hint() -> None:
    from dialogs.survey import multi_hint

    for lang in ("en", "ar", "so", "uk", "fa", "es", "fr", "ti"):
        t = tr(lang)
        assert multi_hint(t, "Which communities do you belong to?") == t.gettext(
            "Choose all that fit, then tap Done.")
        assert multi_hint(t, "Which one? " + t.gettext("Choose all that fit") + ".") == t.gettext(
            "When you have chosen, tap Done.")


# --------------------------------------------------------------------------- 14: Arabic

def test_a_plural_form_may_leave_out_the_count(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    po = tmp_path / "ar" / "LC_MESSAGES" / f"{DOMAIN}.po"
    po.parent.mkdir(parents=True)
    cat = Catalog(locale="ar")
    cat.add(("It takes about {n} minute.", "It takes about {n} minutes."),
            ["{n} دقيقة", "دقيقة واحدة", "دقيقتين", "{n} دقائق", "{n} دقيقة", "{n} دقيقة"])
    cat.add(("The invitation to “%(title)s” will go to %(n)s person (%(langs)s).",
             "The invitation to “%(title)s” will go to %(n)s people (%(langs)s)."),
            ["%(n)s %(langs)s"] * 6)                     # leaves out the title: wrong
    cat.add("Your answer: {answer}", "إجابتك")            # not a plural: every field stays
    with po.open("wb") as fh:
        write_po(fh, cat)
    monkeypatch.setattr(cov, "LOCALES_DIR", tmp_path)
    c = cov.check_catalog("ar", [("It takes about {n} minute.", "It takes about {n} minutes."),
                                 ("The invitation to “%(title)s” will go to %(n)s person (%(langs)s).",
                                  "The invitation to “%(title)s” will go to %(n)s people (%(langs)s)."),
                                 "Your answer: {answer}"])
    wrong = {m if isinstance(m, str) else m[0] for m, _ in c.placeholder_mismatches}
    assert wrong == {"The invitation to “%(title)s” will go to %(n)s person (%(langs)s).",
                     "Your answer: {answer}"}
    # Russian form 0 serves 1, 21, 31 …: without {n} nobody could tell which
    po = tmp_path / "ru" / "LC_MESSAGES" / f"{DOMAIN}.po"
    po.parent.mkdir(parents=True)
    cat = Catalog(locale="ru")
    cat.add(("{n} coin left", "{n} coins left"), ["Осталась одна монета", "{n} монеты", "{n} монет"])
    with po.open("wb") as fh:
        write_po(fh, cat)
    c = cov.check_catalog("ru", [("{n} coin left", "{n} coins left")])
    assert [form for _, form in c.placeholder_mismatches] == ["Осталась одна монета"]


def test_arabic_duals_verbs_and_coins() -> None:
    ar = tr("ar")
    two = ar.ngettext("It takes about {n} minute.", "It takes about {n} minutes.", 2)
    assert "دقيقتين" in two and "{n}" not in two
    coins = ar.ngettext("{n} coin left", "{n} coins left", 2)
    assert "{n}" not in coins
    f = forms("ar")
    assert "حذف" in f["Erase everything"][0] and "امسح" not in f["Erase everything"][0]
    assert "امسح" in f["Scan the code with your phone's camera to answer in Telegram."][0]
    campaign = read_campaign(EXAMPLE)
    spend = next(e for e in campaign.entries if e.key == "questions.spend.text").texts["ar"]
    assert "قطع نقدية" in spend
    for msgid in ("{n} coin left", "Please spend all your coins first.", "There are no coins here to take away."):
        for form in f[msgid]:
            assert "عمل" not in form, (msgid, form)  # عملة/عملات: currency, not the campaign's coins
    assert "قطع نقدية" in ar.ngettext("{n} coin left", "{n} coins left", 5)


# --------------------------------------------------------------------------- 15: "services"

@pytest.mark.parametrize(("lang", "word"), [("pl", "służb"), ("ru", "служб"), ("uk", "служб")])
def test_services_are_not_the_security_services(lang: str, word: str) -> None:
    for form in every_form(lang):
        assert word not in form.lower(), form


# --------------------------------------------------------------------------- 16: so, ti, ps

def test_somali_tigrinya_pashto_review_fixes() -> None:
    so = forms("so")
    assert so["This button is not for you."] == ["Badhankan adiga kuuma aha."]
    assert so["Cancel"] == ["Ka noqo"] and so["Cancel"] != so.get("Erase everything")
    assert not [f for f in every_form("so") if "quful yahay" in f]
    assert not [f for f in every_form("ti") if "ድሌት" in f]
    assert any("ተገዳስነት" in f for f in every_form("ti"))
    ps = " ".join(every_form("ps"))
    assert "ټلیفون" in ps and "تلیفون" not in ps.replace("ټلیفون", "")
    assert "دوام" in ps and "ادامه" not in ps
    welcome = next(e for e in read_campaign(EXAMPLE).entries if e.key == "questions.welcome.text")
    assert "aadan rabin" in welcome.texts["so"]  # "what you do NOT want to answer"


# --------------------------------------------------------------------------- 17: plain English

def test_plain_english_which_everything_else_follows() -> None:
    english = " ".join(m if isinstance(m, str) else " ".join(m) for m in MESSAGES)
    for idiom in ("chat number", "Carry on", "carry on", "characters", "came of", "services can hear"):
        assert idiom not in english, idiom
    assert "We keep a locked code for your chat, only to send you the messages you agreed to." in MESSAGES


# --------------------------------------------------------------------------- 18: single fixes

def test_single_fixes_in_french_portuguese_spanish_romanian_persian() -> None:
    fr = " ".join(every_form("fr"))
    assert "Chacun le lit" not in fr and "Chacun la lit" in fr
    for form in every_form("fr"):  # "Merci de" + infinitive, never followed by an imperative
        assert not ("Merci de" in form and re.search(r"\bappuyez\b", form)), form
    pt = " ".join(every_form("pt"))
    assert "morada" not in pt and "Não, agradeço" not in pt and "endereço" in pt
    es = " ".join(every_form("es"))
    assert "sirvan" not in es and "correspondan" in es
    assert "Vreți" not in " ".join(every_form("ro"))
    fa = every_form("fa")
    assert not [f for f in fa if re.search(r"بفرست(?!ید)", f)]  # the one informal "send!"
    assert not [f for f in fa if "پاسخ" in f]                     # one word for "answer": جواب


# --------------------------------------------------------------------------- 19: native review

def test_every_catalog_header_says_whether_a_native_speaker_reviewed_it() -> None:
    from locales.review import review_status

    statuses = {lang: review_status(lang) for lang in SHIPPED}
    assert statuses["en"].reviewed  # the source
    for lang in ("so", "ti", "ps"):
        assert not statuses[lang].reviewed
    for lang, status in statuses.items():
        assert status.problem is None, (lang, status.problem)
        if status.reviewed and not status.source:
            assert status.reviewer and status.date, lang
    raw = (LOCALES_DIR / "so" / "LC_MESSAGES" / f"{DOMAIN}.po").read_text(encoding="utf-8")
    assert "\n# Native review: " in raw.split('msgid ""')[0]  # the header, where a PO editor keeps it
    with (LOCALES_DIR / "so" / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        assert read_po(fh, locale="so").mime_headers  # still a valid catalog


def test_a_review_line_says_who_and_when() -> None:
    from locales.review import parse_review

    r = parse_review("so", "# Somali translation\n# Native review: Amina Yusuf, 2026-12-01\n")
    assert r.reviewed and r.reviewer == "Amina Yusuf" and str(r.date) == "2026-12-01"
    assert not parse_review("so", "# Native review: not yet").reviewed
    assert parse_review("so", "# Native review: Amina").problem  # who, but not when
    assert parse_review("so", "# nothing").problem


def test_i18n_check_lists_the_languages_still_unreviewed() -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(app, ["i18n", "check"], env={"COLUMNS": "200"})
    assert "Not yet reviewed by a native speaker" in result.output, result.output
    line = next(x for x in result.output.splitlines() if "Not yet reviewed" in x)
    for lang in ("so", "ti", "ps"):
        assert lang in line


def test_the_translators_spreadsheet_says_where_each_text_is_shown_and_its_limit(tmp_path: Path) -> None:
    campaign = read_campaign(EXAMPLE)
    out = tmp_path / "t.xlsx"
    export_xlsx(campaign, out)
    ws = load_workbook(out)["translations"]
    header = [c.value for c in ws[1]]
    assert "shown" in header and "length limit" in header
    rows = {r[0]: dict(zip(header, r, strict=False)) for r in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["questions.channels.options.phone"]["length limit"] == 60
    assert "button" in rows["questions.channels.options.phone"]["shown"]
    assert "consent" in rows["intro"]["shown"]
    po = export_po(campaign, tmp_path / "po")[0].read_text(encoding="utf-8")
    assert "#. Shown: " in po and "#. Length limit: " in po


def test_languages_doc_sends_somali_tigrinya_pashto_first() -> None:
    doc = (ROOT / "docs" / "languages.md").read_text(encoding="utf-8")
    assert "# Native review:" in doc
    first = doc[doc.index("## Native review"):]
    assert all(name in first[:1500] for name in ("Somali", "Tigrinya", "Pashto"))


def test_campaign_check_notes_a_screen_longer_than_a_phone_shows(tmp_path: Path, example_spec) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from bot.cli import app
    from dialogs.screen_length import long_screens

    assert long_screens(spec_in(SHIPPED, example_spec)) == []  # the example, in all 14 languages
    intro = "Su'aalo gaagaaban oo ku saabsan booqashadaadii ugu dambeysay."
    long = tmp_path / "long.yaml"
    long.write_text(EXAMPLE.read_text(encoding="utf-8").replace(f"so: {intro}", f"so: {intro * 3}"),
                    encoding="utf-8")
    result = CliRunner().invoke(app, ["campaign", "check", str(long)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "note: in so, the consent screen" in result.output and "note: in en" not in result.output
