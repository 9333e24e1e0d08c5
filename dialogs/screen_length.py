"""How long a campaign's screens are in each language, against what one phone screen shows."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from bot.campaigns.schema import CampaignSpec
from dialogs.i18n import tr

# What a participant takes in on one phone screen without scrolling (issue 16): every message the
# bot's own words make fits it in every shipped language (tests/test_words.py); a campaign's long
# intro or question can still push a screen over it, which `coassess campaign check` notes.
MAX_SCREEN = 600
_TAG = re.compile(r"<[^>]+>")


def visible_characters(text: str) -> int:
    """Characters a reader sees: no HTML tags, an entity as one, no invisible direction marks."""
    return sum(1 for c in html.unescape(_TAG.sub("", text)) if unicodedata.category(c) != "Cf")


@dataclass(frozen=True)
class LongScreen:
    lang: str
    where: str  # "the consent screen", "question 'idea'"
    length: int


def long_screens(spec: CampaignSpec, limit: int = MAX_SCREEN) -> list[LongScreen]:
    """The consent and question screens over `limit` visible characters, per campaign language.

    A question screen is counted as its progress, its text and the bot's hint for its type; the
    answer buttons are not in the message text.
    """
    from dialogs.survey import consent_text, multi_hint

    out = []
    for lang in spec.languages:
        t = tr(lang, spec.languages[0])
        consent = [f"<b>{spec.text(spec.title, lang)}</b>", spec.text(spec.intro, lang) if spec.intro else "",
                   consent_text(t, spec)]
        n = visible_characters("\n\n".join(x for x in consent if x))
        if n > limit:
            out.append(LongScreen(lang, "the consent screen (title, intro and the bot's consent)", n))
        total = len(spec.questions)
        for i, q in enumerate(spec.questions, 1):
            text = spec.text(q.text, lang)
            parts = [t.fraction(i, total), text]
            if q.type == "multi":
                parts.append(multi_hint(t, text))
            elif q.type == "rank":
                parts.append(t.gettext("Which is number {n} for you? Tap it.").format(n=t.number(1)))
            elif q.type == "budget":
                parts.append(t.ngettext("{n} coin left", "{n} coins left", q.tokens or 10)
                             .format(n=t.number(q.tokens or 10)))
            n = visible_characters("\n\n".join(parts))
            if n > limit:
                out.append(LongScreen(lang, f"question '{q.id}'", n))
    return out
