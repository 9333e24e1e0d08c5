"""Removing contact details from free text before it is stored."""

from __future__ import annotations

import re

import phonenumbers

# Regions whose numbering plans cover most participants; PhoneNumberMatcher needs a default
# region for numbers written without +country code. International (+..) numbers match anywhere.
_REGIONS = ("GB", "US", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "RO", "UA", "RU", "TR",
            "SO", "ET", "ER", "AF", "IR", "SY", "IQ", "EG", "MA", "SD", "PT", "BR", "MX")

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A link runs to the next space, less what closes the sentence around it: "(see https://x.org/a)."
# keeps its ")." and "…x.org/a", he said" its quote.
URL = re.compile(r"(?:(?:https?://|www\.|t\.me/)|\b[\w-]+\.(?:com|org|net|io|me|info|ru|ua|uk)\b)"
                 r"(?:\S*[^\s.,;:!?)\]}'\"»”’])?", re.IGNORECASE)
HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}\b")
# A full UK postcode (SW1A 1AA, m1 1ae) points at a few homes; its first half alone (SW1A) names a
# district and is kept.
POSTCODE = re.compile(r"\b(?:GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE)
# The fewest digits a valid number written without +country code has in each region (from
# phonenumbers' metadata). A text with fewer digits in all cannot hold one, and no region's
# matcher is run on it; an international (+..) number is found by every region's matcher, DE's
# (4 digits) included.
_MIN_DIGITS = {r: min(phonenumbers.PhoneMetadata.metadata_for_region(r).general_desc.possible_length)
               for r in _REGIONS}
# Long digit runs that phonenumbers may not parse as valid numbers (e.g. made-up or partial),
# with an extension if one follows (ext. 12, x12, #12, доб. 12); also when glued to letters
# ("call07700900123"): eight digits or more may be an id number, which is no better to keep.
DIGITS = re.compile(r"(?<!\d)\(?\+?\d[\d\s().-]{6,}\d(?!\d)"
                    r"(?:\s*(?i:ext|extn|x|#|доб)\.?\s*\d{1,7}(?!\d))?")

# "My name is …" in the languages of the catalogs: the words after it become [name]. Names
# written any other way cannot be told from other words, so the consent asks people not to.
_NAME_LEADS = (
    "my name is", "my name's", "i am called", "i'm called",                     # en
    "me llamo", "mi nombre es", "je m'appelle", "je m’appelle", "mon nom est",   # es, fr
    "meu nome é", "me chamo", "chamo-me", "mă numesc", "ma numesc", "numele meu este",  # pt, ro
    "nazywam się", "mam na imię", "меня зовут", "моё имя", "мое имя",           # pl, ru
    "мене звати", "моє ім'я", "моє ім’я", "benim adım",                          # uk, tr
    "اسمي", "اسم من", "نام من", "زما نوم", "magacaygu waa", "magacayga waa", "magacaygu", "ስመይ",
)
_WORD = r"[^\W\d_][\w'’-]*"
# after the first word: one more in a script without capitals (Arabic, Ge'ez), or up to two more
# that start with a capital ("Amina Warsame", "Олена Петренко")
_MORE = (r"(?:[ \t]+[^\W\d_a-zA-Zа-яА-ЯёЁіїєґІЇЄҐ][\w'’-]*"
         r"|(?:[ \t]+[A-ZА-ЯЁІЇЄҐ][\w'’-]*){0,2})")
NAME = re.compile(
    r"(?i:(?<!\w)(?:" + "|".join(re.escape(x) for x in sorted(_NAME_LEADS, key=len, reverse=True))
    + r"))[\s:,-]+(" + _WORD + _MORE + ")")
PHONE_TOKEN = "[phone]"
EMAIL_TOKEN = "[email]"
LINK_TOKEN = "[link]"
HANDLE_TOKEN = "[handle]"
POSTCODE_TOKEN = "[postcode]"
NAME_TOKEN = "[name]"


def scrub(text: str) -> str:
    """Replace phone numbers of any country, e-mail addresses, @handles, links, UK postcodes and
    the name after "my name is" (in the catalogs' languages) with placeholders."""
    text = EMAIL.sub(EMAIL_TOKEN, text)
    text = URL.sub(LINK_TOKEN, text)
    text = HANDLE.sub(HANDLE_TOKEN, text)
    text = POSTCODE.sub(POSTCODE_TOKEN, text)
    text = NAME.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + NAME_TOKEN, text)
    # Detect on a copy with Latin digits (same length), replace the spans in the original.
    latin = _latin_digits(text)
    spans: set[tuple[int, int]] = set()
    # Long digit runs are replaced whatever phonenumbers makes of them (made-up, partial or
    # foreign numbers), so they are found first and blanked out (same length) before the
    # region matchers run: those then only look for the shorter numbers a run does not cover.
    for m in DIGITS.finditer(latin):
        if sum(c.isdigit() for c in m.group()) >= 8:
            spans.add((m.start(), m.end()))
    rest = latin
    for start, end in spans:
        rest = rest[:start] + " " * (end - start) + rest[end:]
    # Digits that a region's matcher could still turn into a number it alone finds. A number
    # written with +country code parses alike whatever the region: once one region found it,
    # its digits no longer count (a text with one +44 number costs one region, not 26).
    unclaimed = sum(c.isdigit() for c in rest)
    first = True
    for region in _REGIONS:
        if unclaimed < _MIN_DIGITS[region]:
            continue
        for m in phonenumbers.PhoneNumberMatcher(rest, region, leniency=phonenumbers.Leniency.VALID):
            spans.add((m.start, m.end))
            if first and m.raw_string.startswith("+"):
                unclaimed -= sum(c.isdigit() for c in m.raw_string)
        first = False
    for start, end in sorted(_merge(spans), reverse=True):
        text = text[:start] + PHONE_TOKEN + text[end:]
    return text


def _merge(spans: set[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _latin_digits(text: str) -> str:
    """Arabic-Indic and Persian digits as 0-9, one character each, so spans map back."""
    return "".join(str(int(c)) if c.isdigit() and not c.isascii() and len(str(int(c))) == 1 else c
                   for c in text)
