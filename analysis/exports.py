"""Exports in three layouts (long, wide, grouped) and four formats, streamed from the database.

The long and wide layouts are record-level data for analysts who work with the council
(each export is recorded in the audit trail); the grouped layout has disclosure control
applied and is fit to publish.
"""

from __future__ import annotations

import hmac
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
                         labels: str | None, stable_ids: bool, progress: Progress | None) -> int:
    ids = id_maker(stable_ids)
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
    batch: list[Any] = []
    responses = 0
    async with snapshot(db) as conn:
        async for r in iter_responses(conn, ctx, in_start_order=True):
            responses += 1
            if make is not None:
                batch += make(r)
            else:
                batch.append(wide_row(ctx.spec, r, ids, labeller))
            if len(batch) >= BATCH:
                write(batch)
                batch = []
            if progress is not None and responses % 1000 == 0:
                progress(1000)
    if batch:
        write(batch)
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
                       actor: str | None = None) -> ExportResult:
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
                                                 stable_ids=stable_ids, progress=progress)
                rows = w.rows
        async with db.session() as session:
            await audit.record(session, actor or audit.cli_actor(), "export", campaign, layout=layout,
                               format=fmt, file=path.name, rows=rows, responses=responses,
                               stable_ids=stable_ids, labels=labels, by=by)
            await session.commit()
    return ExportResult(path, layout, fmt, rows, responses, stable_ids)


def export(database: Database | str, campaign: str, path: str | Path, layout: Layout = "long",
           format: Format | None = None, *, labels: str | None = None,  # noqa: A002
           stable_ids: bool = False, by: str | None = None) -> ExportResult:
    """Export a campaign's answers to a file.

    Args:
        database: a database URL (e.g. "sqlite+aiosqlite:///coassess.db") or a `bot.db.Database`.
        campaign: the campaign id.
        path: the file to write; its extension chooses the format unless `format` is given.
        layout: "long" (one row per answer value), "wide" (one row per response) or
            "grouped" (counts per group with disclosure control).
        format: "csv", "xlsx", "parquet" or "json" (JSON Lines).
        labels: a language code; adds question and option texts in that language.
        stable_ids: use the stored pseudonyms, so this export can be joined with another one.
        by: for the grouped layout, one group dimension instead of all.

    Returns:
        An `ExportResult` with the number of rows and responses written.
    """
    return run(export_async(database, campaign, path, layout, format, labels=labels,
                            stable_ids=stable_ids, by=by))
