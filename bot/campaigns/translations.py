"""Campaign texts out to community translators (a spreadsheet or PO files) and back into the YAML.

Translators should never have to edit YAML. Every text gets a stable key (`questions.ease.text`,
`questions.ease.options.hours`, `questions.ease.labels.0`, `groups.community.options.somali`,
`title`, `intro`). Import writes each changed text into the campaign file in place, touching
only the bytes of that one value, so comments, order and layout stay exactly as the
administrator wrote them, and an unchanged import leaves the file byte for byte the same.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.pofile import PoFileError, read_po, write_po
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import IllegalCharacterError, InvalidFileException

from bot.campaigns.schema import MAX_INTRO_TEXT, MAX_OPTION_TEXT, MAX_QUESTION_TEXT, MAX_TITLE_TEXT
from bot.campaigns.source import MERGE_TAG, CampaignLoader, Path_, SourceError, parse, read_text

SHEET = "translations"
KEY_HEADER = "key"
NOTES_HEADER = "notes"
SHOWN_HEADER = "shown"  # where the participant sees the text
LIMIT_HEADER = "length limit"  # characters at most; the import refuses longer texts
RTL = {"ar", "fa", "ps", "ur", "he", "yi", "ckb", "dv", "sd", "ug"}


class TranslationError(Exception):
    """The export or import cannot go ahead; nothing was written. Each problem says where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TextEntry:
    """One translatable text of a campaign, in every language it has so far."""

    key: str
    path: Path_  # the language map in the campaign data, e.g. ("questions", 1, "text")
    index: int | None  # rating labels: 0 (lowest) or 1 (highest); otherwise None
    notes: str
    limit: int
    texts: dict[str, str]
    shown: str = ""  # where the participant sees it, in a translator's words


@dataclass(frozen=True)
class Update:
    """A translation read from the translators' file, with where it came from."""

    value: str
    origin: str  # e.g. "translations.xlsx row 7" or "ar.po line 31"
    source_text: str | None = None  # PO msgid: the source text the translator saw


@dataclass
class ImportReport:
    """What an import changed, and what it noticed but did not act on."""

    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (key, language, origin)
    warnings: list[str] = field(default_factory=list)
    written: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, lang, _ in self.changed:
            out[lang] = out.get(lang, 0) + 1
        return out


# -- what there is to translate


@dataclass
class CampaignTexts:
    """A campaign file as translators see it: its languages and its texts, in file order."""

    path: Path
    text: str
    bom: bool
    data: dict[str, Any]
    languages: list[str]
    entries: list[TextEntry]
    _by_key: dict[str, TextEntry] = field(default_factory=dict, repr=False)

    @property
    def source_language(self) -> str:
        return self.languages[0]

    def entry(self, key: str) -> TextEntry | None:
        if len(self._by_key) != len(self.entries):
            self._by_key = {e.key: e for e in self.entries}
        return self._by_key.get(key)


# The first name of CampaignTexts; `coassess i18n check` imports it.
Campaign = CampaignTexts


def read_campaign(path: str | Path) -> CampaignTexts:
    """Read a campaign file for translation; it need not pass the check (texts may be missing)."""
    path = Path(path)
    try:
        text = read_text(path)
        src = parse(text, path.name)
    except SourceError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise TranslationError([f"{where}: {exc.message}"]) from None
    except RecursionError:
        raise TranslationError([f"{path}: the file is nested too deeply to be a campaign"]) from None
    data = src.data
    if not isinstance(data, dict):
        raise TranslationError([f"{path}: this is not a campaign file (it must start with 'id:')"])
    langs = data.get("languages")
    if not isinstance(langs, list) or not langs or not all(isinstance(x, str) for x in langs):
        raise TranslationError([f"{path}:{src.line_of(('languages',)) or 1}: 'languages' must be a "
                                "list of language codes such as [en, ar, so]"])
    bom = path.read_bytes().startswith(b"\xef\xbb\xbf")
    entries, problems = _entries(data, src.line_of, path)
    if problems:
        raise TranslationError(problems)
    return CampaignTexts(path, text, bom, data, list(langs), entries)


