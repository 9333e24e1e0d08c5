"""The export contract: column names and order, and how each answer type becomes rows and cells.

Pure functions only; analysts' scripts rely on this file not changing without notice
(see docs/analysis.md, "The export contract").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from bot.campaigns.schema import OTHER, CampaignSpec, Question

from analysis.reading import ResponseRecord

# The kinds a column can have; writers map them to each format's types.
Kind = Literal["str", "int", "float", "bool", "time", "any"]
Column = tuple[str, Kind]

LEADING: tuple[Column, ...] = (("campaign", "str"), ("response", "str"), ("participant", "str"),
                               ("language", "str"), ("invite", "str"), ("partner", "str"))
VOICE = "voice"


# contract.iso's text: digits, '-', ':', '.', 'T' and 'Z' only (nothing a CSV writer would quote)
_ISO_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").fullmatch


def group_column(dimension: str) -> str:
    return f"group:{dimension}"


def leading_columns(spec: CampaignSpec) -> list[Column]:
    return [*LEADING, *[(group_column(d.id), "str") for d in spec.groups]]


def long_columns(spec: CampaignSpec, labels: bool = False) -> list[Column]:
    """campaign, response, participant, language, invite, partner, group:<dim>..., question,
    [question_text], type, option, [option_text], value, status, answered_at."""
    cols = leading_columns(spec)
    cols.append(("question", "str"))
    if labels:
        cols.append(("question_text", "str"))
    cols += [("type", "str"), ("option", "str")]
    if labels:
        cols.append(("option_text", "str"))
    cols += [("value", "any"), ("status", "str"), ("answered_at", "time")]
    return cols


def wide_question_columns(q: Question, labels: bool = False) -> list[Column]:
    """The columns one question takes in the wide layout (none for info screens)."""
    if q.type == "info":
        return []
    if q.type == "rating":
        return [(q.id, "int")]
    if q.type == "yesno":
        return [(q.id, "str")]
    if q.type == "choice":
        cols: list[Column] = [(q.id, "str")]
        if labels:
            cols.append((f"{q.id}:label", "str"))
        if q.other:
            cols.append((f"{q.id}:{OTHER}", "str"))
        return cols
    if q.type == "multi":
        cols = [(f"{q.id}:{o}", "int") for o in q.option_ids]
        if q.other:
            cols.append((f"{q.id}:{OTHER}", "str"))  # the words given for "something else"
        return cols
    if q.type in {"rank", "budget"}:
        return [(f"{q.id}:{o}", "int") for o in q.option_ids]
    cols = [(q.id, "str")]  # text
    if q.voice:
        cols.append((f"{q.id}:{VOICE}", "int"))
    return cols


def wide_columns(spec: CampaignSpec, labels: bool = False) -> list[Column]:
    cols = leading_columns(spec)
    cols += [("started_at", "time"), ("completed_at", "time"), ("completed", "bool")]
    for q in spec.questions:
        cols += wide_question_columns(q, labels)
    return cols


def group_cell(groups: list[str] | None) -> str | None:
    """Selected group ids joined by ';', or prefer_not_to_say; None when the dimension was not asked."""
    if not groups:
        return None
    return ";".join(groups)


def iso(t: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds and a Z, the same on every backend."""
    if t is None:
        return None
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ") (years 1000-9999), in a third less time.
    return t.isoformat(timespec="microseconds")[:-6] + "Z"


def answer_rows(q: Question, status: str, value: Any) -> list[tuple[str | None, Any]]:
    """(option, value) pairs of one answer in the long layout; nothing for an info screen."""
    t = q.type
    if t == "info":
        return []
    if status != "answered" or not isinstance(value, dict):
        return [(None, None)]
    if t == "rating" or t == "yesno":  # noqa: PLR1714 - two string comparisons beat a set per answer
        return [(None, value.get("value"))]
    if t == "choice":
        option = value.get("option")
        return [(OTHER, value.get("text")) if option == OTHER else (option, 1)]
    if t == "multi":
        return [(OTHER, value.get("text")) if option == OTHER else (option, 1)
                for option in value.get("options", [])]
    if t == "rank":
        return [(option, position) for position, option in enumerate(value.get("order", []), start=1)]
    if t == "budget":
        coins = value.get("coins", {})
        # every option, 0 included, in the campaign's order
        return [(option, int(coins.get(option, 0))) for option in q.option_ids]
    if t == "text":
        if "voice" in value:
            return [(VOICE, int(value["voice"].get("duration", 0)))]
        return [(None, value.get("text"))]
    return []


