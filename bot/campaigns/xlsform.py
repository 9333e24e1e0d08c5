"""Turning an XLSForm (the ODK/Kobo spreadsheet format) into a campaign file, listing every loss.

Councils and partners often already have a survey as an XLSForm. The import maps what a
campaign file can express and names, by sheet and row, everything it could not carry over:
an administrator must be able to see exactly what the Telegram survey will not ask.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from zipfile import BadZipFile, is_zipfile

import yaml
from babel import Locale, UnknownLocaleError
from pyxform import aliases
from pyxform.errors import PyXFormError
from pyxform.parsing.expression import parse_expression
from pyxform.question_type_dictionary import QUESTION_TYPE_DICT
from pyxform.xls2json import workbook_to_json
from pyxform.xls2json_backends import DefinitionData, xlsx_to_dict

from bot.campaigns.check import check_text, personal_detail, scrubbed_warning
from bot.campaigns.schema import MAX_OPTION_TEXT, MAX_OPTIONS, MAX_QUESTION_TEXT, MAX_TITLE_TEXT, OTHER

MAX_FORM_BYTES = 10_000_000
ID_LIMIT = 24
CAMPAIGN_ID_LIMIT = 40
RENAMED_OTHER = "other_option"

# Types an XLSForm may use that a campaign cannot ask in a chat, with the reason we give.
_METADATA = {
    "start", "end", "today", "deviceid", "device id", "subscriberid", "subscriber id", "simserial",
    "sim id", "phonenumber", "phone number", "username", "email", "audit", "start-geopoint",
    "background-audio", "background-geopoint", "imei", "start time", "end time", "get start time",
    "get end time", "get today", "get device id", "get phone number", "get sim id",
    "get subscriber id", "uri:deviceid", "uri:email", "uri:phonenumber", "uri:simserial",
    "uri:subscriberid", "uri:username",
}
_CANONICAL = {
    "integer": "integer", "int": "integer", "q int": "integer", "add integer prompt": "integer",
    "text": "text", "string": "text", "q string": "text", "add text prompt": "text",
    "note": "note", "q note": "note", "add note prompt": "note",
    "range": "range",
    "audio": "audio", "q audio": "audio", "add audio prompt": "audio",
}
# Columns whose content changes what a form does; dropping them must be said out loud.
_NOT_CARRIED = {
    "constraint": "answer checks (constraint) are not carried over",
    "choice_filter": "choice filters are not carried over: every choice is offered",
    "default": "default answers are not carried over",
    "calculation": "calculations are not carried over",
    "read_only": "read-only questions are not carried over: the question is asked",
    "repeat_count": "repeat counts are not carried over",
    "trigger": "triggers are not carried over",
    "media": "pictures, audio and video are not carried over",
    "image": "pictures are not carried over",
    "big-image": "pictures are not carried over",
    "video": "videos are not carried over",
}
_TRUE = {"yes", "true", "true()", "1", "y"}
_FALSE = {"no", "false", "false()", "0", "n", ""}


@dataclass(frozen=True)
class Finding:
    """Something on a sheet row that was left out, or carried over with a change."""

    sheet: str
    row: int | None
    message: str

    def render(self) -> str:
        return f"{self.sheet} row {self.row}: {self.message}" if self.row else f"{self.sheet}: {self.message}"


class XLSFormError(Exception):
    """The workbook cannot be imported at all; nothing should be written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class XLSFormImport:
    """The campaign made from a form: its YAML text, and what was left out or changed."""

    campaign: dict[str, Any]
    yaml_text: str = ""
    left_out: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)


@dataclass
class _Imported:
    """What a later `relevant` needs to know about an imported question."""

    id: str
    kind: str  # choice | multi | rank | rating | text | info
    options: dict[str, str] = field(default_factory=dict)  # XLSForm choice name -> option id
    range: tuple[float, float, int] | None = None  # (start, step, points) for a range rating


class _Unmappable(Exception):
    """A `relevant` expression that show_if cannot express; the message says why."""


# -- public entry point


def import_xlsform(path: str | Path, out_name: str = "campaign.yaml", media: str | Path | None = None,
                   out_dir: str | Path | None = None) -> XLSFormImport:
    """Read an XLSForm workbook and build a campaign file that passes `campaign check`.

    Args:
        path: the .xlsx workbook.
        out_name: the name the campaign file will have, for the hint in its header.
        media: the folder with the form's media files (the audio named in `audio::` and
            `media::audio::` columns); recordings are then named relative to `out_dir`.
        out_dir: the folder the campaign file will be written to (default: here).

    Raises:
        XLSFormError: the file is not a readable XLSForm (each problem names the sheet row),
            or nothing in it could be imported.
    """
    path = Path(path)
    workbook = _read_workbook(path)
    folder = Path(out_dir) if out_dir is not None else Path(".")
    result = _Converter(workbook, path, Path(media) if media is not None else None, folder).run()
    result.yaml_text = render_yaml(result, path.name, out_name)
    # The promise is a file that passes the check; if the mapping ever falls short of it,
    # say so instead of writing a file that cannot be loaded.
    checked = check_text(result.yaml_text, out_name, base_dir=folder)
    if not checked.ok:
        raise XLSFormError([f"{path}: the imported campaign would not pass the check:"]
                           + [p.render(out_name) for p in checked.problems])
    return result


# -- reading