def _texts(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _cell_text(v) for k, v in value.items() if v is not None}


def _entries(data: dict[str, Any], line_of: Any, path: Path) -> tuple[list[TextEntry], list[str]]:
    entries: list[TextEntry] = []
    problems: list[str] = []

    def add(key: str, where: Path_, notes: str, limit: int, index: int | None = None, shown: str = "") -> None:
        node = _get(data, where)
        if index is None:
            texts = _texts(node)
        else:
            texts = {str(lang): _cell_text(pair[index]) for lang, pair in (node or {}).items()
                     if isinstance(pair, list) and len(pair) == 2 and pair[index] is not None}
        if any(e.key == key for e in entries):
            problems.append(f"{path}:{line_of(where)}: '{key}' appears twice: ids must be unique")
            return
        entries.append(TextEntry(key, where, index, notes, limit, texts, shown))

    def ident(item: Any, where: Path_, kind: str) -> str | None:
        iid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(iid, str) or not re.fullmatch(r"[a-z0-9_]{1,24}", iid):
            problems.append(f"{path}:{line_of(where)}: this {kind} needs a valid 'id' before its texts "
                            "can be translated (run: coassess campaign check)")
            return None
        return iid

    limit_note = "Keep it under {} characters."
    if isinstance(data.get("title"), dict):
        add("title", ("title",), f"The campaign title. {limit_note.format(MAX_TITLE_TEXT)}", MAX_TITLE_TEXT,
            shown="in bold at the top of the consent screen, of the reminder and of the 'you said, "
                  "we did' message; a button in the list of open surveys")
    if isinstance(data.get("intro"), dict):
        add("intro", ("intro",), "Shown before the first question. "
                                 + limit_note.format(MAX_INTRO_TEXT), MAX_INTRO_TEXT,
            shown="the consent screen, under the title, above the bot's own consent text "
                  "(the whole screen stays under 600 characters)")
    for section, kind in (("groups", "group question"), ("questions", "question")):
        items = data.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            iid = ident(item, (section, i), kind)
            if iid is None:
                continue
            qtype = item.get("type", "choice") if section == "questions" else "about you"
            screen = (f"the 'About you' screen of '{iid}'" if section == "groups"
                      else f"the screen of question '{iid}', under its progress (2/8)")
            if isinstance(item.get("text"), dict):
                add(f"{section}.{iid}.text", (section, i, "text"),
                    f"{kind.capitalize()} '{iid}' ({qtype}). {limit_note.format(MAX_QUESTION_TEXT)}",
                    MAX_QUESTION_TEXT, shown=f"{screen}, above the answer buttons")
            options = item.get("options")
            for j, opt in enumerate(options if isinstance(options, list) else []):
                oid = ident(opt, (section, i, "options", j), "option")
                if oid is not None and isinstance(opt.get("text"), dict):
                    add(f"{section}.{iid}.options.{oid}", (section, i, "options", j, "text"),
                        f"An answer button of {kind} '{iid}'. Short: {MAX_OPTION_TEXT} characters at most.",
                        MAX_OPTION_TEXT, shown=f"a button on {screen}"
                        + (", followed by its coins (': 3')" if qtype == "budget" else ""))
            if isinstance(item.get("labels"), dict):
                scale = item.get("scale", 5)
                for index, end in ((0, "lowest (1)"), (1, f"highest ({scale})")):
                    add(f"{section}.{iid}.labels.{index}", (section, i, "labels"),
                        f"Rating '{iid}': the label of the {end} answer. "
                        f"{MAX_OPTION_TEXT} characters at most.", MAX_OPTION_TEXT, index,
                        shown=f"{screen}, in the line under the question (1 = … · {scale} = …)")
    return entries, problems


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _cell_text(value: Any) -> str:
    """A spreadsheet cell or YAML value as the text a translator means."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).replace("\r\n", "\n")


def language_label(code: str) -> str:
    """'Arabic (ar)': a column header a translator recognises and the import can read back."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name("en")
    except (UnknownLocaleError, ValueError, TypeError):
        name = None
    return f"{name} ({code})" if name else code


