"""Frequent words per group: language-aware tokenisation with no model to download.

A Unicode-aware regular expression finds words in any script; small stop-word lists per
language remove the words that say nothing ("the", "و", "iyo", "і", "که", "de"). Arabic and
Persian letters are normalised (diacritics, tatweel, Arabic/Persian forms of yeh and kaf) so
that spellings of one word count together; Persian's zero-width non-joiner stays inside a
word. Scripts written without spaces (Chinese, Japanese, Thai) would need a segmenter and
are counted as whole runs; none of this project's campaign languages uses one.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

# Letters (any script) and marks, joined by apostrophes, hyphens or the Persian ZWNJ.
WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|[\u0300-\u036f\u064b-\u065f\u0670]|['’\u200c-](?=[^\W\d_]))*")
ARABIC_MARKS = re.compile(r"[\u064b-\u065f\u0670\u0640]")  # harakat, superscript alef, tatweel
ARABIC_FOLD = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "أ": "ا", "إ": "ا", "آ": "ا"})
PLACEHOLDERS = {"phone", "email", "link", "handle", "postcode", "name"}  # what scrubbing left in the text
MIN_LENGTH = 2

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("""a about after all also am an and any are as at be because been but by can
        could did do does for from get got had has have he her here him his how i if in into is it
        its just me more my no not of on one or our out so some than that the their them then there
        these they this to too up us very was we were what when where which who will with would you
        your it's i'm don't can't""".split()),
    "es": frozenset("""a al algo como con de del el ella en es esta este hay la las le lo los mas
        me mi muy más no nos o para pero por que qué se si sin sobre su sus también te tengo un una
        uno y ya yo""".split()),
    "ar": frozenset("""في من على الى إلى عن مع هذا هذه ذلك التي الذي ان أن إن او أو و ما لا لم لن
        كان كانت هو هي هم انا أنا نحن انت أنت كل بعض قد ثم عند غير بين حتى اذا إذا لي لك له
        يكون""".split()),
    "fa": frozenset("""و در به از که این آن با را برای تا یا هم می‌شود است بود شد هست نیست
        من ما تو شما او آنها خیلی یک هر اگر ولی اما چه چون نه بر کرد کنم کند باید""".split()),
    "so": frozenset("""iyo in ka ku u waa oo ah ee la aan ma si wax ay uu waxaa ayaa haddii laakiin
        kale aad waxay ayuu mid qof hadii iga igu""".split()),
    "uk": frozenset("""і й та а але в у на з із до від по за про для що як це цей ця ці той та
        не ні так то я ми ви він вона вони мене мені нам вам є був була було би б же ще дуже
        щоб коли""".split()),
    "ru": frozenset("""и в во на с со к по за из от до для что как это не ни да но а же бы
        я мы вы он она они мне нам вам был была было очень чтобы когда""".split()),
}


def normalise(word: str) -> str:
    """The form words are counted under: case-folded, Arabic-script spellings folded together."""
    word = unicodedata.normalize("NFKC", word).casefold()
    word = ARABIC_MARKS.sub("", word).translate(ARABIC_FOLD)
    return word.strip("'’\u200c-")


@lru_cache(maxsize=64)
def _stops(language: str) -> frozenset[str]:
    return frozenset(normalise(w) for w in STOP_WORDS.get(language, frozenset()) | STOP_WORDS["en"])


def words(text: str, language: str | None = None) -> list[tuple[str, str]]:
    """(counting key, word as written) for each content word of a text."""
    stops = _stops((language or "").split("-")[0].lower())
    out = []
    for m in WORD.finditer(text):
        surface = unicodedata.normalize("NFKC", m.group()).casefold().strip("'’\u200c-")
        key = normalise(surface)
        if len(key) < MIN_LENGTH or key in stops or key in PLACEHOLDERS:
            continue
        out.append((key, surface))
    return out


def tokenize(text: str, language: str | None = None) -> list[str]:
    """The content words of a text, normalised, without the stop words of its language (and English)."""
    return [key for key, _ in words(text, language)]


class WordCounter:
    """How many texts use each word (once per text), shown in its most common written form."""

    def __init__(self) -> None:
        self.texts: Counter[str] = Counter()
        self.forms: dict[str, Counter[str]] = {}

    def add(self, text: str, language: str | None = None) -> None:
        self.add_words(words(text, language))

    def add_words(self, found: list[tuple[str, str]]) -> None:
        """Count the (key, surface) pairs of one text, as `words` returns them."""
        seen: dict[str, str] = {}
        for key, surface in found:
            seen.setdefault(key, surface)
        self.texts.update(seen.keys())
        for key, surface in seen.items():
            self.forms.setdefault(key, Counter())[surface] += 1

    def frequent(self, min_count: int, top: int = 10) -> list[tuple[str, int]]:
        """The most used words, keeping only those used in at least `min_count` texts.

        The floor is the disclosure threshold: a rare word can identify its writer.
        """
        ranked = sorted(self.texts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(self.forms[w].most_common(1)[0][0], n) for w, n in ranked if n >= min_count][:top]


def document_frequencies(texts: Iterable[tuple[str, str | None]]) -> Counter[str]:
    """How many texts use each word (a word repeated in one answer counts once)."""
    counts: Counter[str] = Counter()
    for text, language in texts:
        counts.update(set(tokenize(text, language)))
    return counts
