"""How complete each interface catalog is: untranslated and fuzzy entries, placeholder mismatches.

The messages to translate are extracted afresh from the source (as `make catalogs` does), so a
text added to the code but not yet to the catalogs counts as untranslated everywhere.
"""

from __future__ import annotations

import gettext
import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from locales import DOMAIN, LOCALES_DIR, available

ROOT = LOCALES_DIR.parent
SOURCE_DIRS = ("bot", "dialogs")  # the same folders `make catalogs` extracts from

MsgId = str | tuple[str, str]


@dataclass(frozen=True)
class CatalogCoverage:
    """One language's interface catalog measured against the messages in the source."""

    lang: str
    total: int
    untranslated: list[MsgId] = field(default_factory=list)
    fuzzy: list[MsgId] = field(default_factory=list)
    placeholder_mismatches: list[tuple[MsgId, str]] = field(default_factory=list)
    missing_catalog: bool = False

    @property
    def translated(self) -> int:
        return self.total - len(self.untranslated)

    @property
    def percent(self) -> float:
        return 100.0 * self.translated / self.total if self.total else 100.0

    @property
    def complete(self) -> bool:
        return (not self.missing_catalog and not self.untranslated and not self.fuzzy
                and not self.placeholder_mismatches)


PRINTF = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifr]")


def placeholders(text: str) -> Counter[str] | None:
    """The `{name}` and `%(name)s` fields of a message, or None when its braces would break
    `str.format`."""
    try:
        fields = Counter(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)
    except ValueError:
        return None
    fields.update(f"%({name})" for name in PRINTF.findall(text))
    return fields


# The count of a plural message ({n} or %(n)s in every ngettext call of the code).
COUNT = frozenset({"n", "%(n)"})


def plural_form_fits(got: set[str], source: set[str], *, one_number: bool = False) -> bool:
    """Whether a translation names the fields of its source: each at least once (a form may repeat
    one), none added. A plural form that serves exactly one number (`one_number`) may leave the
    count out, as a language that says "two minutes" in one word does (Arabic دقيقتين), or "one
    coin" without a digit; a form for many numbers (Russian 1, 21, 31 …) must show which."""
    if one_number:
        return got <= source and source - got <= COUNT
    return got == source


def one_number_forms(plural_expr: str) -> set[int]:
    """The plural forms a catalog's `Plural-Forms` rule gives to exactly one number."""
    rule = gettext.c2py(plural_expr)
    served = Counter(rule(n) for n in range(1000))
    return {form for form, count in served.items() if count == 1}


def source_messages(root: Path = ROOT, dirs: Iterable[str] = SOURCE_DIRS) -> dict[MsgId, set[str]]:
    """Every msgid marked in the source (per `babel.cfg`), with the files it appears in."""
    with (root / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[MsgId, set[str]] = {}
    for d in dirs:
        if not (root / d).is_dir():
            continue
        for filename, _, message, _, _ in extract_from_dir(str(root / d), method_map, options_map,
                                                           keywords={}):
            msgid: MsgId = message if isinstance(message, str) else (message[0], message[1])
            if msgid:
                found.setdefault(msgid, set()).add(f"{d}/{filename}")
    return found


def read_catalog(lang: str) -> Catalog | None:
    po = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return None
    with po.open("rb") as fh:
        return read_po(fh, locale=lang)


def check_catalog(lang: str, wanted: Iterable[MsgId]) -> CatalogCoverage:
    """Measure `lang`'s catalog against the msgids in `wanted`."""
    wanted = list(wanted)
    catalog = read_catalog(lang)
    if catalog is None:
        return CatalogCoverage(lang, len(wanted), untranslated=wanted, missing_catalog=True)
    nplurals = catalog.num_plurals or get_plural(lang).num_plurals
    untranslated: list[MsgId] = []
    fuzzy: list[MsgId] = []
    mismatches: list[tuple[MsgId, str]] = []
    for msgid in wanted:
        message = catalog.get(msgid[0] if isinstance(msgid, tuple) else msgid)
        if message is None:
            untranslated.append(msgid)
            continue
        forms = list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]
        single = one_number_forms(catalog.plural_expr) if isinstance(msgid, tuple) else set()
        if isinstance(msgid, tuple):
            source = placeholders(msgid[0]) or Counter()
            source |= placeholders(msgid[1]) or Counter()
            if len(forms) < nplurals:
                forms += [""] * (nplurals - len(forms))
        else:
            source = placeholders(msgid) or Counter()
        if not all(forms):
            untranslated.append(msgid)
            continue
        if message.fuzzy:
            fuzzy.append(msgid)
        for i, form in enumerate(forms):
            got = placeholders(form)
            if got is None or not plural_form_fits(set(got), set(source), one_number=i in single):
                mismatches.append((msgid, form))
    return CatalogCoverage(lang, len(wanted), untranslated, fuzzy, mismatches)


def coverage(langs: Iterable[str] | None = None) -> list[CatalogCoverage]:
    """Every shipped catalog (or `langs`), measured against the source, English first."""
    wanted = sorted(source_messages(), key=lambda m: m if isinstance(m, str) else m[0])
    return [check_catalog(lang, wanted) for lang in (langs or available())]