# -- export


def export_xlsx(campaign: CampaignTexts, out: Path) -> None:
    """One sheet: a row per text, a column per campaign language, and notes for context."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    headers = [KEY_HEADER, NOTES_HEADER, SHOWN_HEADER, LIMIT_HEADER,
               *(language_label(c) for c in campaign.languages)]
    first_lang = len(headers) - len(campaign.languages) + 1  # its column, counted from 1
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDDDDD")
    problems: list[str] = []
    wrap = Alignment(wrap_text=True, vertical="top")
    rtl = Alignment(wrap_text=True, vertical="top", horizontal="right", readingOrder=2)
    for r, entry in enumerate(campaign.entries, start=2):
        values = [entry.key, entry.notes, entry.shown, entry.limit,
                  *(entry.texts.get(c, "") for c in campaign.languages)]
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c)
            try:
                cell.value = value
            except IllegalCharacterError:
                problems.append(f"{campaign.path}: '{entry.key}' contains a control character a "
                                "spreadsheet cannot hold; remove it from the campaign file")
                continue
            if cell.data_type == "f":  # a text starting with '=' is text, not a formula
                cell.data_type = "s"
            lang = campaign.languages[c - first_lang] if c >= first_lang else ""
            cell.alignment = rtl if lang.split("-")[0] in RTL else wrap
    if problems:
        raise TranslationError(problems)
    ws.freeze_panes = f"{get_column_letter(first_lang)}2"
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 40
    ws.column_dimensions["C"].width = 40
    ws.column_dimensions["D"].width = 12
    for c in range(first_lang, len(headers) + 1):
        ws.column_dimensions[get_column_letter(c)].width = 45
    about = wb.create_sheet("read me")
    for line in _README.format(campaign=campaign.path.name, source=language_label(campaign.source_language)
                               ).splitlines():
        about.append([line])
    about.column_dimensions["A"].width = 110
    wb.save(out)


_README = """How to translate this campaign ({campaign})
One row is one text the bot shows. Each language has its own column; {source} is the original.
Write your translation in your language's column. Leave a cell empty if you have not translated it yet.
Do not change the 'key' column or the column headers: they tell the import where each text belongs.
Keep texts short and plain: answer buttons must fit on a phone. The 'shown' column says where the
participant sees each text, and 'length limit' how many characters it may have at most.
When you are done, send the file back. It is read in with: coassess campaign translations import {campaign} FILE"""


def export_po(campaign: CampaignTexts, out_dir: Path) -> list[Path]:
    """One `<lang>.po` per language other than the source: msgctxt is the key, msgid the source text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    src = campaign.source_language
    cid = str(campaign.data.get("id", campaign.path.stem))
    for lang in campaign.languages[1:]:
        header = (f"Translations of campaign '{cid}' into {language_label(lang)}.\n"
                  "Translate each msgstr. Do not change msgctxt: it says where the text belongs.\n"
                  f"Read back with: coassess campaign translations import {campaign.path.name} {lang}.po")
        fields: dict[str, Any] = {"project": cid, "version": "1", "fuzzy": False,
                                  "header_comment": "\n".join(f"# {x}" for x in header.splitlines()),
                                  "language_team": language_label(lang), "last_translator": ""}
        try:
            catalog = Catalog(locale=lang.replace("-", "_"), **fields)
        except (UnknownLocaleError, ValueError):
            catalog = Catalog(**fields)
        for entry in campaign.entries:
            source = entry.texts.get(src) or f"[{entry.key}: no {src} text yet]"
            msg = catalog.add(source, entry.texts.get(lang, ""), context=entry.key,
                              auto_comments=[entry.notes, f"Shown: {entry.shown}",
                                             f"Length limit: {entry.limit} characters"])
            if msg is not None:
                # Babel guesses python-format from a '%' in the text; campaign texts have none.
                msg.flags.discard("python-format")
        path = out_dir / f"{lang}.po"
        with path.open("wb") as f:
            write_po(f, catalog, width=76, omit_header=False, sort_output=False, ignore_obsolete=True)
        written.append(path)
    return written


