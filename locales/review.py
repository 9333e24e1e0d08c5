"""Whether a native speaker has reviewed each catalog: one line in the catalog's header comment.

    # Native review: Amina Yusuf, 2026-12-01      (who and when)
    # Native review: not yet
    # Native review: source language               (English: the msgids themselves)

A comment line rather than a header field: Babel, and so `make catalogs`, keeps a catalog's header
comment but drops header fields it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from locales import DOMAIN, LOCALES_DIR

LINE = re.compile(r"^#\s*Native review:\s*(?P<value>.*?)\s*$", re.MULTILINE | re.IGNORECASE)
REVIEWED = re.compile(r"(?P<who>.+?),\s*(?P<when>\d{4}-\d{2}-\d{2})")
NOT_YET = "not yet"
# Sent for native review first: the languages the translators' review of 2026 scored lowest
# (Somali 3.5, Tigrinya and Pashto 4 of 5), whose speakers are also the least likely to report a
# clumsy sentence themselves.
REVIEW_FIRST = ("so", "ti", "ps")
SOURCE = "source language"


@dataclass(frozen=True)
class Review:
    """What a catalog's header says about its native review."""

    lang: str
    reviewer: str | None = None
    date: date | None = None
    source: bool = False
    problem: str | None = None  # a line that says neither who and when, nor "not yet"

    @property
    def reviewed(self) -> bool:
        return self.source or (self.reviewer is not None and self.date is not None)

    def describe(self) -> str:
        if self.source:
            return "source"
        if self.reviewed:
            return f"{self.reviewer}, {self.date:%Y-%m-%d}"
        return "not yet"


def parse_review(lang: str, header: str) -> Review:
    """The review `header` (the comment lines above a catalog's first msgid) records for `lang`."""
    m = LINE.search(header)
    if m is None:
        return Review(lang, problem=f'no "# Native review:" line in its header (add "# Native review: {NOT_YET}")')
    value = m.group("value")
    if value.lower() == SOURCE:
        return Review(lang, source=True)
    if value.lower() == NOT_YET:
        return Review(lang)
    r = REVIEWED.fullmatch(value)
    if r:
        try:
            return Review(lang, reviewer=r.group("who").strip(), date=date.fromisoformat(r.group("when")))
        except ValueError:
            pass
    return Review(lang, problem=f'"# Native review: {value}" should be "# Native review: NAME, YYYY-MM-DD" '
                                f'or "# Native review: {NOT_YET}"')


def review_order(langs: list[str]) -> list[str]:
    """`langs` in the order to send them for review: REVIEW_FIRST, then the rest as given."""
    return sorted(langs, key=lambda x: REVIEW_FIRST.index(x) if x in REVIEW_FIRST else len(REVIEW_FIRST))


def review_status(lang: str) -> Review:
    """The review recorded in `lang`'s catalog (not reviewed when it has no catalog)."""
    po = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return Review(lang, problem="no catalog")
    text = po.read_text(encoding="utf-8")
    header = text.split('\nmsgid ""', 1)[0] if not text.startswith('msgid ""') else ""
    return parse_review(lang, header)
