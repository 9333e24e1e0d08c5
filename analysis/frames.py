"""pandas DataFrames for notebooks: the export layouts, reach and priorities, sync or async.

Each function has an `_async` twin for code that already runs an event loop; the plain ones
also work inside Jupyter (they run on a worker thread there).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bot.db import Database, run

from analysis.contract import Column, Labeller, LongRows, long_columns, wide_columns, wide_row
from analysis.exports import grouped_rows, id_maker
from analysis.inputs import read_baseline, read_weights
from analysis.priority import compare_orders, weighted_mean
from analysis.reading import CampaignContext, iter_responses, load_context, opened, snapshot
from analysis.summary import grouped_columns, grouped_lines, protect_all
from analysis.tally import Tally, tally
from analysis.weighting import population_weights, solidarity_weights

Shares = Mapping[str, Mapping[str, float]]


def _frame(rows: list[list[Any]], columns: list[Column]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[c for c, _ in columns])
    for name, kind in columns:
        if kind == "time":
            df[name] = pd.to_datetime(df[name], utc=True)
        elif kind == "int":
            df[name] = df[name].astype("Int64")
        elif kind == "float":
            df[name] = df[name].astype("Float64")
        elif kind == "bool":
            df[name] = df[name].astype("boolean")
    return df


async def _context(database: Database | str, campaign: str) -> CampaignContext:
    async with opened(database) as db, db.engine.connect() as conn:
        return await load_context(conn, campaign)


async def load_answers_async(database: Database | str, campaign: str, *, stable_ids: bool = False,
                             labels: str | None = None) -> pd.DataFrame:
    """The long layout as a DataFrame; see `load_answers`."""
    async with opened(database) as db:
        async with db.engine.connect() as conn:
            ctx = await load_context(conn, campaign)
        ctx.check_language(labels)
        ids = id_maker(stable_ids)
        labeller = Labeller(ctx.spec, labels) if labels else None
        make = LongRows(ctx.spec, ids, labeller)
        rows: list[list[Any]] = []
        async with snapshot(db) as conn:
            async for r in iter_responses(conn, ctx, in_start_order=True):
                rows += make(r)
    return _frame(rows, long_columns(ctx.spec, bool(labels)))


def load_answers(database: Database | str, campaign: str, *, stable_ids: bool = False,
                 labels: str | None = None) -> pd.DataFrame:
    """One row per answer value, with exactly the columns of the long export.

    Args:
        database: a database URL (e.g. "sqlite+aiosqlite:///coassess.db") or a `bot.db.Database`.
        campaign: the campaign id.
        stable_ids: use the stored pseudonyms instead of per-call ones.
        labels: a language code to add question and option texts.
    """
    return run(load_answers_async(database, campaign, stable_ids=stable_ids, labels=labels))


async def load_responses_async(database: Database | str, campaign: str, *, stable_ids: bool = False,
                               labels: str | None = None) -> pd.DataFrame:
    """The wide layout as a DataFrame; see `load_responses`."""
    async with opened(database) as db:
        async with db.engine.connect() as conn:
            ctx = await load_context(conn, campaign)
        ctx.check_language(labels)
        ids = id_maker(stable_ids)
        labeller = Labeller(ctx.spec, labels) if labels else None
        rows = []
        async with snapshot(db) as conn:
            async for r in iter_responses(conn, ctx, in_start_order=True):
                rows.append(wide_row(ctx.spec, r, ids, labeller))
    return _frame(rows, wide_columns(ctx.spec, bool(labels)))


def load_responses(database: Database | str, campaign: str, *, stable_ids: bool = False,
                   labels: str | None = None) -> pd.DataFrame:
    """One row per response (started, completed, every answer), as in the wide export."""
    return run(load_responses_async(database, campaign, stable_ids=stable_ids, labels=labels))


async def _tally(database: Database | str, campaign: str, by: str | None = None) -> Tally:
    async with opened(database) as db:
        async with db.engine.connect() as conn:
            ctx = await load_context(conn, campaign)
        ctx.check_dimension(by)
        async with snapshot(db) as conn:
            return await tally(ctx, iter_responses(conn, ctx))


async def group_summary_async(database: Database | str, campaign: str, by: str | None = None, *,
                              labels: str | None = None, min_group_size: int | None = None) -> pd.DataFrame:
    """The grouped layout as a DataFrame; see `group_summary`."""
    t = await _tally(database, campaign, by)
    t.ctx.check_language(labels)
    k = t.ctx.min_group_size
    if min_group_size is not None:
        if min_group_size < k:
            raise ValueError(f"the campaign protects groups under {k}; a lower threshold "
                             f"({min_group_size}) is not allowed")
        k = min_group_size
    lines = grouped_lines(t, protect_all(t, k=k), by)
    return _frame(grouped_rows(t.ctx, lines, labels), grouped_columns(bool(labels)))


def group_summary(database: Database | str, campaign: str, by: str | None = None, *,
                  labels: str | None = None, min_group_size: int | None = None) -> pd.DataFrame:
    """Counts, shares and means per group, question and option, with disclosure control applied.

    Args:
        database: a database URL or a `bot.db.Database`.
        campaign: the campaign id.
        by: one group dimension instead of all.
        labels: a language code to add group, question and option texts.
        min_group_size: a stricter threshold than the campaign's (never a lower one).

    Returns:
        The grouped layout: hidden figures are missing values, and `suppressed` says why
        ("<10": fewer than 10 people; "c": hidden so that another cannot be worked out).
    """
    return run(group_summary_async(database, campaign, by, labels=labels, min_group_size=min_group_size))


async def reach_async(database: Database | str, campaign: str, *,
                      baseline: str | Path | Shares | None = None) -> pd.DataFrame:
    """Responses and completion per group, invite and language; see `reach`."""
    t = await _tally(database, campaign)
    base = _shares(baseline, t.ctx, read_baseline) if baseline is not None else t.ctx.baseline
    p = protect_all(t, base)
    cols = ["dimension", "group", "started", "completed", "completion", "sample_share",
            "population_share", "ratio", "flag", "suppressed"]
    rows = [[ln.dimension or "(all)", ln.group, ln.started, ln.completed, ln.completion, ln.sample_share,
             ln.population_share, ln.ratio, ln.flag, ln.suppressed or ln.completed_suppressed or None]
            for ln in p.reach.values()]
    return _frame(rows, [(c, "int" if c in ("started", "completed") else
                          "float" if c in ("completion", "sample_share", "population_share", "ratio")
                          else "str") for c in cols])


def reach(database: Database | str, campaign: str, *,
          baseline: str | Path | Shares | None = None) -> pd.DataFrame:
    """Who took part: per group, invite link ("(invite)") and language ("(language)"), with the
    representation ratio against the baseline and under-represented groups flagged; protected."""
    return run(reach_async(database, campaign, baseline=baseline))


def _shares(value: str | Path | Shares, ctx: CampaignContext, reader: Any) -> dict[str, dict[str, float]]:
    if isinstance(value, str | Path):
        return reader(Path(value), ctx)
    return {d: dict(s) for d, s in value.items()}


async def priorities_async(database: Database | str, campaign: str, *,
                           baseline: str | Path | Shares | None = None,
                           weights: str | Path | Shares | None = None) -> pd.DataFrame:
    """Overall priorities three ways; see `priorities`."""
    t = await _tally(database, campaign)
    ctx = t.ctx
    base = _shares(baseline, ctx, read_baseline) if baseline is not None else ctx.baseline
    need = _shares(weights, ctx, read_weights) if weights is not None else None
    dims = ctx.dimension_ids()
    population = population_weights(t.memberships, dims, base, {d: ctx.group_ids(d) for d in dims})
    solidarity = solidarity_weights(population, t.memberships, dims, need) if need else None
    protected = protect_all(t, base)
    frames = []
    for qid in t.priority_rows:
        q = ctx.spec.question(qid)
        if protected.questions[qid].line(("", "(all)")).n is None:
            continue  # fewer answers than the threshold
        idx, matrix = t.priority_matrix(qid)
        scores = {"unweighted": weighted_mean(matrix)}
        if population.dimensions:
            scores["population"] = weighted_mean(matrix, population.values[idx])
        if solidarity is not None:
            scores["solidarity"] = weighted_mean(matrix, solidarity.values[idx])
        table = compare_orders(q.option_ids, scores)
        table.insert(0, "measure", "coin share" if q.type == "budget" else "Borda points")
        table.insert(0, "question", qid)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["question", "measure", "option", "unweighted", "unweighted_rank",
                                     "orders_differ"])
    return pd.concat(frames, ignore_index=True)


def priorities(database: Database | str, campaign: str, *, baseline: str | Path | Shares | None = None,
               weights: str | Path | Shares | None = None) -> pd.DataFrame:
    """The overall order of options for every budget and rank question, three ways side by side.

    Columns per scheme: its score and rank ("unweighted"; "population" when there is a baseline;
    "solidarity" when need `weights` are given), and `orders_differ`.
    """
    return run(priorities_async(database, campaign, baseline=baseline, weights=weights))