class Labeller:
    """Question and option texts in one language, for `--labels LANG`."""

    def __init__(self, spec: CampaignSpec, lang: str) -> None:
        self.spec = spec
        self.lang = lang
        self._questions = {q.id: spec.text(q.text, lang) for q in spec.questions}
        self._options = {(q.id, o.id): spec.text(o.text, lang)
                         for q in spec.questions for o in q.options or []}

    def question(self, qid: str) -> str:
        return self._questions.get(qid, "")

    def option(self, qid: str, option: str | None) -> str | None:
        if option is None:
            return None
        if option == OTHER:
            return "other"
        if option == VOICE:
            return "voice note"
        return self._options.get((qid, option))


def leading_values(spec: CampaignSpec, r: ResponseRecord, ids: Callable[[ResponseRecord], tuple[str, str]]
                   ) -> list[Any]:
    response, participant = ids(r)
    return [spec.id, response, participant, r.language, r.invite, r.partner,
            *[group_cell(r.groups.get(d.id)) for d in spec.groups]]


def long_rows(spec: CampaignSpec, r: ResponseRecord, ids: Callable[[ResponseRecord], tuple[str, str]],
              labeller: Labeller | None = None) -> Iterator[list[Any]]:
    """The long-layout rows of one response: one row per answer value, in campaign order."""
    yield from LongRows(spec, ids, labeller)(r)


def _same(value: Any) -> Any:
    return value


class LongRows:
    """Makes the long-layout rows of response after response (see `long_rows`).

    `cell`, if given, is a writer's cell conversion per column kind (`CsvWriter.cell_format`):
    it is applied here, where a value is known to repeat, instead of to every cell of every row:
    once per response for the leading columns, once per answer for `answered_at` and `status`,
    once per question and option for the ids and texts, and per row only to `value`. The rows
    then hold exactly the cells the writer would have made of the plain values.
    """

    def __init__(self, spec: CampaignSpec, ids: Callable[[ResponseRecord], tuple[str, str]],
                 labeller: Labeller | None = None,
                 cell: Callable[[Kind], Callable[[Any], Any]] | None = None) -> None:
        self.spec = spec
        self.ids = ids
        self.labeller = labeller
        kind = cell or (lambda _kind: _same)
        self._str = kind("str")
        self._value = kind("any")
        self._time = kind("time")
        # A time conversion marked `iso_text` gives `iso(t)`: the record's ISO text serves as is.
        self._iso_text = bool(getattr(self._time, "iso_text", False))
        self._questions = {q.id: q for q in spec.questions}
        # question id -> the cells of question, [question_text], type
        self._heads: dict[str, list[Any]] = {}
        for q in spec.questions:
            head = [self._str(q.id)]
            if labeller:
                head.append(self._str(labeller.question(q.id)))
            head.append(self._str(q.type))
            self._heads[q.id] = head
        self._options: dict[str, dict[Any, list[Any]]] = {}  # question -> option -> option, [option_text]
        self._status: dict[str, Any] = {}
        self._rendered_heads: dict[str, str] = {}
        self._rendered_options: dict[str, dict[Any, str]] = {}
        self._rendered_status: dict[str, str] = {}

    def _option(self, qid: str, option: Any) -> list[Any]:
        cells = [self._str(option)]
        if self.labeller:
            cells.append(self._str(self.labeller.option(qid, option)))
        return cells

    def __call__(self, r: ResponseRecord) -> list[list[Any]]:
        to_str = self._str
        lead = [to_str(v) for v in leading_values(self.spec, r, self.ids)]
        value_cell, time_cell, iso_text = self._value, self._time, self._iso_text
        options, statuses, rows = self._options, self._status, []
        for a in r.answers:
            q = self._questions.get(a.question_id)
            if q is None:  # an answer to a question no longer in the campaign: nothing to say about it
                continue
            head = lead + self._heads[q.id]
            status = statuses.get(a.status)
            if status is None:
                status = statuses[a.status] = to_str(a.status)
            stamp = (a.stamp if iso_text else None) or time_cell(a.answered_at)
            known = options.get(q.id)
            if known is None:
                known = options[q.id] = {}
            for option, value in answer_rows(q, a.status, a.value):
                try:
                    opt = known.get(option)
                    if opt is None:
                        opt = known[option] = self._option(q.id, option)
                except TypeError:  # an unhashable option in a malformed answer: not cached
                    opt = self._option(q.id, option)
                rows.append([*head, *opt, value_cell(value), status, stamp])
        return rows


    def lines(self, r: ResponseRecord, render: Callable[[list[Any]], str], render_value: Callable[[Any], str],
              line_end: str) -> list[str]:
        """The rows of `__call__` as finished CSV lines: `render` (the writer's own csv quoting)
        is applied once per response, answer and option, `render_value` per row to `value`."""
        lead = render([self._str(v) for v in leading_values(self.spec, r, self.ids)])
        heads, rendered, lines = self._rendered_heads, self._rendered_options, []
        statuses = self._rendered_status
        for a in r.answers:
            q = self._questions.get(a.question_id)
            if q is None:
                continue
            head = heads.get(q.id)
            if head is None:
                head = heads[q.id] = render(self._heads[q.id])
            prefix = f"{lead},{head},"
            status = statuses.get(a.status)
            if status is None:
                status = statuses[a.status] = render([self._str(a.status)])
            stamp = (a.stamp if self._iso_text else None) or self._time(a.answered_at)
            # an ISO time never needs quoting; anything else goes through the csv writer
            stamp = stamp if stamp.__class__ is str and _ISO_SHAPE(stamp) else render([stamp])
            suffix = f",{status},{stamp}{line_end}"
            known = rendered.get(q.id)
            if known is None:
                known = rendered[q.id] = {}
            for option, value in answer_rows(q, a.status, a.value):
                try:
                    opt = known.get(option)
                    if opt is None:
                        opt = known[option] = render(self._option(q.id, option))
                except TypeError:  # an unhashable option in a malformed answer: not cached
                    opt = render(self._option(q.id, option))
                lines.append(f"{prefix}{opt},{render_value(value)}{suffix}")
        return lines