# -- reading translators' files


def read_updates(campaign: CampaignTexts, source: Path) -> tuple[dict[tuple[str, str], Update], list[str]]:
    """Translations from a spreadsheet, a PO file, or a directory of PO files.

    Returns the updates by (key, language) and warnings. Raises TranslationError for unknown
    keys and languages, so that nothing is written from a file meant for another campaign.
    """
    if source.is_dir():
        files = sorted(source.glob("*.po"))
        if not files:
            raise TranslationError([f"{source}: no .po files in this folder"])
        updates: dict[tuple[str, str], Update] = {}
        warnings: list[str] = []
        problems: list[str] = []
        for f in files:
            try:
                u, w = _read_po(campaign, f)
            except TranslationError as exc:
                problems += exc.problems
                continue
            updates.update(u)
            warnings += w
        if problems:
            raise TranslationError(problems)
        return updates, warnings
    if not source.is_file():
        raise TranslationError([f"{source}: file not found"])
    if source.suffix.lower() == ".po":
        return _read_po(campaign, source)
    if source.suffix.lower() in {".xlsx", ".xlsm"}:
        return _read_xlsx(campaign, source)
    raise TranslationError([f"{source}: use the .xlsx file or the folder of .po files made by "
                            "'coassess campaign translations export'"])


def _header_language(campaign: CampaignTexts, header: str) -> tuple[str | None, bool]:
    """(campaign language, looks like a language) for a column header."""
    h = header.strip()
    m = re.search(r"\(([^()]+)\)\s*$", h)
    code = m.group(1).strip() if m else h
    for lang in campaign.languages:
        if code.lower() == lang.lower() or code.replace("_", "-").lower() == lang.lower():
            return lang, True
    if m:
        return None, True
    try:
        Locale.parse(code.replace("-", "_"))
        return None, True
    except (UnknownLocaleError, ValueError, TypeError):
        return None, False