def _read_workbook(path: Path) -> DefinitionData:
    if not path.is_file():
        raise XLSFormError([f"{path}: file not found"])
    if path.stat().st_size > MAX_FORM_BYTES:
        raise XLSFormError([f"{path}: the file is over {MAX_FORM_BYTES // 1_000_000} MB; "
                            "is this the right file?"])
    if path.suffix.lower() == ".xls":
        raise XLSFormError([f"{path}: this is an old-style .xls workbook. Open it in Excel or "
                            "LibreOffice and save it as .xlsx, then import that."])
    if not is_zipfile(path):
        raise XLSFormError([f"{path}: this is not an Excel .xlsx workbook. Save the form from "
                            "Excel, LibreOffice or Google Sheets as .xlsx and import that."])
    try:
        data = DefinitionData(fallback_form_name=path.stem, **xlsx_to_dict(str(path)))
    except (PyXFormError, BadZipFile, KeyError, OSError, ValueError) as exc:
        raise XLSFormError([f"{path}: cannot read the workbook: {exc}"]) from None
    if not data.survey:
        names = ", ".join(data.sheet_names or []) or "none"
        raise XLSFormError([f"{path}: there is no 'survey' sheet with questions (sheets found: "
                            f"{names}). An XLSForm needs sheets named survey and choices."])
    # pyxform's own reading of the form catches broken forms (unknown list names, duplicate
    # names, unbalanced groups) with its row numbers, before we interpret anything.
    try:
        workbook_to_json(data, fallback_form_name=path.stem, warnings=[])
    except PyXFormError as exc:
        said = re.sub(r"\[row\s*:\s*(\d+)\]\s*", r"row \1: ", str(exc)).strip()
        raise XLSFormError([f"{path}: this is not a valid XLSForm. pyxform says: {said}"]) from None
    return data


# -- names, ids, languages


def to_id(name: str, limit: int = ID_LIMIT) -> str:
    """A valid question/option id ([a-z0-9_], at most `limit`) made from an XLSForm name."""
    out = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower())
    out = re.sub(r"_+", "_", out).strip("_")[:limit].rstrip("_")
    return out or "q"


def to_campaign_id(name: str) -> str:
    """A valid campaign id ([a-z0-9-], 3 to 40) made from a form id or file name."""
    out = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")[:CAMPAIGN_ID_LIMIT].strip("-")
    if len(out) < 3:
        out = f"form-{out}".strip("-") if out else "imported-form"
    return out


def _unique(candidate: str, taken: set[str], limit: int = ID_LIMIT) -> str:
    if candidate not in taken:
        return candidate
    n = 2
    while True:
        suffix = f"_{n}"
        alt = candidate[: limit - len(suffix)] + suffix
        if alt not in taken:
            return alt
        n += 1


def _babel_code(code: str) -> str | None:
    """`code` if Babel knows it as a language (so `campaign check` will accept it)."""
    try:
        Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return code


# Names people write that Babel does not list (or lists for another language): checked first.
_LANGUAGE_NAMES = {"farsi": "fa", "dari": "fa-AF", "afan oromo": "om", "afaan oromoo": "om", "oromiffa": "om",
                   "kiswahili": "sw", "tigrigna": "ti", "tigrinya": "ti", "somali": "so", "pashtu": "ps",
                   "arabic": "ar", "english": "en", "ukranian": "uk"}
# Locales whose names for languages are read: the bot's own 14, and the ones forms are most often written in.
_NAMING_LOCALES = ("en", "fr", "de", "es", "it", "pt", "nl", "ar", "so", "ti", "am", "fa", "uk", "ru", "tr",
                   "pl", "ro", "ps", "sw", "om")


@lru_cache(maxsize=1)
def _language_by_name() -> dict[str, str]:
    """Every language name Babel knows in the naming locales (English, native, French ...), lowercased."""
    names: dict[str, str] = {}
    for loc in _NAMING_LOCALES:
        try:
            languages = Locale(loc).languages
        except (UnknownLocaleError, ValueError):
            continue
        for code, name in languages.items():
            if "_" not in code:
                names.setdefault(name.lower(), code)
    for code, _name in list(Locale("en").languages.items()):
        if "_" in code:
            continue
        try:
            native = Locale(code).get_display_name(code)
        except (UnknownLocaleError, ValueError):
            continue
        if native:
            names.setdefault(native.lower(), code)
    return names


def language_by_name(name: str) -> str | None:
    """The code of a language written by name, in any common spelling ('Tigirigna', 'Amharique', 'ትግርኛ')."""
    key = " ".join(name.lower().split())
    if key in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[key]
    names = _language_by_name()
    if key in names:
        return names[key]
    near = difflib.get_close_matches(key, list(names), n=3, cutoff=0.8)
    codes = {names[n] for n in near}
    # a misspelling is accepted only when every close name is the same language ("farsi" is not)
    return codes.pop() if len(codes) == 1 else None


def language_code(spec: str) -> str | None:
    """The code of an XLSForm language name: 'Arabic (ar)' -> 'ar', 'Somali' -> 'so', 'uk' -> 'uk'."""
    spec = spec.strip()
    m = re.search(r"\(([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*)\)\s*$", spec)
    if m:
        return _babel_code(m.group(1).replace("_", "-"))
    if re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", spec) and _babel_code(spec):
        return spec
    code = language_by_name(spec)
    # Babel names more languages than it has data for; the check needs the data
    return _babel_code(code) if code else None


# -- ODK's Markdown, as plain text (campaign texts are shown as written, never parsed)

_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_TAG = re.compile(r"</?(?:span|font|b|i|u|em|strong|br|p)\b[^>]*>", re.IGNORECASE)


