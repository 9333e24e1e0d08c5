"""Table writers that take rows in batches: CSV, XLSX, Parquet and JSON Lines, all streaming.

Each writer writes to a hidden partial file and renames it into place only when closed without
an error, so an interrupted export never leaves a file that looks complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from analysis.contract import Column, Kind, iso

Format = Literal["csv", "xlsx", "parquet", "json"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx", "parquet", "json")
EXTENSIONS: dict[str, Format] = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet", ".pq": "parquet",
                                 ".json": "json", ".jsonl": "json", ".ndjson": "json"}

# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL = 32_767


def format_for(path: Path) -> Format | None:
    return EXTENSIONS.get(path.suffix.lower())


class TableWriter:
    """Base: a partial file renamed into place on a clean close."""

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.names = [c for c, _ in self.columns]
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)

    # A cell conversion per column kind that the row maker may apply ahead of `write_cells`
    # (see `contract.LongRows`); None: the writer converts every cell itself in `write`.
    cell_format: Callable[[Kind], Callable[[Any], Any]] | None = None

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def write_cells(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows whose cells have already been through `cell_format`."""
        self.write(rows)

    def _finish(self) -> None:
        raise NotImplementedError

    def close(self, ok: bool = True) -> None:
        try:
            self._finish()
        finally:
            if ok:
                os.replace(self.partial, self.path)
            else:
                self.partial.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(ok=exc_type is None)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


# The characters that make the csv module quote a field (delimiter, quote, line ends; NUL to be safe).
_CSV_SPECIAL = re.compile('[,"\r\n\x00]').search


def _csv_value(value: Any) -> Any:
    """`_csv_cell` with the common cases first: whole numbers and text (csv writes None as empty)."""
    cls = value.__class__
    if cls is int:
        return value
    if cls is str:
        return "'" + value if value.startswith(FORMULA_START) else value
    return _csv_cell(value)


def _csv_time(value: Any) -> Any:
    return iso(value) if value.__class__ is datetime else _csv_cell(value)


_csv_time.iso_text = True  # type: ignore[attr-defined]  # a datetime becomes exactly iso(value)


def csv_cell_format(kind: Kind) -> Callable[[Any], Any]:
    """The CSV cell conversion for a column kind; every one gives exactly what `_csv_cell` gives."""
    if kind == "time":
        return _csv_time
    return _csv_value