def wide_row(spec: CampaignSpec, r: ResponseRecord, ids: Callable[[ResponseRecord], tuple[str, str]],
             labeller: Labeller | None = None) -> list[Any]:
    """The wide-layout row of one response; skipped and not-shown questions are both empty."""
    cells: dict[str, Any] = {}
    questions = {q.id: q for q in spec.questions}
    for a in r.answers:
        q = questions.get(a.question_id)
        if q is None or a.status != "answered" or not isinstance(a.value, dict):
            continue
        v = a.value
        if q.type in {"rating", "yesno"}:
            cells[q.id] = v.get("value")
        elif q.type == "choice":
            cells[q.id] = v.get("option")
            if v.get("option") == OTHER:
                cells[f"{q.id}:{OTHER}"] = v.get("text")
            if labeller:
                cells[f"{q.id}:label"] = labeller.option(q.id, v.get("option"))
        elif q.type == "multi":
            chosen = set(v.get("options", []))
            for o in q.option_ids:
                cells[f"{q.id}:{o}"] = 1 if o in chosen else 0
            if OTHER in chosen:
                cells[f"{q.id}:{OTHER}"] = v.get("text")
        elif q.type == "rank":
            for position, o in enumerate(v.get("order", []), start=1):
                cells[f"{q.id}:{o}"] = position
        elif q.type == "budget":
            coins = v.get("coins", {})
            for o in q.option_ids:
                cells[f"{q.id}:{o}"] = int(coins.get(o, 0))
        elif q.type == "text":
            if "voice" in v:
                cells[f"{q.id}:{VOICE}"] = int(v["voice"].get("duration", 0))
            else:
                cells[q.id] = v.get("text")
    row = leading_values(spec, r, ids)
    row += [r.started_at, r.completed_at, r.completed_at is not None]
    for q in spec.questions:
        row += [cells.get(name) for name, _ in wide_question_columns(q, labeller is not None)]
    return row
