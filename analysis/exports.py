"""Exports in three layouts (long, wide, grouped) and four formats, streamed from the database.

The long and wide layouts are record-level data for analysts who work with the council
(each export is recorded in the audit trail); the grouped layout has disclosure control
applied and is fit to publish. Record-level exports give times to the day unless exact times
are asked for (audited), and, with per-export pseudonyms, rows in a random order, so that two
exports cannot be re-linked by time or by position (docs/analysis.md).
"""

from __future__ import annotations

import hmac
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.db import Database, run
from bot.services import audit

from analysis.contract import Labeller, LongRows, long_columns, wide_columns, wide_row
from analysis.reading import (
    BATCH,
    CampaignContext,
    ResponseRecord,
    count_responses,
    iter_responses,
    load_context,
    opened,
    snapshot,
)
from analysis.summary import grouped_columns, grouped_lines, protect_all
from analysis.tally import tally
from analysis.writers import CsvWriter, Format, TableWriter, format_for, open_writer

Layout = Literal["long", "wide", "grouped"]
LAYOUTS: tuple[Layout, ...] = ("long", "wide", "grouped")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportResult:
    """What was written: the file, its layout and format, how many rows and responses."""

    path: Path
    layout: Layout
    format: Format
    rows: int
    responses: int
    stable_ids: bool
    exact_times: bool = False


def to_the_day(r: ResponseRecord) -> ResponseRecord:
    """The record with every time cut to its day (00:00 UTC): a time to the second re-links two
    exports with different pseudonyms, and can point at a person seen answering."""
    r.started_at = _day(r.started_at)  # type: ignore[assignment]
    r.completed_at = _day(r.completed_at)
    for a in r.answers:
        stamp = a._stamp
        a._at = _day(a._at) if a._at is not None else None
        a._stamp = f"{stamp[:10]}T00:00:00.000000Z" if stamp is not None else None
    return r


def _day(t: Any) -> Any:
    return t.replace(hour=0, minute=0, second=0, microsecond=0) if t is not None else None


def id_maker(stable_ids: bool, salt: bytes | None = None) -> Callable[[ResponseRecord], tuple[str, str]]:
    """(response, participant) ids for a row: the stored ones, or HMACs under a fresh per-export salt.

    A per-export salt means two exports cannot be joined on these columns, so a leaked export
    cannot be matched with another one. The HMACs are `bot.pseudonym.salted`'s, computed with
    the one-shot `hmac.digest` (the same bytes, in less time).
    """
    if stable_ids:
        return lambda r: (str(r.id), r.participant)
    key = salt or secrets.token_bytes(32)

    def ids(r: ResponseRecord) -> tuple[str, str]:
        return (hmac.digest(key, f"response:{r.id}".encode(), "sha256").hex()[:20],
                hmac.digest(key, r.participant.encode(), "sha256").hex()[:20])

    return ids


async def _stream_layout(db: Database, ctx: CampaignContext, layout: Layout, writer: TableWriter, *,
                         labels: str | None, stable_ids: bool, progress: Progress | None,
                         exact_times: bool = False) -> int:
    ids = id_maker(stable_ids)
    # With per-export pseudonyms, responses are shuffled in windows of BATCH rows (all of a
    # campaign below that size), so that row order does not re-link two exports; memory stays flat.
    shuffle = None if stable_ids else random.Random(secrets.randbits(64)).shuffle
    labeller = Labeller(ctx.spec, labels) if labels else None
    # The long layout converts repeated cells once (per response, answer or option) for writers
    # that can take converted cells; the wide layout has one row per response and no repeats.
    long = LongRows(ctx.spec, ids, labeller, writer.cell_format) if layout == "long" else None
    write: Callable[[Any], None] = writer.write_cells if long is not None and writer.cell_format else writer.write
    make: Callable[[ResponseRecord], list[Any]] | None = long
    if long is not None and isinstance(writer, CsvWriter):
        # CSV: finished lines, the repeated parts rendered once by the writer's own csv writer
        csv_writer = writer
        write = csv_writer.write_lines

        def make(r: ResponseRecord) -> list[Any]:
            return long.lines(r, csv_writer.render, csv_writer.render_value, csv_writer.line_end)
    groups: list[list[Any]] = []  # one group of rows per response
    pending = 0
    responses = 0

    def flush() -> None:
        if shuffle is not None:
            shuffle(groups)
        write([row for g in groups for row in g])
        groups.clear()

    async with snapshot(db) as conn:
        async for r in iter_responses(conn, ctx, in_start_order=True):
            responses += 1
            if not exact_times:
                r = to_the_day(r)
            rows = make(r) if make is not None else [wide_row(ctx.spec, r, ids, labeller)]
            groups.append(rows)
            pending += len(rows)
            if pending >= BATCH:
                flush()
                pending = 0
            if progress is not None and responses % 1000 == 0:
                progress(1000)
    if groups:
        flush()
    if progress is not None and responses % 1000:
        progress(responses % 1000)
    return responses