class CsvWriter(TableWriter):
    """UTF-8 with a byte-order mark, so Excel shows Arabic, Persian and Cyrillic correctly."""

    cell_format = staticmethod(csv_cell_format)

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        super().__init__(path, columns)
        self._fh = open(self.partial, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        self._csv = csv.writer(self._fh)
        self._csv.writerow(self.names)
        self._buf = io.StringIO(newline="")
        self._render = csv.writer(self._buf)
        self.line_end = self._csv.dialect.lineterminator

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self._csv.writerows([[_csv_cell(v) for v in row] for row in rows])
        self.rows += len(rows)

    def write_cells(self, rows: Sequence[Sequence[Any]]) -> None:
        self._csv.writerows(rows)
        self.rows += len(rows)

    # Lines made ahead (see `contract.LongRows.lines`): the parts of a row that repeat are
    # rendered once by a csv writer like this one, so the bytes are the csv module's own.

    def render(self, cells: Sequence[Any]) -> str:
        """Converted cells as this writer writes them, without the line end."""
        if len(cells) == 1:  # csv quotes a row made of one empty field: render it beside another
            return self.render([cells[0], ""])[:-1]
        self._buf.seek(0)
        self._buf.truncate()
        self._render.writerow(cells)
        return self._buf.getvalue()[:-2]

    def render_value(self, value: Any) -> str:
        """A plain value as one rendered cell, exactly `render([_csv_cell(value)])`."""
        cls = value.__class__
        if cls is str:
            if value.startswith(FORMULA_START):
                value = "'" + value
            return self.render([value]) if _CSV_SPECIAL(value) else value
        if cls is int:
            return str(value)
        if value is None:
            return ""
        return self.render([_csv_cell(value)])

    def write_lines(self, lines: list[str]) -> None:
        """Whole lines, each ending in `line_end`; one row each."""
        self._fh.write("".join(lines))
        self.rows += len(lines)

    def _finish(self) -> None:
        self._fh.close()


def _json_cell(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


_json_cell.iso_text = True  # type: ignore[attr-defined]


class JsonLinesWriter(TableWriter):
    """JSON Lines: one object per line, keys in contract order; read with pandas.read_json(lines=True)."""

    cell_format = staticmethod(lambda _kind: _json_cell)

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        super().__init__(path, columns)
        self._fh = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115
        self._encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self.write_cells([[_json_cell(v) for v in row] for row in rows])

    def write_cells(self, rows: Sequence[Sequence[Any]]) -> None:
        names, encode = self.names, self._encode
        out = [encode(dict(zip(names, row, strict=True))) for row in rows]
        if out:
            self._fh.write("\n".join(out) + "\n")
        self.rows += len(rows)

    def _finish(self) -> None:
        self._fh.close()


class XlsxWriter(TableWriter):
    """openpyxl in write-only mode; a layout longer than one sheet continues on 'long (2)', ..."""

    def __init__(self, path: Path, columns: Sequence[Column], sheet: str = "data") -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

        super().__init__(path, columns)
        self._illegal = ILLEGAL_CHARACTERS_RE
        self._error_codes = frozenset(ERROR_CODES)
        self._text_cell = WriteOnlyCell
        self._wb = Workbook(write_only=True)
        self._sheet_name = sheet
        self._sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._sheets += 1
        name = self._sheet_name if self._sheets == 1 else f"{self._sheet_name} ({self._sheets})"
        self._ws = self._wb.create_sheet(name[:31])
        self._ws.append(self.names)
        self._in_sheet = 1

    def _cell(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return iso(value)  # Excel dates cannot carry a time zone; the text keeps it UTC
        if isinstance(value, str):
            if self._illegal.search(value):
                value = self._illegal.sub("\ufffd", value)
            value = value[:XLSX_MAX_CELL]
            if value.startswith("=") or value in self._error_codes:
                # A participant's words are text, never a formula Excel would run.
                cell = self._text_cell(self._ws, value="")
                cell._value = value  # noqa: SLF001 - set without openpyxl's formula detection
                cell.data_type = "s"
                return cell
        return value

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            if self._in_sheet >= XLSX_MAX_ROWS:
                self._new_sheet()
            self._ws.append([self._cell(v) for v in row])
            self._in_sheet += 1
        self.rows += len(rows)

    def _finish(self) -> None:
        self._wb.save(self.partial)


class ParquetWriter(TableWriter):
    """pyarrow's ParquetWriter, one row group per batch; `value` is a string column."""

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(path, columns)
        types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
                 "time": pa.timestamp("us", tz="UTC"), "any": pa.string()}
        self._schema = pa.schema([(name, types[kind]) for name, kind in self.columns])
        self._kinds = [kind for _, kind in self.columns]
        self._writer = pq.ParquetWriter(self.partial, self._schema, compression="zstd")

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        import pyarrow as pa

        if not rows:
            return
        arrays = []
        for i, field in enumerate(self._schema):
            values = [row[i] for row in rows]
            kind = self._kinds[i]
            if kind in {"any", "str"}:
                values = [None if v is None else str(v) for v in values]
            arrays.append(pa.array(values, type=field.type))
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
        self.rows += len(rows)

    def _finish(self) -> None:
        self._writer.close()


def open_writer(path: Path, fmt: Format, columns: Sequence[Column], sheet: str = "data") -> TableWriter:
    if fmt == "csv":
        return CsvWriter(path, columns)
    if fmt == "json":
        return JsonLinesWriter(path, columns)
    if fmt == "xlsx":
        return XlsxWriter(path, columns, sheet=sheet)
    if fmt == "parquet":
        return ParquetWriter(path, columns)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
