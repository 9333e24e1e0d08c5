"""The console's own gettext domain ("web"): English source, officers' languages as catalogs come."""

from __future__ import annotations

import gettext
import io
from functools import lru_cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from locales import LOCALES_DIR

DOMAIN = "web"


@lru_cache(maxsize=32)
def translations(lang: str) -> gettext.NullTranslations:
    """The console's catalog for `lang` (read from its .po, so no compile step is needed);
    English when there is none."""
    po = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def pick_language(accept_language: str | None) -> str:
    """The first language of the browser's Accept-Language that has a console catalog."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code and (code == "en" or (LOCALES_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po").exists()):
            return code
    return "en"