def odk_markdown_to_text(text: str) -> str:
    """ODK Collect's Markdown (**bold**, *italics*, [text](url), # headings, \\* escapes, <span>) as plain text.

    A campaign text is shown exactly as written, so `**Please**` would reach the chat with its
    stars. Links keep their address, in brackets after the words.
    """
    if not any(c in text for c in "*_[#\\<"):
        return text
    held: list[str] = []

    def hold(m: re.Match[str]) -> str:
        held.append(m.group(1))
        return f"\x00{len(held) - 1}\x00"

    out = _ESCAPED.sub(hold, text)
    out = _LINK.sub(lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", out)
    out = _STRONG.sub(r"\2", out)
    out = _EMPHASIS.sub(r"\2", out)
    out = _HEADING.sub("", out)
    out = _TAG.sub(lambda m: "\n" if m.group(0).lower().startswith("<br") else "", out)
    return re.sub("\x00(\\d+)\x00", lambda m: held[int(m.group(1))], out)


# -- Likert-like choice lists, which read better as ratings with their end labels

_INTENSIFIERS = {"very", "extremely", "strongly", "completely", "totally", "highly", "really"}
_LIKERT_PAIRS = (("poor", "excellent"), ("terrible", "excellent"), ("never", "always"),
                 ("not at all", "extremely"), ("not at all", "completely"), ("not at all", "very"),
                 ("very bad", "excellent"), ("awful", "excellent"), ("none", "all"))


def is_likert(first: str, last: str) -> bool:
    """Whether a 5-choice list running from `first` to `last` is an ordered scale ("Very bad" … "Very good")."""
    a = " ".join(re.sub(r"[^\w\s]", " ", first.lower()).split())
    b = " ".join(re.sub(r"[^\w\s]", " ", last.lower()).split())
    if not a or not b or a == b:
        return False
    wa, wb = a.split()[0], b.split()[0]
    if wa == wb and wa in _INTENSIFIERS and len(a.split()) > 1 and len(b.split()) > 1:
        return True
    return any(a.startswith(x) and b.startswith(y) for x, y in _LIKERT_PAIRS)


# -- rendering YAML in the style of examples/clinic-access.yaml


class _Flow(dict):  # type: ignore[type-arg]
    """A mapping written on one line: options read like a table."""


class _FlowList(list):  # type: ignore[type-arg]
    """A list written on one line, e.g. languages: [en, ar]."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: ARG002
        # Indent list items under their key, as people write YAML by hand.
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line and space-edged texts in double quotes, so that the file never depends on
    # YAML's subtle folding rules when a translator edits it later.
    style = '"' if ("\n" in value or value != value.strip()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(_Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(str, _str)


def _comment(text: str) -> str:
    return " ".join(text.split())


def render_yaml(result: XLSFormImport, source_name: str, out_name: str) -> str:
    """The campaign file text: a header naming what was left out, then the campaign."""
    head = [f"# Imported from {source_name} with `coassess campaign import-xlsform`.",
            f"# Check it with: coassess campaign check {out_name}"]
    if result.left_out:
        head.append("# Left out or not carried over (the bot will not ask or apply these):")
        head += [f"#   {_comment(f.render())}" for f in result.left_out]
    if result.notes:
        head.append("# Changed on import (check these):")
        head += [f"#   {_comment(f.render())}" for f in result.notes]
    body = yaml.dump(result.campaign, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=10_000)
    return "\n".join(head) + "\n" + body


# -- conversion


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class _Converter:
    def __init__(self, data: DefinitionData, path: Path, media: Path | None = None,
                 out_dir: Path = Path(".")) -> None:
        self.data = data
        self.path = path
        self.media = media
        self.out_dir = out_dir
        self.left_out: list[Finding] = []
        self.notes: list[Finding] = []
        self.errors: list[str] = []
        settings = (data.settings or [{}])[0] if data.settings else {}
        self.settings: dict[str, str] = settings
        self.languages: list[str] = []
        self.columns: dict[str, dict[str, str]] = {}  # "label"/"hint" -> column -> language
        self.imported: dict[str, _Imported] = {}  # by XLSForm name
        self.dropped: set[str] = set()  # XLSForm names left out
        self.question_ids: set[str] = set()

    def run(self) -> XLSFormImport:
        self._languages()
        if self.errors:
            raise XLSFormError(self.errors)
        choices = self._choices()
        questions = self._survey(choices)
        if self.errors:
            raise XLSFormError(self.errors)
        if not any(q["type"] != "info" for q in questions):
            raise XLSFormError([f"{self.path}: no question in the form could be imported"
                                + (" (see the rows listed above)" if self.left_out else "")
                                + ". A campaign needs at least one question."]
                               + [f.render() for f in self.left_out])
        campaign: dict[str, Any] = {
            "id": self._campaign_id(),
            "mode": "coassessment",
            "languages": _FlowList(self.languages),
            "title": self._title(),
            "questions": questions,
        }
        return XLSFormImport(campaign, left_out=self.left_out, notes=self.notes)

    # settings and languages

    def _campaign_id(self) -> str:
        form_id = self.settings.get("form_id") or self.path.stem
        cid = to_campaign_id(form_id)
        if cid != form_id:
            self.notes.append(Finding("settings", 2 if self.settings.get("form_id") else None,
                                      f"form id '{form_id}' became campaign id '{cid}'"))
        return cid

    def _title(self) -> dict[str, str]:
        title = self.settings.get("form_title") or self.settings.get("form_id") or self.path.stem
        short = _shorten(title, MAX_TITLE_TEXT)
        if short != title:
            self.notes.append(Finding("settings", 2, f"the form title was shortened to {MAX_TITLE_TEXT} "
                                                     "characters"))
        if len(self.languages) > 1:
            self.notes.append(Finding("settings", 2 if self.settings else None,
                                      "XLSForm titles have no translations: the title is the same in "
                                      f"every language ({', '.join(self.languages[1:])}); translate it"))
        return {lang: short for lang in self.languages}

    def _languages(self) -> None:
        headers: list[str] = []
        for sheet in (self.data.survey_header, self.data.choices_header):
            for row in sheet or []:
                headers += [h for h in row if h not in headers]
        default_spec = (self.settings.get("default_language") or "").strip()
        default = language_code(default_spec) if default_spec else None
        if default_spec and default is None:
            self.errors.append(f"{self.path}: settings row 2: default_language '{default_spec}' is not "
                               "a language Babel knows. Write it as 'English (en)' with the code in "
                               "brackets.")
        found: list[str] = []
        self.columns["audio"] = {}
        for h in headers:
            # audio::English (en), media::audio::English (en), or audio / media::audio (the default language)
            m = re.fullmatch(r"(?:media::)?audio(?:::(.+))?", h.strip())
            if m:
                code = language_code(m.group(1)) if m.group(1) else ""
                if code is None:
                    self.left_out.append(Finding("survey", 1, f"column '{h}': cannot tell which language "
                                                              f"'{m.group(1)}' is; its recordings were left "
                                                              "out. Name it like 'audio::Somali (so)'."))
                else:
                    self.columns["audio"][h] = code
        for kind in ("label", "hint"):
            self.columns[kind] = {}
            for h in headers:
                if not h.startswith(f"{kind}::"):
                    continue
                spec = h.split("::", 1)[1]
                code = language_code(spec)
                if code is None:
                    # only this column is set aside; the rest of the form is imported
                    self.left_out.append(Finding(
                        "survey", 1, f"column '{h}': cannot tell which language '{spec}' is, so this column "
                                     f"was left out. Name it like '{kind}::Somali (so)', with the language "
                                     "code in brackets, and import again."))
                    continue
                self.columns[kind][h] = code
                if code not in found:
                    found.append(code)
        plain = default or (found[0] if found else "en")
        for kind in ("label", "hint"):
            if kind in headers:
                # pyxform treats an unsuffixed label as the default language
                self.columns[kind] = {kind: plain, **self.columns[kind]}
        if "label" in headers and not default and not found:
            self.notes.append(Finding("settings", None, "no default_language in the settings sheet: "
                                                        "the labels were taken to be English (en)"))
        # default_language only names the unsuffixed columns; with none, it adds no language
        if plain not in found and ("label" in headers or not found):
            found.insert(0, plain)
        elif default and default in found:
            found.remove(default)
            found.insert(0, default)
        self.languages = found
        plain_audio = [h for h, code in self.columns["audio"].items() if code == ""]
        for h in plain_audio:
            self.columns["audio"][h] = plain

    def _texts(self, row: dict[str, str], kind: str = "label") -> dict[str, str]:
        out: dict[str, str] = {}
        for column, lang in self.columns.get(kind, {}).items():
            value = odk_markdown_to_text((row.get(column) or "").strip()).strip()
            # an explicit language column wins over the unsuffixed default column
            if value and (lang not in out or column != kind):
                out[lang] = value
        return out

    def _text(self, sheet: str, row_num: int, row: dict[str, str], what: str, limit: int) -> dict[str, str] | None:
        raw = [str(row.get(c) or "") for kind in ("label", "hint") for c in self.columns.get(kind, {})]
        if any(odk_markdown_to_text(x) != x for x in raw):
            self.notes.append(Finding(sheet, row_num, f"the {what} uses ODK formatting (bold, italics, links, "
                                                      "headings or \\ escapes): it was turned into plain "
                                                      "text, links as 'text (address)'"))
        labels = self._texts(row)
        if not labels:
            return None
        hints = self._texts(row, "hint")
        base = labels.get(self.languages[0]) or next(iter(labels.values()))
        base_lang = self.languages[0] if self.languages[0] in labels else next(iter(labels))
        missing = [lang for lang in self.languages if lang not in labels]
        if missing:
            self.notes.append(Finding(sheet, row_num, f"the {what} has no text in {', '.join(missing)}: "
                                                      f"the '{base_lang}' text was copied; translate it"))
        texts: dict[str, str] = {}
        for lang in self.languages:
            text = labels.get(lang, base)
            hint = hints.get(lang) or (hints.get(base_lang) if lang in missing else None)
            if hint:
                text = f"{text}\n{hint}"
            if len(text) > limit:
                self.notes.append(Finding(sheet, row_num, f"the '{lang}' {what} is {len(text)} characters: "
                                                          f"shortened to {limit}"))
                text = _shorten(text, limit)
            texts[lang] = text
        if any("${" in t for t in texts.values()):
            self.notes.append(Finding(sheet, row_num, f"the {what} refers to another answer with "
                                                      "${...}; a campaign text cannot fill that in, so "
                                                      "it shows as written: reword it"))
        return texts

    # choices

    def _choices(self) -> dict[str, list[tuple[int, dict[str, str]]]]:
        lists: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for i, row in enumerate(self.data.choices or []):
            if not row:
                continue
            name = row.get("list_name") or row.get("list name")
            if name:
                lists.setdefault(name.strip(), []).append((i + 2, row))
        return lists

    def _options(self, list_name: str, rows: list[tuple[int, dict[str, str]]],
                 reserved: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        options: list[dict[str, Any]] = []
        names: dict[str, str] = {}
        taken: set[str] = set()
        for row_num, row in rows:
            name = str(row.get("name", "")).strip()
            if not name:
                self.left_out.append(Finding("choices", row_num, f"a choice of list '{list_name}' "
                                                                 "has no name; left out"))
                continue
            oid = to_id(name)
            if oid == reserved:
                oid = RENAMED_OTHER
            oid = _unique(oid, taken)
            if oid != name:
                why = (" ('other' is reserved in campaign files for 'other: true')"
                       if name.lower() == reserved else "")
                self.notes.append(Finding("choices", row_num, f"choice '{name}' became option id "
                                                              f"'{oid}'{why}"))
            text = self._text("choices", row_num, row, "choice label", MAX_OPTION_TEXT)
            if text is None:
                text = {lang: name for lang in self.languages}
                self.notes.append(Finding("choices", row_num, f"choice '{name}' has no label: its "
                                                              "name is shown instead"))
            taken.add(oid)
            names[name] = oid
            option = _Flow(id=oid, text=_Flow(text))
            audio = self._audio(row, "choices", row_num)
            if audio:
                option["audio"] = _Flow(audio)
            options.append(option)
        return options, names

    # survey

    def _survey(self, choices: dict[str, list[tuple[int, dict[str, str]]]]) -> list[dict[str, Any]]:
        questions: list[dict[str, Any]] = []
        # One entry per open group/repeat: its row and the show_if it adds (None: none or lost).
        stack: list[tuple[str, int, dict[str, list[Any]] | None]] = []
        # per open group: the lead-in its label gives the questions inside (a table or field list)
        leads: list[dict[str, str] | None] = []
        for i, row in enumerate(self.data.survey or []):
            row_num = i + 2
            if not row:
                continue
            raw_type = " ".join(str(row.get("type", "")).split())
            if not raw_type:
                self.left_out.append(Finding("survey", row_num, "this row has no type; left out"))
                continue
            kind, detail = self._classify(raw_type, row_num)
            if kind == "error":
                continue
            if kind in {"begin group", "begin repeat"}:
                cond = self._group_condition(row, row_num, kind)
                stack.append((kind, row_num, cond))
                leads.append(self._group_label(row, row_num, stack, questions))
                continue
            if kind in {"end group", "end repeat"}:
                if stack:
                    stack.pop()
                    leads.pop()
                continue
            if kind == "left out":
                self.left_out.append(Finding("survey", row_num, detail))
                if row.get("name"):
                    self.dropped.add(str(row["name"]).strip())
                continue
            question = self._question(kind, detail, row, row_num, choices)
            if question is None:
                if row.get("name"):
                    self.dropped.add(str(row["name"]).strip())
                continue
            self._not_carried(row, row_num)
            lead = next((x for x in reversed(leads) if x), None)
            if lead and question.get("type") != "info":
                question["text"] = {lang: _shorten(f"{lead.get(lang, '')}\n\n{text}".strip(), MAX_QUESTION_TEXT)
                                    for lang, text in question["text"].items()}
            show_if = self._show_if(row, row_num, stack)
            if show_if:
                question["show_if"] = _Flow({k: _FlowList(v) for k, v in show_if.items()})
            questions.append(question)
        return questions

    def _group_label(self, row: dict[str, str], row_num: int,
                     stack: list[tuple[str, int, dict[str, list[Any]] | None]],
                     questions: list[dict[str, Any]]) -> dict[str, str] | None:
        """A group's label, carried: the lead-in of its questions (a table or field list, whose
        questions read only "Part-time" without it), or an info screen before them. Returns the lead-in."""
        texts = self._text("survey", row_num, row, "group label", MAX_QUESTION_TEXT)
        if texts is None:
            return None
        name = str(row.get("name", "")).strip() or f"group_{row_num}"
        appearance = str(row.get("appearance", "")).lower()
        if "table-list" in appearance or "field-list" in appearance:
            self.notes.append(Finding("survey", row_num, f"the label of group '{name}' was put before each of "
                                                         "its questions' texts (the questions are asked one "
                                                         "by one, not as a table)"))
            return texts
        qid = _unique(to_id(name), self.question_ids)
        info: dict[str, Any] = {"id": qid, "type": "info", "text": texts}
        show_if = self._show_if({}, row_num, stack)
        if show_if:
            info["show_if"] = _Flow({k: _FlowList(v) for k, v in show_if.items()})
        self.question_ids.add(qid)
        questions.append(info)
        self.notes.append(Finding("survey", row_num, f"the label of group '{name}' became an info screen "
                                                     f"'{qid}' before its questions"))
        return None

    def _classify(self, raw_type: str, row_num: int) -> tuple[str, str]:
        """(kind, detail): kind is a campaign type, a group marker, 'left out' or 'error'."""
        low = raw_type.lower()
        m = re.fullmatch(r"(begin|end)[ _](group|repeat|lgroup|looped group|loop)", low)
        if m:
            return f"{m.group(1)} {'group' if m.group(2) == 'group' else 'repeat'}", ""
        for alias in sorted(aliases.select, key=len, reverse=True):
            if low == alias or low.startswith(alias + " "):
                base = aliases.select[alias]
                rest = raw_type[len(alias):].split()
                if "file" in alias or "external" in alias:
                    return "left out", (f"type '{raw_type}' takes its choices from a separate file, "
                                        "which is not supported; left out")
                if not rest:
                    self.errors.append(f"{self.path}: survey row {row_num}: '{raw_type}' needs the "
                                       "name of a choice list, e.g. 'select_one yes_no'")
                    return "error", ""
                kind = {"select one": "choice", "select all that apply": "multi", "rank": "rank"}[base]
                other = [w for w in rest[1:] if w.lower() == "or_other"]
                if kind == "rank" and other:
                    return "left out", "'or_other' on a rank question is not supported; left out"
                return kind, rest[0] + (" or_other" if other else "")
        if low in _CANONICAL:
            return _CANONICAL[low], ""
        if low in _METADATA:
            return "left out", (f"type '{raw_type}' is form metadata that a Telegram survey does not "
                                "collect; left out")
        if low in {"calculate", "hidden", "q calculate", "add calculate prompt"}:
            return "left out", f"type '{raw_type}' (a calculation) is not supported; left out"
        if raw_type in QUESTION_TYPE_DICT or low in {k.lower() for k in QUESTION_TYPE_DICT}:
            return "left out", f"type '{raw_type}' is not supported; left out"
        known = ["select_one LIST", "select_multiple LIST", "rank LIST", "text", "integer", "range",
                 "note", "begin_group", "end_group", *sorted(QUESTION_TYPE_DICT)]
        by_lower = {k.lower(): k for k in known}
        near = difflib.get_close_matches(low, list(by_lower), n=1)
        hint = f" Did you mean '{by_lower[near[0]]}'?" if near else ""
        self.errors.append(f"{self.path}: survey row {row_num}: '{raw_type}' is not an XLSForm "
                           f"question type.{hint} Fix the type in the form and import again.")
        return "error", ""

    def _question(self, kind: str, detail: str, row: dict[str, str], row_num: int,
                  choices: dict[str, list[tuple[int, dict[str, str]]]]) -> dict[str, Any] | None:
        name = str(row.get("name", "")).strip()
        if not name:
            if kind == "note":
                name = f"note_{row_num}"
            else:
                self.left_out.append(Finding("survey", row_num, "this question has no name; left out"))
                return None
        text = self._text("survey", row_num, row, "label", MAX_QUESTION_TEXT)
        if text is None:
            self.left_out.append(Finding("survey", row_num, f"'{name}' has no label, so there is "
                                                            "nothing to ask; left out"))
            return None
        qid = _unique(to_id(name), self.question_ids)
        info = _Imported(qid, kind)
        q: dict[str, Any] = {"id": qid}
        if kind in {"choice", "multi", "rank"}:
            list_name, _, extra = detail.partition(" ")
            rows = choices.get(list_name)
            if not rows:
                self.left_out.append(Finding("survey", row_num, f"choice list '{list_name}' is not on "
                                                                "the choices sheet; left out"))
                return None
            options, names = self._options(list_name, rows, OTHER)
            if len(options) > MAX_OPTIONS:
                self.left_out.append(Finding("survey", row_num, f"'{name}' has {len(options)} choices; "
                                                                f"a campaign question offers at most "
                                                                f"{MAX_OPTIONS} (one phone screen); left out"))
                return None
            if len(options) < 2 and not extra:
                self.left_out.append(Finding("survey", row_num, f"'{name}' has fewer than 2 choices; "
                                                                "left out"))
                return None
            likert = self._likert(kind, extra, options)
            if likert is not None:
                q.update(type="rating", scale=5, optional=self._optional(row, row_num), text=text,
                         labels=_Flow(likert))
                info.kind = "choice"  # a `relevant` on it names choices: each is a point on the scale
                info.options = {n: point for point, n in enumerate(names, 1)}
                first, last = (options[0]["text"][self.languages[0]], options[-1]["text"][self.languages[0]])
                self.notes.append(Finding("survey", row_num, f"'{name}' (choices '{first}' … '{last}', 5 in "
                                                             "order) became a 1 to 5 rating with those end "
                                                             "labels; the middle choices' words are not shown"))
            else:
                q["type"] = kind
                if extra:
                    q["other"] = True
                q["optional"] = self._optional(row, row_num)
                q["text"] = text
                q["options"] = options
                info.options = names
        elif kind == "integer":
            q.update(type="rating", scale=5, optional=self._optional(row, row_num), text=text)
            info.kind = "rating"
            self.notes.append(Finding("survey", row_num, f"'{name}' is an integer question: it became a "
                                                         "1 to 5 rating; check that this fits, or change "
                                                         "'scale'"))
        elif kind == "range":
            scale = self._range(row, row_num, name, info)
            if scale is None:
                return None
            q.update(type="rating", scale=scale, optional=self._optional(row, row_num), text=text)
            info.kind = "rating"
        elif kind == "text":
            q.update(type="text", optional=self._optional(row, row_num), text=text)
            asked = personal_detail([name.replace("_", " "), *text.values()])
            if asked is not None:
                self.notes.append(Finding("survey", row_num, f"'{name}': {scrubbed_warning(asked)}"))
        elif kind == "audio":
            q.update(type="text", voice=True, optional=self._optional(row, row_num), text=text)
            info.kind = "text"
            self.notes.append(Finding("survey", row_num, f"'{name}' (audio) became a text question that "
                                                         "also accepts a voice note"))
        elif kind == "note":
            q.update(type="info", text=text)
            info.kind = "info"
        if qid != name:
            self.notes.append(Finding("survey", row_num, f"name '{name}' became id '{qid}' (ids use "
                                                         f"a-z, 0-9 and _, at most {ID_LIMIT})"))
        audio = self._audio(row, "survey", row_num)
        if audio:
            q["audio"] = _Flow(audio)
        if q.get("optional") is False:
            del q["optional"]  # the default; keeps the file short
        self.question_ids.add(qid)
        self.imported[name] = info
        return q

    def _likert(self, kind: str, extra: str, options: list[dict[str, Any]]) -> dict[str, list[str]] | None:
        """End labels per language when a one-choice list of 5 reads as an ordered scale, else None."""
        if kind != "choice" or extra or len(options) != 5:
            return None
        base = self.languages[0]
        if not is_likert(options[0]["text"][base], options[-1]["text"][base]):
            return None
        return {lang: _FlowList([options[0]["text"][lang], options[-1]["text"][lang]]) for lang in self.languages}

    def _audio(self, row: dict[str, str], sheet: str, row_num: int) -> dict[str, str]:
        """The recordings named on a row, per language, as paths relative to the campaign file."""
        out: dict[str, str] = {}
        for column, lang in self.columns.get("audio", {}).items():
            name = str(row.get(column) or "").strip()
            if not name or lang in out:
                continue
            if self.media is None:
                self.left_out.append(Finding(sheet, row_num, f"recording '{name}' ({column}) was left out: "
                                                             "give the folder with the form's media files "
                                                             "with --media FOLDER"))
                continue
            file = self.media / name
            if not file.is_file():
                self.left_out.append(Finding(sheet, row_num, f"recording '{name}' ({column}) is not in "
                                                             f"{self.media}; left out"))
                continue
            out[lang] = Path(os.path.relpath(file.resolve(), self.out_dir.resolve())).as_posix()
        return out

    def _optional(self, row: dict[str, str], row_num: int) -> bool:
        value = str(row.get("required", "")).strip().lower()
        if value in _TRUE:
            return False
        if value not in _FALSE:
            self.left_out.append(Finding("survey", row_num, f"the condition in 'required' ('{value}') "
                                                            "is not carried over: the question may be "
                                                            "skipped"))
        return True

    def _range(self, row: dict[str, str], row_num: int, name: str, info: _Imported) -> int | None:
        params = dict(re.findall(r"([A-Za-z_]+)\s*=\s*([^\s,;]+)", str(row.get("parameters", ""))))
        try:
            start = float(params.get("start", 1))
            end = float(params.get("end", 10))
            step = float(params.get("step", 1))
            points = (end - start) / step + 1 if step else 0.0
        except ValueError:
            self.left_out.append(Finding("survey", row_num, f"'{name}': cannot read the range "
                                                            f"parameters '{row.get('parameters')}'; left out"))
            return None
        if not points.is_integer() or not 2 <= points <= 10:
            self.left_out.append(Finding("survey", row_num, f"'{name}' is a range from {start:g} to "
                                                            f"{end:g} (step {step:g}): a rating has 2 to "
                                                            "10 points; left out. Change the range or add "
                                                            "the question by hand."))
            return None
        n = int(points)
        if (start, step) != (1, 1):
            self.notes.append(Finding("survey", row_num, f"'{name}' (range {start:g} to {end:g}, step "
                                                         f"{step:g}) became a 1 to {n} rating: answer k "
                                                         f"means {start:g} + (k-1) x {step:g}"))
        info.range = (start, step, n)
        return n

    def _not_carried(self, row: dict[str, str], row_num: int) -> None:
        for column, value in row.items():
            if column in self.columns.get("audio", {}):
                continue  # recordings are carried (see _audio)
            base = column.split("::", 1)[0].strip().lower()
            if base in _NOT_CARRIED and str(value).strip():
                self.left_out.append(Finding("survey", row_num, f"{_NOT_CARRIED[base]} "
                                                                f"({column}: {str(value).strip()!r})"))

    # relevant -> show_if

    def _group_condition(self, row: dict[str, str], row_num: int, kind: str) -> dict[str, list[Any]] | None:
        what = "group" if kind == "begin group" else "repeat"
        if kind == "begin repeat":
            self.left_out.append(Finding("survey", row_num, "repeats are not supported: the questions "
                                                            "inside are asked once"))
        relevant = str(row.get("relevant", "")).strip()
        if not relevant:
            return None
        try:
            return self._parse_relevant(relevant)
        except _Unmappable as exc:
            self.left_out.append(Finding("survey", row_num, f"the {what}'s condition (relevant "
                                                            f"{relevant!r}) could not be carried over "
                                                            f"({exc}): its questions are always asked"))
            return None

    def _show_if(self, row: dict[str, str], row_num: int,
                 stack: list[tuple[str, int, dict[str, list[Any]] | None]]) -> dict[str, list[Any]] | None:
        relevant = str(row.get("relevant", "")).strip()
        conds = [c for _, _, c in stack if c]
        if relevant:
            try:
                conds.append(self._parse_relevant(relevant))
            except _Unmappable as exc:
                self.left_out.append(Finding("survey", row_num, f"the condition (relevant {relevant!r}) "
                                                                f"could not be carried over ({exc}): the "
                                                                "question is always asked; add 'show_if' "
                                                                "by hand if needed"))
        merged: dict[str, list[Any]] = {}
        for cond in conds:
            for key, values in cond.items():
                if key in merged:
                    both = [v for v in merged[key] if v in values]
                    if not both:
                        self.left_out.append(Finding("survey", row_num, "the group's and the question's "
                                                                        f"conditions on '{key}' cannot both "
                                                                        "hold; the question's is kept"))
                        both = values
                    merged[key] = both
                else:
                    merged[key] = values
        return merged or None

    def _parse_relevant(self, text: str) -> dict[str, list[Any]]:
        tokens = _tokens(text)
        parser = _RelevantParser(tokens, text)
        tree = parser.parse()
        clause = self._clause(tree)
        return {key: _sorted_values(values) for key, values in clause.items()}

    def _clause(self, node: tuple[Any, ...]) -> dict[str, set[Any]]:
        op = node[0]
        if op == "or":
            parts = [self._clause(n) for n in node[1]]
            keys = {k for p in parts for k in p}
            if len(keys) != 1 or any(len(p) != 1 for p in parts):
                raise _Unmappable("'or' between different questions")
            key = keys.pop()
            return {key: set().union(*(p[key] for p in parts))}
        if op == "and":
            out: dict[str, set[Any]] = {}
            for n in node[1]:
                for key, values in self._clause(n).items():
                    if key in out:
                        raise _Unmappable(f"two conditions on the same question '{key}'")
                    out[key] = values
            return out
        _, ref, cmp, value = node
        target = self.imported.get(ref)
        if target is None:
            if ref in self.dropped:
                raise _Unmappable(f"it depends on '{ref}', which was left out")
            raise _Unmappable(f"it depends on '{ref}', which is not an earlier question")
        return {target.id: self._values(target, ref, cmp, value)}

    def _values(self, target: _Imported, ref: str, cmp: str, value: str) -> set[Any]:
        if target.kind in {"choice", "multi"}:
            if cmp not in {"=", "selected"}:
                raise _Unmappable(f"'{cmp}' on a choice question")
            if value not in target.options:
                raise _Unmappable(f"'{value}' is not a choice of '{ref}'")
            return {target.options[value]}
        if target.kind == "rating" and target.range:
            start, step, n = target.range
            try:
                wanted = float(value)
            except ValueError:
                raise _Unmappable(f"'{value}' is not a number") from None
            ops = {"=": float.__eq__, "!=": float.__ne__, "<": float.__lt__, "<=": float.__le__,
                   ">": float.__gt__, ">=": float.__ge__}
            if cmp not in ops:
                raise _Unmappable(f"'{cmp}' on a rating")
            points = {k for k in range(1, n + 1) if ops[cmp](start + (k - 1) * step, wanted)}
            if not points:
                raise _Unmappable("no answer on the scale meets it")
            return points
        if target.kind == "rating":
            raise _Unmappable(f"'{ref}' was an integer question turned into a rating")
        raise _Unmappable(f"a condition on a {target.kind} question")


def _sorted_values(values: set[Any]) -> list[Any]:
    return sorted(values, key=lambda v: (isinstance(v, str), v))


def _tokens(text: str) -> list[tuple[str, str]]:
    """pyxform's own lexer, with its split two-character comparisons ('<', '=') joined."""
    out: list[tuple[str, str]] = []
    for tok in parse_expression(text):
        kind, value = tok.type, str(tok.value)
        if kind == "WHITESPACE":
            continue
        if kind == "OPS_COMP" and out and out[-1][0] == "OPS_COMP" and value == "=" and out[-1][1] in "<>!":
            out[-1] = ("OPS_COMP", out[-1][1] + "=")
            continue
        out.append((kind, value.strip()))
    return out


