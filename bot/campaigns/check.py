"""Checking a campaign file: every problem, with its line and the question or option it concerns."""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from pydantic import TypeAdapter, ValidationError

from bot.campaigns.schema import (
    CAMPAIGN_ID_PATTERN,
    ID_PATTERN,
    INVITE_CODE_PATTERN,
    MAX_INTRO_TEXT,
    MAX_OPTION_TEXT,
    MAX_OPTIONS,
    MAX_QUESTION_TEXT,
    MAX_TITLE_TEXT,
    OTHER,
    PREFER_NOT,
    QUESTION_TYPES,
    CampaignSpec,
    Dimension,
    InviteSpec,
    Option,
    Question,
)
from bot.campaigns.source import Path_, Source, SourceError, parse, read_text

NEEDS_OPTIONS = {"choice", "multi", "rank", "budget"}
_TEXT_MAPS = {"title", "intro", "text"}
TYPE_KEYS = {
    "scale": {"rating"}, "labels": {"rating"}, "options": NEEDS_OPTIONS, "other": {"choice", "multi"},
    "tokens": {"budget"}, "pick": {"rank"}, "voice": {"text"},
}


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None
    where: str | None = None  # e.g. "question 'ease', option 'hours'"

    def render(self, name: str) -> str:
        loc = f"{name}:{self.line}" if self.line else name
        return f"{loc}: {self.where + ': ' if self.where else ''}{self.message}"


@dataclass
class CheckResult:
    name: str
    problems: list[Problem] = field(default_factory=list)
    spec: CampaignSpec | None = None
    source: Source | None = None
    # not wrong, but worth a second look (a question asking for a phone number); never blocks loading
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.spec is not None

    def summary(self) -> str:
        s = self.spec
        assert s is not None
        return (f"{self.name}: OK — campaign '{s.id}', {_count(len(s.questions), 'question')}, "
                f"{_count(len(s.groups), 'group dimension')}, {_count(len(s.invites), 'invite')}, "
                f"{_count(len(s.languages), 'language')} ({', '.join(s.languages)}); "
                f"about {_count(s.minutes(), 'minute')} for a participant, as the consent screen says")


# Every key a campaign file may use anywhere, for "did you mean" on a misspelt one.
_KEYS = sorted({f for m in (CampaignSpec, Question, Dimension, Option, InviteSpec) for f in m.model_fields})

# ISO 639-2/3 codes with the two-letter code Telegram and Babel use (som -> so, per -> fa, prs -> fa-AF)
_LANGUAGE_ALIASES: dict[str, str] = dict(get_global("language_aliases"))

def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def check_file(path: str | Path) -> CheckResult:
    """Read and check a campaign file (and the recordings it names); never raises for bad content."""
    path = Path(path)
    try:
        text = read_text(path)
    except SourceError as exc:
        return CheckResult(str(path), [Problem(exc.message, exc.line)])
    return check_text(text, str(path), base_dir=path.parent)


def check_text(text: str, name: str = "<campaign>", base_dir: Path | None = None) -> CheckResult:
    """Check campaign text; recordings it names are looked for relative to `base_dir` (default: here)."""
    result = CheckResult(name)
    try:
        src = parse(text, name)
    except SourceError as exc:
        result.problems.append(Problem(exc.message, exc.line))
        return result
    except RecursionError:
        result.problems.append(Problem("the file is nested too deeply to be a campaign"))
        return result
    result.source = src
    if not isinstance(src.data, dict):
        result.problems.append(Problem("a campaign file must be a set of 'key: value' lines "
                                       "starting with 'id:'", 1))
        return result
    checker = _Checker(src, base_dir or Path("."))
    checker.structure()
    checker.semantics()
    result.problems = sorted(set(checker.problems), key=lambda p: (p.line or 0, p.message))
    result.warnings = checker.warnings
    if not result.problems:
        result.spec = checker.spec
    return result