def _read_xlsx(campaign: CampaignTexts, source: Path) -> tuple[dict[tuple[str, str], Update], list[str]]:
    try:
        wb = load_workbook(source, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise TranslationError([f"{source}: cannot read this spreadsheet ({exc}); save it as .xlsx"]) from None
    except Exception as exc:  # noqa: BLE001  zipfile and XML errors from a damaged file
        raise TranslationError([f"{source}: cannot read this spreadsheet ({exc}); save it as .xlsx"]) from None
    try:
        ws = wb[SHEET] if SHEET in wb.sheetnames else wb.worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
    finally:
        wb.close()
    name = source.name
    if not rows:
        raise TranslationError([f"{name}: the sheet '{ws.title}' is empty"])
    header = [_cell_text(h).strip() for h in rows[0]]
    problems: list[str] = []
    key_col: int | None = None
    lang_cols: dict[int, str] = {}
    for c, h in enumerate(header):
        if not h:
            continue
        letter = get_column_letter(c + 1)
        if h.lower() == KEY_HEADER:
            key_col = c
            continue
        lang, looks = _header_language(campaign, h)
        if lang is not None:
            if lang in lang_cols.values():
                problems.append(f"{name} column {letter} '{h}': a second column for '{lang}'; keep one")
            lang_cols[c] = lang
        elif looks:
            problems.append(
                f"{name} column {letter} '{h}': this language is not one of the campaign's languages "
                f"({', '.join(campaign.languages)}). To add it, add its code to 'languages:' in "
                f"{campaign.path.name}, export again, and copy the translations into the new file.")
    if key_col is None:
        problems.append(f"{name}: the first row has no '{KEY_HEADER}' column; it tells the import where "
                        "each text belongs. Use the file made by 'coassess campaign translations export'.")
    if problems:
        raise TranslationError(problems)
    assert key_col is not None
    updates: dict[tuple[str, str], Update] = {}
    seen: dict[str, int] = {}
    for r, row in enumerate(rows[1:], start=2):
        cells = list(row) + [None] * (len(header) - len(row))
        key = _cell_text(cells[key_col]).strip()
        texts = {lang: _cell_text(cells[c]) for c, lang in lang_cols.items()}
        if not key:
            if any(t.strip() for t in texts.values()):
                problems.append(f"{name} row {r}: there are translations but no key; put back the key "
                                "this row had (see the export)")
            continue
        if key in seen:
            problems.append(f"{name} row {r}: the key '{key}' is also on row {seen[key]}; keep one row")
            continue
        seen[key] = r
        if campaign.entry(key) is None:
            problems.append(_unknown_key(campaign, key, f"{name} row {r}"))
            continue
        for lang, value in texts.items():
            updates[(key, lang)] = Update(value, f"{name} row {r}")
    if problems:
        raise TranslationError(problems)
    warnings = _absent(campaign, set(seen), name, lang_cols.values())
    return updates, warnings


def _unknown_key(campaign: CampaignTexts, key: str, where: str) -> str:
    return (f"{where}: '{key}' is not a text of {campaign.path.name}. Was the question or option "
            "renamed or removed? Export the translations again from the current campaign file and "
            "copy the translations over.")


def _absent(campaign: CampaignTexts, keys: set[str], name: str, langs: Iterable[str]) -> list[str]:
    absent = [e.key for e in campaign.entries if e.key not in keys]
    if not absent:
        return []
    shown = ", ".join(absent[:5]) + (", ..." if len(absent) > 5 else "")
    return [f"{name}: {len(absent)} text{'s' if len(absent) != 1 else ''} of the campaign "
            f"{'are' if len(absent) != 1 else 'is'} not in this file and "
            f"{'were' if len(absent) != 1 else 'was'} left as {'they are' if len(absent) != 1 else 'it is'} "
            f"({', '.join(sorted(set(langs)))}): {shown}"]


def _read_po(campaign: CampaignTexts, source: Path) -> tuple[dict[tuple[str, str], Update], list[str]]:
    name = source.name
    try:
        with source.open("rb") as f:
            catalog = read_po(f, abort_invalid=True)
    except PoFileError as exc:
        raise TranslationError([f"{name}: this PO file cannot be read: {exc}"]) from None
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise TranslationError([f"{name}: this PO file cannot be read ({exc}); save it as UTF-8"]) from None
    lang, _ = _header_language(campaign, source.stem)
    header_lang = str(catalog.locale).replace("_", "-") if catalog.locale else None
    if lang is None and header_lang:
        lang, _ = _header_language(campaign, header_lang)
    if lang is None:
        raise TranslationError([
            f"{name}: language '{source.stem}'{f' ({header_lang})' if header_lang else ''} is not one of "
            f"the campaign's languages ({', '.join(campaign.languages)}). Name the file after one of "
            f"them, e.g. {campaign.languages[-1]}.po, or add the language to 'languages:' in "
            f"{campaign.path.name} and export again."])
    updates: dict[tuple[str, str], Update] = {}
    warnings: list[str] = []
    problems: list[str] = []
    keys: set[str] = set()
    for message in catalog:
        if not message.id:
            continue  # the header
        where = f"{name} line {message.lineno}" if message.lineno else name
        key = message.context
        if not key:
            problems.append(f"{where}: this entry has no msgctxt, the key that says where the text "
                            "belongs; use the file made by 'coassess campaign translations export'")
            continue
        if campaign.entry(key) is None:
            problems.append(_unknown_key(campaign, key, where))
            continue
        keys.add(key)
        value = message.string if isinstance(message.string, str) else ""
        if message.fuzzy and value:
            warnings.append(f"{where}: '{key}' is marked fuzzy (needs review), so it was not imported; "
                            "review it and clear the mark")
            continue
        updates[(key, lang)] = Update(value, where, str(message.id))
    if problems:
        raise TranslationError(problems)
    return updates, warnings + _absent(campaign, keys, name, [lang])


# -- writing back into the YAML, in place


class _Edits:
    """Text replacements on the original file, located by PyYAML's node marks."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nl = "\r\n" if "\r\n" in text else "\n"
        self.root = yaml.compose(text, Loader=CampaignLoader)
        self.edits: list[tuple[int, int, str]] = []
        # A node reached twice is shared through a YAML anchor: editing it would change both.
        self.shared: set[int] = set()
        self.parents: dict[int, list[yaml.CollectionNode]] = {}
        seen: set[int] = set()
        for node, parents in _walk(self.root, []):
            if id(node) in seen:
                self.shared.add(id(node))
            seen.add(id(node))
            self.parents[id(node)] = parents

    def in_flow(self, node: yaml.Node) -> bool:
        """Whether `node` sits inside a flow collection, where more characters need quotes."""
        return any(p.flow_style for p in self.parents.get(id(node), []))

    def node(self, path: Path_) -> yaml.Node | None:
        node = self.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = _lookup(node, str(part))
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                return None
            if node is None:
                return None
        return node

    def line(self, node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def replace(self, node: yaml.ScalarNode, value: str) -> str | None:
        """Replace a scalar's text; returns a reason when it cannot be done safely."""
        start, end = node.start_mark.index, node.end_mark.index
        span = self.text[start:end]
        if id(node) in self.shared or span[:1] in {"&", "*", "!"}:
            return "it uses a YAML anchor, alias or tag; change it in the file by hand"
        rendered = scalar(value, flow=self.in_flow(node))
        if node.style in {"|", ">"}:
            # a block scalar's span runs to the next line: keep the line breaks that end it
            tail = re.search(r"[\s]*$", span)
            rendered += tail.group(0) if tail and "\n" in tail.group(0) else self.nl
        elif start == end:
            rendered = " " + rendered  # `ar:` with nothing after it
        self.edits.append((start, end, rendered))
        return None

    def insert(self, mapping: yaml.MappingNode, pairs: list[tuple[str, str | list[str]]]) -> str | None:
        """Add `key: value` pairs at the end of a mapping; a list value is written [a, b]."""
        if id(mapping) in self.shared:
            return "it uses a YAML anchor or alias; change it in the file by hand"
        flow = bool(mapping.flow_style) or self.in_flow(mapping)

        def render(value: str | list[str]) -> str:
            if isinstance(value, list):
                return "[" + ", ".join(scalar(x) for x in value) + "]"
            return scalar(value, flow=flow)

        if flow:
            body = ", ".join(f"{scalar(k)}: {render(v)}" for k, v in pairs)
            if mapping.value:
                pos = mapping.value[-1][1].end_mark.index
                self.edits.append((pos, pos, ", " + body))
            else:
                pos = self.text.index("{", mapping.start_mark.index) + 1
                self.edits.append((pos, pos, body))
            return None
        if not mapping.value:
            return "the map is empty"
        indent = " " * mapping.value[0][0].start_mark.column
        last = mapping.value[-1][1]
        if not isinstance(last, yaml.ScalarNode) and not getattr(last, "flow_style", False):
            return "the last entry is not a plain text or [a, b] list; add the line by hand"
        lines = [f"{indent}{scalar(k, flow=False)}: {render(v)}" for k, v in pairs]
        pos = last.end_mark.index
        if getattr(last, "style", None) in {"|", ">"} or (pos > 0 and self.text[pos - 1] == "\n"):
            self.edits.append((pos, pos, "".join(line + self.nl for line in lines)))
        else:
            eol = self.text.find(self.nl, pos)
            eol = len(self.text) if eol < 0 else eol
            self.edits.append((eol, eol, "".join(self.nl + line for line in lines)))
        return None

    def apply(self) -> str:
        out = self.text
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:start] + new + out[end:]
        return out


