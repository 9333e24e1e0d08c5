"""Reading the small CSV files an officer writes: population shares (baseline) and need weights.

Both have one row per group: `dimension,group,share` or `dimension,group,weight`. Commas,
semicolons or tabs separate the columns; `0.15`, `0,15` and `15%` all mean fifteen per cent.
Every problem names the file, the line and how to fix it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from analysis.reading import CampaignContext

SHARE_TOLERANCE = 0.011  # the same tolerance as campaign files


class InputFileError(ValueError):
    """A problem in a baseline or weights file, with the place and a fix."""

    def __init__(self, path: Path, line: int | None, message: str, hint: str = "") -> None:
        self.path, self.line, self.message, self.hint = path, line, message, hint
        where = f"{path}, line {line}" if line else str(path)
        super().__init__(f"{where}: {message}" + (f". {hint}" if hint else ""))


@dataclass(frozen=True)
class _Row:
    line: int
    dimension: str
    group: str
    raw: str


def _number(text: str) -> float | None:
    t = text.strip().replace("\u00a0", "").replace(" ", "")
    percent = t.endswith("%")
    if percent:
        t = t[:-1]
    if "," in t and "." not in t:
        t = t.replace(",", ".")
    try:
        value = float(t)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return value / 100 if percent else value


def _read(path: Path, ctx: CampaignContext, value_column: str, example: str) -> list[_Row]:
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, None, "the file does not exist", "Check the path and try again.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, None, "the file is not UTF-8 text",
                             "Save it from your spreadsheet as 'CSV UTF-8'.") from exc
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputFileError(path, 1, f"the first line must name the columns: dimension,group,{value_column}",
                             f"For example:\n{example}")
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines, dialect)
    header = [h.strip().lower() for h in next(reader)]
    need = ["dimension", "group", value_column]
    if any(c not in header for c in need):
        raise InputFileError(path, 1, f"the columns must be named dimension,group,{value_column} "
                             f"(found: {','.join(header) or 'nothing'})", f"For example:\n{example}")
    idx = [header.index(c) for c in need]
    rows: list[_Row] = []
    seen: dict[tuple[str, str], int] = {}
    dims = ctx.dimension_ids()
    for lineno, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) <= max(idx):
            raise InputFileError(path, lineno, f"expected 3 values (dimension, group, {value_column}), "
                                 f"found {len(cells)}", f"For example: {example.splitlines()[1]}")
        d, g, raw = (cells[i].strip() for i in idx)
        if d not in dims:
            raise InputFileError(path, lineno, f"the campaign has no group dimension '{d}'",
                                 f"Use one of: {', '.join(dims) or '(none)'}")
        groups = ctx.group_ids(d)
        if g not in groups:
            raise InputFileError(path, lineno, f"'{d}' has no group '{g}'", f"Use one of: {', '.join(groups)}")
        if (d, g) in seen:
            raise InputFileError(path, lineno, f"group '{d}/{g}' is already given on line {seen[(d, g)]}",
                                 "Keep one line per group.")
        seen[(d, g)] = lineno
        rows.append(_Row(lineno, d, g, raw))
    if not rows:
        raise InputFileError(path, None, "the file has a header but no rows", f"For example:\n{example}")
    return rows


def read_baseline(path: Path, ctx: CampaignContext) -> dict[str, dict[str, float]]:
    """Population shares per dimension; each dimension's shares must add up to 1 (100 %)."""
    example = "dimension,group,share\nage,under25,0.30\nage,25_64,0.52\nage,over64,0.18"
    out: dict[str, dict[str, float]] = {}
    first_line: dict[str, int] = {}
    for row in _read(Path(path), ctx, "share", example):
        value = _number(row.raw)
        if value is None:
            raise InputFileError(Path(path), row.line, f"'{row.raw}' is not a number",
                                 "Write the share as 0.15 or 15%.")
        if not 0 <= value <= 1:
            hint = "Write 15% or 0.15 for fifteen per cent." if 1 < value <= 100 else "Shares are between 0 and 1."
            raise InputFileError(Path(path), row.line, f"share {row.raw} is not between 0 and 1", hint)
        out.setdefault(row.dimension, {})[row.group] = value
        first_line.setdefault(row.dimension, row.line)
    for d, shares in out.items():
        total = sum(shares.values())
        if abs(total - 1) > SHARE_TOLERANCE:
            raise InputFileError(Path(path), first_line[d], f"the shares for '{d}' add up to {total:.3g}, not 1",
                                 "List every group of the dimension, with shares that add up to 1 (100%).")
    return out


def read_weights(path: Path, ctx: CampaignContext) -> dict[str, dict[str, float]]:
    """Need weights per group (1 = as everyone, 2 = counts twice); groups not listed count once."""
    example = "dimension,group,weight\ncommunity,somali,2\ndisability,yes,3"
    out: dict[str, dict[str, float]] = {}
    for row in _read(Path(path), ctx, "weight", example):
        value = _number(row.raw)
        if value is None or value <= 0:
            raise InputFileError(Path(path), row.line, f"weight '{row.raw}' must be a number above 0",
                                 "1 counts as everyone else, 2 counts twice, 0.5 half.")
        out.setdefault(row.dimension, {})[row.group] = value
    return out