def grouped_rows(ctx: CampaignContext, lines: list[Any], labels: str | None) -> list[list[Any]]:
    labeller = Labeller(ctx.spec, labels) if labels else None
    rows = []
    for ln in lines:
        row: list[Any] = [ctx.id, ln.dimension, ln.group]
        if labeller:
            row.append(_group_text(ctx, ln.dimension, ln.group, labels or ""))
        row.append(ln.question)
        if labeller:
            row.append(labeller.question(ln.question))
        row += [ln.type, ln.option or None]
        if labeller:
            row.append(labeller.option(ln.question, ln.option) if ln.option else None)
        row += [ln.n, ln.share, ln.mean, ln.ci_low, ln.ci_high, ln.suppressed or None]
        rows.append(row)
    return rows


def _group_text(ctx: CampaignContext, dimension: str, group: str, lang: str) -> str:
    for d in ctx.spec.groups:
        if d.id == dimension:
            for o in d.options:
                if o.id == group:
                    return ctx.spec.text(o.text, lang)
    return group


async def export_async(database: Database | str, campaign: str, path: str | Path,
                       layout: Layout = "long", format: Format | None = None, *,  # noqa: A002
                       labels: str | None = None, stable_ids: bool = False, by: str | None = None,
                       progress: Progress | None = None, on_total: Callable[[int], None] | None = None,
                       actor: str | None = None, exact_times: bool = False) -> ExportResult:
    """Write one export file; see `export` for the arguments."""
    path = Path(path)
    fmt: Format = format or format_for(path) or "csv"
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    async with opened(database) as db:
        async with db.engine.connect() as conn:
            ctx = await load_context(conn, campaign)
            total = await count_responses(conn, campaign)
        ctx.check_dimension(by)
        ctx.check_language(labels)
        if on_total is not None:
            on_total(total)
        sheet = {"long": "answers", "wide": "responses", "grouped": "by group"}[layout]
        if layout == "grouped":
            async with snapshot(db) as conn:
                t = await tally(ctx, iter_responses(conn, ctx), progress)
            lines = grouped_lines(t, protect_all(t), by)
            with open_writer(path, fmt, grouped_columns(bool(labels)), sheet=sheet) as w:
                w.write(grouped_rows(ctx, lines, labels))
                rows, responses = w.rows, t.responses
        else:
            columns = (long_columns(ctx.spec, bool(labels)) if layout == "long"
                       else wide_columns(ctx.spec, bool(labels)))
            with open_writer(path, fmt, columns, sheet=sheet) as w:
                responses = await _stream_layout(db, ctx, layout, w, labels=labels,
                                                 stable_ids=stable_ids, progress=progress,
                                                 exact_times=exact_times)
                rows = w.rows
        async with db.session() as session:
            await audit.record(session, actor or audit.cli_actor(), "export", campaign, layout=layout,
                               format=fmt, file=path.name, rows=rows, responses=responses,
                               stable_ids=stable_ids, exact_times=exact_times and layout != "grouped",
                               labels=labels, by=by)
            await session.commit()
    return ExportResult(path, layout, fmt, rows, responses, stable_ids, exact_times)


def export(database: Database | str, campaign: str, path: str | Path, layout: Layout = "long",
           format: Format | None = None, *, labels: str | None = None,  # noqa: A002
           stable_ids: bool = False, by: str | None = None, exact_times: bool = False) -> ExportResult:
    """Export a campaign's answers to a file.

    Args:
        database: a database URL (e.g. "sqlite+aiosqlite:///coassess.db") or a `bot.db.Database`.
        campaign: the campaign id.
        path: the file to write; its extension chooses the format unless `format` is given.
        layout: "long" (one row per answer value), "wide" (one row per response) or
            "grouped" (counts per group with disclosure control).
        format: "csv", "xlsx", "parquet" or "json" (JSON Lines).
        labels: a language code; adds question and option texts in that language.
        stable_ids: use the stored pseudonyms, so this export can be joined with another one
            (rows then keep the response order; recorded in the audit trail).
        by: for the grouped layout, one group dimension instead of all.
        exact_times: times to the microsecond instead of the day (recorded in the audit trail).

    Returns:
        An `ExportResult` with the number of rows and responses written.
    """
    return run(export_async(database, campaign, path, layout, format, labels=labels,
                            stable_ids=stable_ids, by=by, exact_times=exact_times))