def _lookup(mapping: yaml.MappingNode, key: str, depth: int = 0) -> yaml.Node | None:
    """The value of `key` in a mapping, also when it comes from a merge (`<<: *base`)."""
    found = next((v for k, v in mapping.value if isinstance(k, yaml.ScalarNode)
                  and k.tag != MERGE_TAG and k.value == key), None)
    if found is not None or depth > 20:
        return found
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.tag == MERGE_TAG:
            for part in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                if isinstance(part, yaml.MappingNode):
                    found = _lookup(part, key, depth + 1)
                    if found is not None:
                        return found
    return None


def _walk(node: yaml.Node, parents: list[yaml.CollectionNode]) -> Iterator[tuple[yaml.Node, list[yaml.CollectionNode]]]:
    yield node, parents
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and len(parents) > 200:
        return  # deeper than any campaign; the anchors that matter are near the top
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield k, [*parents, node]
            yield from _walk(v, [*parents, node])
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item, [*parents, node])


class _OneLine(yaml.SafeDumper):
    pass


def scalar(value: str, flow: bool = True) -> str:
    """`value` as one YAML scalar on one line that reads back as the same text.

    In flow context (`{en: ..., ar: ...}`, `[..., ...]`) characters such as `,?[]{}` need
    quotes; in a block map (`  en: ...`) they do not, so translators' question marks stay bare.
    """
    # Line breaks, tabs and control characters as escapes in double quotes, so the value
    # stays on one line; PyYAML decides everything else (it knows which texts need quotes).
    quoted = value != value.strip() or any(unicodedata.category(ch) in {"Cc", "Zl", "Zp"} for ch in value)
    common: dict[str, Any] = {"Dumper": _OneLine, "allow_unicode": True, "width": 2**31 - 1,
                              "default_style": '"' if quoted else None}
    if flow or quoted:
        return yaml.dump([value], default_flow_style=True, **common).strip()[1:-1]
    return yaml.dump({"k": value}, default_flow_style=False, **common).rstrip("\n")[len("k: "):]


