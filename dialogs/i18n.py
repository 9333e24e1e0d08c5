"""Translation for everything the bot says: gettext catalogs, CLDR plurals, right-to-left isolation."""

from __future__ import annotations

import gettext
import re
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal

from locales import DOMAIN, LOCALES_DIR

RTL_LANGUAGES = {"ar", "fa", "ps", "ur", "he", "ckb", "dv", "yi", "prs"}
FSI, PDI, RLM = "\u2068", "\u2069", "\u200f"
# The longest label the bot itself may put on a button, in any language (docs/languages.md): about
# what a phone shows on a full-width button before cutting it off with "…". Campaign options have
# their own limit (MAX_OPTION_TEXT in bot/campaigns/schema.py).
MAX_BUTTON_LABEL = 40
# A bot command inside a sentence (/forget), not part of a path, a URL or an HTML tag.
COMMAND = re.compile(r"(?<![\w/<])/[a-z][a-z0-9_]*")


def short_label(text: str, width: int = MAX_BUTTON_LABEL) -> str:
    """`text` for a button: whole if it fits, else cut at a word with an ellipsis ("…")."""
    import textwrap

    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = textwrap.shorten(text, width, placeholder="…")
    # one word longer than the button: cut inside it, still saying that it goes on
    return cut if cut != "…" else text[:width - 1] + "…"


def base_language(code: str | None) -> str:
    return (code or "en").replace("_", "-").split("-")[0].lower()


class Tr:
    """One participant's translator: catalog chain participant → campaign's first → English."""

    def __init__(self, lang: str, fallback: str | None = None) -> None:
        self.lang = lang
        chain: list[str] = []
        for code in (lang, fallback, "en"):
            # "pt-BR" is looked up as pt_BR, then pt
            for candidate in (code.replace("-", "_"), base_language(code)) if code else ():
                if candidate not in chain:
                    chain.append(candidate)
        # one catalog per language of the chain that has one; a message comes from the first that
        # translates it, so a half-done catalog is completed by the next language, then English
        self._catalogs = [(code, gettext.translation(DOMAIN, localedir=str(LOCALES_DIR), languages=[code]))
                          for code in chain
                          if gettext.find(DOMAIN, localedir=str(LOCALES_DIR), languages=[code])]
        # the language the interface text mostly comes in
        self.interface_lang = self._catalogs[0][0] if self._catalogs else "en"

    def gettext(self, message: str) -> str:
        """`message` in this participant's language (bot commands isolated in right-to-left text)."""
        for code, catalog in self._catalogs:
            text = catalog.gettext(message)
            if text != message:
                return self._commands(text, code)
        return message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form CLDR gives for `n` in the first language of the chain that translates it."""
        for code, catalog in self._catalogs:
            text = catalog.ngettext(singular, plural, n)
            if text not in (singular, plural):
                return self._commands(text, code)
        return singular if n == 1 else plural

    def _commands(self, text: str, source_lang: str) -> str:
        # "/forget" between Arabic words would otherwise show as "forget/"
        if not {base_language(self.lang), base_language(source_lang)} & RTL_LANGUAGES:
            return text
        return COMMAND.sub(lambda m: f"{FSI}{m.group(0)}{PDI}", text)

    @property
    def rtl(self) -> bool:
        """Right-to-left text ahead: campaign texts in `lang`, or the interface falling back to one."""
        return bool({base_language(self.lang), base_language(self.interface_lang)} & RTL_LANGUAGES)

    def isolate(self, text: str) -> str:
        """Keep numbers, ids and Latin words in their own direction inside right-to-left text."""
        return f"{FSI}{text}{PDI}" if self.rtl else text

    def number(self, value: int | float) -> str:
        return self.isolate(_decimal(value, self.lang))

    def fraction(self, a: int, b: int) -> str:
        """Progress such as 2/6, reading left to right even inside Arabic text."""
        return self.isolate(f"{a}/{b}")


@lru_cache(maxsize=4096)
def _decimal(value: int | float, lang: str) -> str:
    """A number in the language's digits and separators (the same few numbers on every screen)."""
    try:
        return format_decimal(value, locale=lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return str(value)


@lru_cache(maxsize=256)
def tr(lang: str | None, fallback: str | None = None) -> Tr:
    return Tr(lang or "en", fallback)


def reset_cache() -> None:
    tr.cache_clear()


@lru_cache(maxsize=256)
def language_name(code: str) -> str:
    """A language in its own name: العربية, Soomaali, Українська."""
    try:
        loc = Locale.parse(code.replace("-", "_"))
        name = loc.get_display_name(loc) or code
    except (UnknownLocaleError, ValueError):
        return code
    return name[:1].upper() + name[1:]


# Codes that name the same language: Norwegian Bokmål and Nynorsk under "no", and the old codes
# some phones still report for Hebrew, Indonesian, Yiddish and Filipino.
_SAME_LANGUAGE = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "ji": "yi", "tl": "fil"}


def _language_family(code: str) -> str:
    base = base_language(code)
    return _SAME_LANGUAGE.get(base, base)


def best_language(preferred: list[str | None], offered: list[str]) -> str | None:
    """The first preferred language the campaign offers (matching on the base language too)."""
    for pref in preferred:
        if not pref:
            continue
        if pref in offered:
            return pref
        family = _language_family(pref)
        for code in offered:
            if _language_family(code) == family:
                return code
    return None
