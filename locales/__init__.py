"""Gettext catalogs of everything the bot says that is not campaign content."""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent
DOMAIN = "coassess"


def available() -> list[str]:
    """Languages with a catalog, English first."""
    langs = sorted(p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return sorted(set(langs) | {"en"}, key=lambda x: (x != "en", x))


def compile_catalogs(force: bool = False) -> list[str]:
    """Compile every .po to .mo when it is missing or older; returns the languages compiled."""
    done = []
    for po in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"):
        mo = po.with_suffix(".mo")
        if force or not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=po.parent.parent.name)
            tmp = mo.with_suffix(".mo.tmp")
            with tmp.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            tmp.replace(mo)
            done.append(po.parent.parent.name)
    translations.cache_clear()
    return done


@lru_cache(maxsize=64)
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog for `lang`, falling back to English (msgids are English)."""
    try:
        return gettext.translation(DOMAIN, localedir=str(LOCALES_DIR), languages=[lang])
    except (FileNotFoundError, OSError):
        return gettext.NullTranslations()