def apply_updates(campaign: CampaignTexts, updates: dict[tuple[str, str], Update]) -> tuple[str, ImportReport]:
    """The campaign text with the updates written in, and a report; the text is unchanged if
    no translation differs from what the file already says."""
    report = ImportReport()
    edits = _Edits(campaign.text)
    expected = copy.deepcopy(campaign.data)
    problems: list[str] = []
    inserts: dict[int, tuple[yaml.MappingNode, list[tuple[str, str | list[str]]]]] = {}
    label_news: dict[tuple[str, str], dict[int, str]] = {}
    for entry in campaign.entries:
        for lang in campaign.languages:
            update = updates.get((entry.key, lang))
            if update is None:
                continue
            current = entry.texts.get(lang)
            new = update.value.replace("\r\n", "\n")
            if current is not None and (new == current or new.strip() == current.strip()):
                continue
            if not new.strip():
                if current:
                    report.warnings.append(f"{update.origin}: the '{lang}' text of '{entry.key}' is "
                                           "empty; the text in the campaign file was kept")
                continue
            new = new.strip()
            if len(new) > entry.limit:
                report.warnings.append(f"{update.origin}: the '{lang}' text of '{entry.key}' is "
                                       f"{len(new)} characters; keep it under {entry.limit} "
                                       "(campaign check will flag it)")
            if (update.source_text is not None and entry.texts.get(campaign.source_language)
                    and update.source_text != entry.texts[campaign.source_language]):
                report.warnings.append(f"{update.origin}: the {campaign.source_language} text of "
                                       f"'{entry.key}' has changed since this file was made; check "
                                       "that the translation still fits")
            reason = _stage(edits, entry, lang, new, inserts, label_news)
            if reason:
                problems.append(f"{update.origin}: cannot write the '{lang}' text of '{entry.key}': {reason}")
                continue
            _set_expected(expected, entry, lang, new)
            report.changed.append((entry.key, lang, update.origin))
    for (key, lang), news in label_news.items():
        if len(news) == 2:
            entry = campaign.entry(f"{key}.0")
            assert entry is not None
            mapping = edits.node(entry.path)
            assert isinstance(mapping, yaml.MappingNode)
            inserts.setdefault(id(mapping), (mapping, []))[1].append(
                (lang, [news[0], news[1]]))
        else:
            problems.append(f"'{key}.0' and '{key}.1' ({lang}): this rating has no '{lang}' labels yet; "
                            "give both the lowest and the highest label")
    for mapping, pairs in inserts.values():
        reason = edits.insert(mapping, pairs)
        if reason:
            problems.append(f"{campaign.path.name}:{edits.line(mapping)}: cannot add "
                            f"{', '.join(k for k, _ in pairs)} here: {reason}")
    if problems:
        raise TranslationError(problems)
    new_text = edits.apply()
    _verify(campaign, new_text, expected)
    return new_text, report


