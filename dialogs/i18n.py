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
# A bot command inside a sentence (/forget), not part of a path, a URL or an HTML tag.
COMMAND = re.compile(r"(?<![\w/<])/[a-z][a-z0-9_]*")


def base_language(code: str | None) -> str:
    return (code or "en").replace("_", "-").split("-")[0].lower()


class Tr:
    """One participant's translator: catalog chain participant → campaign's first → English."""

    def __init__(self, lang: str, fallback: str | None = None) -> None:
        self.lang = lang
        chain = [lang]
        if fallback and fallback != lang:
            chain.append(fallback)
        if "en" not in chain:
            chain.append("en")
        self._t = gettext.translation(DOMAIN, localedir=str(LOCALES_DIR), languages=chain, fallback=True)
        # the language the interface text actually comes in (the first of the chain with a catalog)
        self.interface_lang = next((code for code in chain if gettext.find(
            DOMAIN, localedir=str(LOCALES_DIR), languages=[code])), "en")

    def gettext(self, message: str) -> str:
        """`message` in this participant's language (bot commands isolated in right-to-left text)."""
        return self._commands(self._t.gettext(message))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The plural form CLDR gives for `n` in this language."""
        return self._commands(self._t.ngettext(singular, plural, n))

    def _commands(self, text: str) -> str:
        # "/forget" between Arabic words would otherwise show as "forget/"
        return COMMAND.sub(lambda m: self.isolate(m.group(0)), text) if self.rtl else text

    @property
    def rtl(self) -> bool:
        """Right-to-left text ahead: campaign texts in `lang`, or the interface falling back to one."""
        return bool({base_language(self.lang), base_language(self.interface_lang)} & RTL_LANGUAGES)

    def isolate(self, text: str) -> str:
        """Keep numbers, ids and Latin words in their own direction inside right-to-left text."""
        return f"{FSI}{text}{PDI}" if self.rtl else text

    def number(self, value: int | float) -> str:
        try:
            return self.isolate(format_decimal(value, locale=self.lang.replace("-", "_")))
        except (UnknownLocaleError, ValueError):
            return self.isolate(str(value))

    def fraction(self, a: int, b: int) -> str:
        """Progress such as 2/6, reading left to right even inside Arabic text."""
        return self.isolate(f"{a}/{b}")


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


def best_language(preferred: list[str | None], offered: list[str]) -> str | None:
    """The first preferred language the campaign offers (matching on the base language too)."""
    for pref in preferred:
        if not pref:
            continue
        if pref in offered:
            return pref
        base = base_language(pref)
        for code in offered:
            if base_language(code) == base:
                return code
    return None