class _RelevantParser:
    """The small part of XPath that show_if can express: comparisons joined by and/or."""

    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.text = text

    def parse(self) -> tuple[Any, ...]:
        node = self._or()
        if self.pos != len(self.tokens):
            raise _Unmappable("it uses more than comparisons joined by 'and'/'or'")
        return node

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, kind: str, value: str | None = None) -> str:
        tok = self._peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise _Unmappable("it uses more than comparisons joined by 'and'/'or'")
        self.pos += 1
        return tok[1]

    def _or(self) -> tuple[Any, ...]:
        parts = [self._and()]
        while self._peek() == ("OPS_BOOL", "or"):
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def _and(self) -> tuple[Any, ...]:
        parts = [self._atom()]
        while self._peek() == ("OPS_BOOL", "and"):
            self.pos += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def _atom(self) -> tuple[Any, ...]:
        tok = self._peek()
        if tok == ("OPEN_PAREN", "("):
            self.pos += 1
            node = self._or()
            self._take("CLOSE_PAREN")
            return node
        if tok == ("FUNC_CALL", "selected("):
            self.pos += 1
            ref = self._ref()
            self._take("COMMA")
            value = self._literal()
            self._take("CLOSE_PAREN")
            return ("cmp", ref, "selected", value)
        ref = self._ref()
        cmp = self._take("OPS_COMP")
        value = self._literal()
        return ("cmp", ref, cmp, value)

    def _ref(self) -> str:
        return self._take("PYXFORM_REF")[2:-1].removeprefix("last-saved#")

    def _literal(self) -> str:
        tok = self._peek()
        if tok and tok[0] == "SYSTEM_LITERAL":
            self.pos += 1
            return tok[1][1:-1]
        if tok and tok[0] == "NUMBER":
            self.pos += 1
            return tok[1]
        raise _Unmappable("it compares with something other than a fixed value")