def _stage(edits: _Edits, entry: TextEntry, lang: str, value: str,
           inserts: dict[int, tuple[yaml.MappingNode, list[tuple[str, str | list[str]]]]],
           label_news: dict[tuple[str, str], dict[int, str]]) -> str | None:
    mapping = edits.node(entry.path)
    if not isinstance(mapping, yaml.MappingNode):
        return f"'{'.'.join(map(str, entry.path))}' is not a set of 'language: text' lines"
    target = edits.node((*entry.path, lang))
    if entry.index is not None:
        if target is None:
            label_news.setdefault((entry.key.rsplit(".", 1)[0], lang), {})[entry.index] = value
            return None
        if not isinstance(target, yaml.SequenceNode) or len(target.value) != 2:
            return "the labels must be two texts: [lowest, highest]"
        target = target.value[entry.index]
    if target is None:
        inserts.setdefault(id(mapping), (mapping, []))[1].append((lang, value))
        return None
    if not isinstance(target, yaml.ScalarNode):
        return f"line {edits.line(target)} is not a plain text"
    return edits.replace(target, value)


def _set_expected(expected: dict[str, Any], entry: TextEntry, lang: str, value: str) -> None:
    mapping = _get(expected, entry.path)
    if entry.index is None:
        mapping[lang] = value
    else:
        pair = mapping.get(lang)
        if not isinstance(pair, list):
            pair = mapping[lang] = [None, None]
        pair[entry.index] = value


def _verify(campaign: CampaignTexts, new_text: str, expected: dict[str, Any]) -> None:
    """Read the result back: exactly the intended texts changed, nothing else."""
    try:
        data = parse(new_text, campaign.path.name).data
    except SourceError as exc:
        data = exc
    if data != expected:
        raise TranslationError([f"{campaign.path}: writing the translations in place would change "
                                "more than the translated texts, so nothing was written. Please report "
                                "this with the campaign file."])


def import_translations(campaign_path: str | Path, source: str | Path, *, write: bool = True) -> ImportReport:
    """Write the translations in `source` into the campaign file; nothing is written on error."""
    campaign = read_campaign(campaign_path)
    updates, warnings = read_updates(campaign, Path(source))
    new_text, report = apply_updates(campaign, updates)
    report.warnings = warnings + report.warnings
    if write and new_text != campaign.text:
        raw = new_text.encode("utf-8")
        campaign.path.write_bytes((b"\xef\xbb\xbf" if campaign.bom else b"") + raw)
        report.written = True
    return report


def export_translations(campaign_path: str | Path, to: str, out: str | Path) -> list[Path]:
    """Export to one .xlsx file, or to a folder with one .po file per language."""
    campaign = read_campaign(campaign_path)
    out = Path(out)
    if to == "xlsx":
        export_xlsx(campaign, out)
        return [out]
    if to == "po":
        if len(campaign.languages) < 2:
            raise TranslationError([f"{campaign.path}: there is only one language; add the languages to "
                                    "translate into to 'languages:' first"])
        return export_po(campaign, out)
    raise TranslationError([f"unknown format '{to}': use xlsx or po"])