def _where(data: Any, path: Path_) -> str | None:
    """Name the question, option, group or invite that `path` points into."""
    parts: list[str] = []
    node = data
    for i, key in enumerate(path):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(key, int) and isinstance(node, dict) and i > 0:
            kind = {"questions": "question", "options": "option", "groups": "group dimension",
                    "invites": "invite"}.get(str(path[i - 1]))
            ident = node.get("id", node.get("code")) if kind else None
            if kind:
                parts.append(f"{kind} '{_short(ident, 40)}'" if ident is not None else f"{kind} #{key + 1}")
    return ", ".join(parts) or None


class _Shown:
    """A value's shortened repr, so a message never echoes a whole pasted block back."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _short(value: Any, limit: int = 80) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    try:
        text = repr(value)
    except RecursionError:
        return _Shown("(a deeply nested value)")
    except ValueError:  # an integer with thousands of digits
        return _Shown("(a number with thousands of digits)")
    return value if len(text) <= limit else _Shown(text[: limit - 1] + "…")


def _friendly(err: dict[str, Any]) -> str:
    kind, loc, value = err["type"], err["loc"], _short(err.get("input"))
    key = loc[-1] if loc else ""
    if kind == "missing":
        if key == "type":
            return f"'type' is missing: add a line 'type: ...' with one of {', '.join(QUESTION_TYPES)}"
        return f"'{_short(key, 40)}' is missing: add a line '{_short(key, 40)}: ...' (see docs/campaigns.md)"
    if err.get("input", 0) is None and kind not in {"missing"}:
        return (f"'{_short(key, 40)}' is empty: give it a value after the colon "
                "(see docs/campaigns.md)")
    if kind == "string_too_short":
        return f"'{_short(key, 40)}' must not be empty"
    if kind == "string_too_long":
        limit = err.get("ctx", {}).get("max_length")
        return f"'{_short(key, 40)}' is too long: keep it to {limit} characters"
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(str(key), _KEYS, n=1, cutoff=0.75)
        if near:
            return f"unknown key '{_short(key, 40)}': did you mean '{near[0]}'?"
        return f"unknown key '{_short(key, 40)}' (check the spelling; see docs/campaigns.md for the keys allowed here)"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern")
        if pattern == ID_PATTERN:
            return (f"'{value}' is not a valid id: use 1 to 24 lowercase letters a-z, digits and _ "
                    "(no spaces or capitals)")
        if pattern == CAMPAIGN_ID_PATTERN:
            return f"'{value}' is not a valid campaign id: use 3 to 40 lowercase letters, digits and -"
        if pattern == INVITE_CODE_PATTERN:
            return f"'{value}' is not a valid invite code: use 1 to 20 letters, digits and -"
    if kind == "literal_error":
        if key == "type":
            return f"unknown question type '{value}': use one of {', '.join(QUESTION_TYPES)}"
        return f"'{value}' is not allowed here: {err['msg'].replace('Input should be ', 'use ')}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"'{_short(key, 40)}' must be a whole number, not {value!r}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"'{_short(key, 40)}' must be true or false, not {value!r}"
    if kind in {"dict_type", "model_type"} and isinstance(key, int) and len(loc) > 1 and loc[-2] == "options":
        return (f"option #{key + 1} must look like {{id: ..., text: {{language: ...}}}}, not {value!r}")
    if kind in {"dict_type", "model_type"} and key in {"text", "title", "intro"} and isinstance(err.get("input"), str):
        return (f"'{key}' must give the text per language, e.g. {key}: {{en: {_short(err['input'], 30)}}}, "
                f"not {value!r}")
    if kind in {"dict_type", "model_type"}:
        return f"'{_short(key, 40)}' must be a set of 'key: value' lines, not {value!r}"
    if kind == "list_type":
        return f"'{_short(key, 40)}' must be a list (lines starting with '- ' or [a, b]), not {value!r}"
    if kind == "string_type":
        return f"'{_short(key, 40)}' must be text, not {value!r}"
    if kind in {"datetime_parsing", "datetime_type", "datetime_from_date_parsing"}:
        return f"'{_short(key, 40)}' must be a date and time such as 2026-12-01T09:00:00Z, not {value!r}"
    if kind == "too_short":
        return f"'{_short(key, 40)}' must not be empty"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return f"'{_short(key, 40)}' {err['msg'].lower().replace('input should be', 'must be')}, not {value!r}"
    return f"'{_short(key, 40)}': {err['msg']}"


class _Checker:
    def __init__(self, src: Source, base_dir: Path = Path(".")) -> None:
        self.src = src
        self.base_dir = base_dir
        self.recordings: dict[Path, str | None] = {}  # each file decoded once: None or what is wrong
        self.warnings: list[Problem] = []
        self.data: dict[str, Any] = src.data
        self.problems: list[Problem] = []
        self.spec: CampaignSpec | None = None
        langs = self.data.get("languages")
        self.languages = [x for x in langs if isinstance(x, str)] if isinstance(langs, list) else []

    def add(self, path: Path_, message: str) -> None:
        where = _where(self.data, path)
        if where is None and path and path[0] in {"title", "intro"} and not message.startswith(f"'{path[0]}'"):
            where = str(path[0])
        self.problems.append(Problem(message, self.src.line_of(path), where))

    def structure(self) -> None:
        try:
            self.spec = CampaignSpec.model_validate(self.data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                # pydantic reports union members separately; keep the path the author wrote
                loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in
                            {"str", "int", "bool", "list[str]"})))
                if len(loc) >= 2 and loc[-2] in _TEXT_MAPS and err.get("input", "") is None:
                    continue  # an empty text: _texts says which language, or why
                self.add(loc, _friendly({**err, "loc": loc}))

    # -- semantics, on the raw data so that one bad question does not hide the others' problems

    def semantics(self) -> None:
        d = self.data
        self._languages()
        self._texts(("title",), d.get("title"), MAX_TITLE_TEXT)
        if "intro" in d:
            self._texts(("intro",), d.get("intro"), MAX_INTRO_TEXT)
        self._audio(("intro_audio",), d.get("intro_audio"))
        opens, closes = _when(d.get("opens")), _when(d.get("closes"))
        if opens and closes and opens >= closes:
            self.add(("closes",), f"'closes' ({closes:%Y-%m-%d %H:%M} UTC) must be after 'opens' "
                                  f"({opens:%Y-%m-%d %H:%M} UTC)")
        dims = self._dimensions()
        self._baseline(dims)
        self._invites(dims)
        self._questions()

    def _languages(self) -> None:
        seen: set[str] = set()
        valid: list[str] = []
        for i, code in enumerate(self.languages):
            if code in seen:
                self.add(("languages", i), f"language '{_short(code, 40)}' is listed twice")
            seen.add(code)
            base = code.split("-", 1)[0]
            if base != base.lower():
                self.add(("languages", i), f"write the language code '{_short(code, 40)}' with a lowercase "
                                           f"language part ('{base.lower()}{code[len(base):]}'), as Telegram does")
                continue
            alias = _LANGUAGE_ALIASES.get(base)
            if alias is not None and len(base) == 3 and len(alias.split("_")[0]) == 2:
                # Telegram gives people's languages as two-letter codes: 'som' would never match
                # a Somali speaker, who would get the language picker and then the fallback texts
                better = alias.replace("_", "-") + code[len(base):]
                self.add(("languages", i), f"write '{_short(code, 40)}' as '{better}' "
                                           f"({_lang_name(better)}): Telegram gives people's languages "
                                           "as two-letter codes, and the texts must use the same code")
                continue
            try:
                Locale.parse(code.replace("-", "_"))
                valid.append(code)
            except (UnknownLocaleError, ValueError):
                self.add(("languages", i), f"'{_short(code, 40)}' is not a language code Babel knows "
                                           "(use codes such as en, ar, so, uk, fa-AF)")
        # texts are checked only against languages that exist, to keep the list short
        self.languages = valid

    def _texts(self, path: Path_, texts: Any, limit: int) -> None:
        if not isinstance(texts, dict):
            return
        for lang in self.languages:
            value = texts.get(lang)
            if value is None or (isinstance(value, str) and not value.strip()):
                self.add(path, f"text missing in '{_short(lang, 40)}' ({_lang_name(lang)}): add a line '{lang}: ...'")
        for lang, value in texts.items():
            if value is None and isinstance(lang, str) and lang not in self.languages:
                first = next(((k, v) for k, v in texts.items() if isinstance(v, str)), ("en", "..."))
                self.add((*path, lang), f"'{_short(lang, 40)}' has no text: if it is part of the text before "
                                        f"it, put that text in quotes (a ',' inside {{...}} ends a text), "
                                        f"e.g. {first[0]}: \"{_short(first[1], 40)}, {_short(lang, 40)}\"")
                continue
            if self.languages and lang not in self.languages:
                self.add((*path, lang), f"'{_short(lang, 40)}' is not one of the campaign languages "
                                        f"({', '.join(self.languages)})")
            if isinstance(value, str) and len(value) > limit:
                self.add((*path, lang), f"the '{_short(lang, 40)}' text is {len(value)} characters; "
                                        f"keep it under {limit} so it fits one phone screen")
            elif value is not None and not isinstance(value, str):
                self.add((*path, lang), f"the '{_short(lang, 40)}' text must be text, not {_short(value)!r}")

    def _audio(self, path: Path_, audio: Any) -> None:
        """Each recording exists, is a sound file we can decode, and lasts at most a minute."""
        if not isinstance(audio, dict):
            return
        from bot.campaigns.audio import AudioError, read_recording

        for lang, name in audio.items():
            if self.languages and lang not in self.languages:
                self.add((*path, lang), f"'{_short(lang, 40)}' is not one of the campaign languages "
                                        f"({', '.join(self.languages)})")
            if not isinstance(name, str) or not name.strip():
                continue  # the structure check says it must be a file name
            file = self.base_dir / name
            if file not in self.recordings:
                try:
                    read_recording(file)
                    self.recordings[file] = None
                except AudioError as exc:
                    self.recordings[file] = str(exc)
                except OSError as exc:
                    self.recordings[file] = f"cannot read '{name}': {exc.strerror or exc}"
            problem = self.recordings[file]
            if problem is not None:
                if problem.startswith("file not found"):
                    problem = (f"recording '{_short(name, 60)}' not found (looked in {self.base_dir}): file "
                               "names are relative to the campaign file")
                elif not problem.startswith(("'", "cannot read '")):
                    problem = f"recording '{_short(name, 60)}' {problem}"
                self.add((*path, lang), problem)

    def _options(self, path: Path_, options: Any, reserved: str) -> list[str]:
        ids: list[str] = []
        if not isinstance(options, list):
            return ids
        if len(options) > MAX_OPTIONS:
            self.add(path, f"{len(options)} options is too many for one screen: keep it to {MAX_OPTIONS}")
        for j, opt in enumerate(options):
            if not isinstance(opt, dict):
                continue
            oid = opt.get("id")
            if isinstance(oid, str):
                if oid in ids:
                    self.add((*path, j, "id"), f"option id '{_short(oid, 40)}' is used twice")
                if oid == reserved:
                    hint = "use 'other: true'" if reserved == OTHER else "it is offered by itself"
                    self.add((*path, j, "id"), f"'{_short(oid, 40)}' is reserved ({hint}): choose another id")
                ids.append(oid)
            self._texts((*path, j, "text"), opt.get("text"), MAX_OPTION_TEXT)
            self._audio((*path, j, "audio"), opt.get("audio"))
        return ids

    def _dimensions(self) -> dict[str, list[str]]:
        dims: dict[str, list[str]] = {}
        groups = self.data.get("groups")
        if not isinstance(groups, list):
            return dims
        for i, dim in enumerate(groups):
            if not isinstance(dim, dict):
                continue
            did = dim.get("id")
            if isinstance(did, str) and did in dims:
                self.add(("groups", i, "id"), f"group dimension '{_short(did, 40)}' is defined twice")
            self._texts(("groups", i, "text"), dim.get("text"), MAX_QUESTION_TEXT)
            self._audio(("groups", i, "audio"), dim.get("audio"))
            ids = self._options(("groups", i, "options"), dim.get("options"), PREFER_NOT)
            if isinstance(did, str):
                dims[did] = ids
        return dims

    def _baseline(self, dims: dict[str, list[str]]) -> None:
        baseline = self.data.get("baseline")
        if not isinstance(baseline, dict):
            return
        for did, shares in baseline.items():
            if did not in dims:
                self.add(("baseline", did), f"baseline names group dimension '{_short(did, 40)}', which is "
                                            "not under 'groups:'")
                continue
            if not isinstance(shares, dict):
                continue
            total = 0.0
            for gid, share in shares.items():
                if gid not in dims[did]:
                    self.add(("baseline", did, gid), f"baseline names group '{_short(gid, 40)}', which is not an "
                                                     f"option of '{_short(did, 40)}' ({', '.join(dims[did])})")
                if isinstance(share, int | float) and not isinstance(share, bool):
                    if not 0 <= share <= 1:
                        self.add(("baseline", did, gid), f"share {_short(share)} must be between 0 and 1")
                    try:
                        total += share
                    except OverflowError:  # a whole number too big for a float; reported above
                        total = float("inf")
            if abs(total - 1) > 0.011:
                hint = " (write shares as fractions: 40% is 0.40)" if abs(total - 100) <= 1.1 else ""
                self.add(("baseline", did), f"the shares for '{_short(did, 40)}' add up to {total:.3g}; they must "
                                            f"add up to 1{hint}")

    def _invites(self, dims: dict[str, list[str]]) -> None:
        invites = self.data.get("invites")
        if not isinstance(invites, list):
            return
        codes: set[str] = set()
        for i, inv in enumerate(invites):
            if not isinstance(inv, dict):
                continue
            code = inv.get("code")
            if isinstance(code, str):
                if code in codes:
                    self.add(("invites", i, "code"), f"invite code '{_short(code, 40)}' is used twice")
                codes.add(code)
            groups = inv.get("groups") or {}
            if not isinstance(groups, dict):
                continue
            for did, value in groups.items():
                if did not in dims:
                    self.add(("invites", i, "groups", did), f"unknown group dimension '{_short(did, 40)}'")
                    continue
                for gid in value if isinstance(value, list) else [value]:
                    if gid not in dims[did]:
                        self.add(("invites", i, "groups", did), f"'{_short(gid, 40)}' is not an option of '{_short(did, 40)}'")

    def _questions(self) -> None:
        questions = self.data.get("questions")
        if not isinstance(questions, list):
            return
        seen: dict[str, dict[str, Any]] = {}
        for i, q in enumerate(questions):
            if not isinstance(q, dict):
                self.add(("questions", i), "each question must be a set of 'key: value' lines")
                continue
            path: Path_ = ("questions", i)
            qid, qtype = q.get("id"), q.get("type")
            if isinstance(qid, str) and qid in seen:
                self.add((*path, "id"), f"question id '{_short(qid, 40)}' is used twice")
            self._texts((*path, "text"), q.get("text"), MAX_QUESTION_TEXT)
            self._audio((*path, "audio"), q.get("audio"))
            if qtype == "text" and isinstance(q.get("text"), dict):
                asked = personal_detail([v for v in q["text"].values() if isinstance(v, str)])
                if asked is not None:
                    self.warnings.append(Problem(scrubbed_warning(asked), self.src.line_of((*path, "text")),
                                                 _where(self.data, path)))
            if isinstance(qtype, str) and qtype in QUESTION_TYPES:
                self._question_type(path, q, qtype)
            self._show_if(path, q, seen)
            if isinstance(qid, str):
                seen[qid] = q

    def _question_type(self, path: Path_, q: dict[str, Any], qtype: str) -> None:
        for key, types in TYPE_KEYS.items():
            if key in q and qtype not in types:
                self.add((*path, key), f"'{_short(key, 40)}' does not apply to a {qtype} question "
                                       f"(only to {', '.join(sorted(types))})")
        options = q.get("options")
        if qtype in NEEDS_OPTIONS:
            if not options:
                self.add(path, f"a {qtype} question needs 'options' (at least 2)")
            elif isinstance(options, list) and len(options) < 2 and not q.get("other"):
                self.add((*path, "options"), f"a {qtype} question needs at least 2 options")
            ids = self._options((*path, "options"), options, OTHER)
            pick = q.get("pick")
            if qtype == "rank" and isinstance(pick, int) and ids and pick > len(ids):
                self.add((*path, "pick"), f"pick is {_short(pick)} but there are only {len(ids)} options")
        if qtype == "rating":
            labels = q.get("labels")
            if isinstance(labels, dict):
                for lang in self.languages:
                    if lang not in labels:
                        self.add((*path, "labels"), f"labels missing in '{_short(lang, 40)}' ({_lang_name(lang)})")
                for lang, pair in labels.items():
                    if self.languages and lang not in self.languages:
                        self.add((*path, "labels", lang), f"'{_short(lang, 40)}' is not one of the campaign languages")
                    if not isinstance(pair, list) or len(pair) != 2:
                        self.add((*path, "labels", lang), f"labels in '{_short(lang, 40)}' must be two texts: "
                                                          "[lowest, highest]")
                    elif any(not isinstance(x, str) or len(x) > MAX_OPTION_TEXT for x in pair):
                        self.add((*path, "labels", lang), f"each label must be text under {MAX_OPTION_TEXT} characters")

    def _show_if(self, path: Path_, q: dict[str, Any], seen: dict[str, dict[str, Any]]) -> None:
        cond = q.get("show_if")
        if cond is None:
            return
        if not isinstance(cond, dict) or not cond:
            self.add((*path, "show_if"), "show_if must look like {question_id: [option, ...]}")
            return
        # ids of any type may appear in a broken file; only text ids can be named by show_if
        all_ids = {x.get("id") for x in self.data.get("questions", [])
                   if isinstance(x, dict) and isinstance(x.get("id"), str)}
        for ref, values in cond.items():
            where = (*path, "show_if", ref)
            if ref == q.get("id"):
                self.add(where, f"show_if names this question itself ('{_short(ref, 40)}'): it must "
                                "refer to an earlier question, whose answer decides whether this one "
                                "is asked")
                continue
            if ref not in seen:
                later = ref in all_ids
                message = (f"show_if names question '{_short(ref, 40)}', which "
                           + ("comes later: it must refer to an earlier question" if later
                              else "does not exist"))
                dims = {x.get("id") for x in self.data.get("groups") or [] if isinstance(x, dict)} \
                    if isinstance(self.data.get("groups"), list) else set()
                if not later and ref in dims:
                    message = (f"show_if names '{_short(ref, 40)}', which is a group dimension: show_if can "
                               "only name an earlier question (groups are compared in the reports)")
                elif not later:
                    near = difflib.get_close_matches(str(ref), list(seen), n=1, cutoff=0.6)
                    message += (f": did you mean '{near[0]}'?" if near else
                                f" (earlier questions: {', '.join(_short(x, 24) for x in seen) or 'none'})")
                self.add(where, message)
                continue
            target = seen[ref]
            ttype = target.get("type")
            # a rank answer is an order, not a choice: the bot never matches it (flow.chosen_values)
            if isinstance(ttype, str) and ttype in {"text", "info", "budget", "rank"}:
                self.add(where, f"show_if cannot depend on a {ttype} question ('{_short(ref, 40)}')")
                continue
            if not isinstance(values, list) or not values:
                self.add(where, "show_if needs a list of values, e.g. [hours, transport]")
                continue
            valid = _valid_values(target)
            for v in values:
                key = "yes" if v is True else "no" if v is False else str(v)
                if valid is not None and key not in valid:
                    self.add(where, f"'{_short(v, 40)}' is not an option of question '{_short(ref, 40)}' "
                                    f"(options: {', '.join(sorted(valid))})")


# What a written answer must not carry (bot/scrub.py takes it out before storage), and how a
# question asking for it reads, in the bot's languages. A question that asks for one gets nothing.
_PERSONAL = (
    ("phone", "a phone number", "phone numbers", "[phone]", re.compile(
        r"\b(phone|telephone|mobile|cell|whats ?app)\s*(number|no\b|#)|\bcontact number\b|"
        r"\byour (tele)?phone\b|\byour mobile\b|número de (teléfono|telefone)|numéro de téléphone|"
        r"номер телефон|رقم (الهاتف|الجوال|هاتفك|جوالك)|شماره (تلفن|موبایل)|lambarka taleefan|"
        r"numer telefonu|telefon numaran|numărul de telefon", re.IGNORECASE)),
    ("email", "an e-mail address", "e-mail addresses", "[email]", re.compile(
        r"e-?mail|correo electr|courriel|електронн|электронн|البريد الإلكتروني|ایمیل", re.IGNORECASE)),
    ("name", "a name", "names", "[name]", re.compile(
        r"\b(your|full|first|last|family|sur|given|contact)\s*name\b|^\s*name\s*[?:]?\s*$|"
        r"what is your name|\btu nombre\b|\bsu nombre\b|\bvotre nom\b|ваше ім|ваше имя|как вас зовут|"
        r"اسمك|نام شما|magacaaga|\badınız\b|\bisminiz\b|twoje imię|numele dumneavoastră", re.IGNORECASE)),
)


def personal_detail(texts: list[str]) -> str | None:
    """'phone', 'email' or 'name' when a question's text asks for one (in any of its languages), else None."""
    for kind, _what, _plural, _token, pattern in _PERSONAL:
        if any(pattern.search(t) for t in texts):
            return kind
    return None


def scrubbed_warning(kind: str) -> str:
    """The warning for a question asking for a personal detail, in an officer's words."""
    what, plural, token = next((w, pl, t) for k, w, pl, t, _ in _PERSONAL if k == kind)
    return (f"this question asks for {what}; answers will be stored as {token}, because the bot removes "
            f"{plural} from what people write, so that nobody can be identified. Ask something else, or "
            "leave the question out")


def _when(value: Any) -> datetime | None:
    """A date and time as the schema reads it (UTC when no zone is given), or None if it cannot be."""
    try:
        when = TypeAdapter(datetime).validate_python(value)
    except (ValidationError, TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _valid_values(q: dict[str, Any]) -> set[str] | None:
    qtype = q.get("type")
    if qtype == "rating":
        scale = q.get("scale", 5)
        # a huge or wrong scale is reported by the structure check; do not build its values
        ok = isinstance(scale, int) and not isinstance(scale, bool) and 2 <= scale <= 10
        return {str(i) for i in range(1, scale + 1)} if ok else None
    if qtype == "yesno":
        return {"yes", "no"}
    opts = q.get("options")
    if not isinstance(opts, list):
        return None
    values = {o.get("id") for o in opts if isinstance(o, dict) and isinstance(o.get("id"), str)}
    if q.get("other"):
        values.add(OTHER)
    return values


def _lang_name(code: str) -> str:
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name("en") or code
    except (UnknownLocaleError, ValueError):
        return code


