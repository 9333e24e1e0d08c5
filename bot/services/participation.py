"""Live participation per group against the baseline, with small counts hidden (disclosure control)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Text, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.schema import PREFER_NOT, CampaignSpec
from bot.models import Response, ResponseGroup


@dataclass(frozen=True)
class Cell:
    label: str
    shown: str          # the count, or "<k" / "c" when hidden
    share: float | None  # of the people who agreed, when the count is shown
    baseline: float | None


@dataclass(frozen=True)
class Participation:
    total: int
    total_shown: str
    dimensions: list[tuple[str, list[Cell]]]
    finished_shown: str | None = None  # of those who agreed, how many finished (the campaign list)


async def participation(session: AsyncSession, spec: CampaignSpec, lang: str) -> Participation:
    """People who agreed to take part (and how many of them finished), per group, with small
    counts hidden (disclosure control); the campaign list and the campaign's page show these.

    Counted in the database: two aggregate queries (the people who agreed, and the group answers
    per combination of groups, each with the sum of its record keys), so the console's live page
    reads a few dozen rows, not one row per person, however large the campaign."""
    agreed = (Response.campaign_id == spec.id, Response.consented_at.is_not(None))
    done_key = case((Response.completed_at.is_not(None), Response.record_key), else_=0)
    total, total_key, finished, finished_key = (await session.execute(
        select(func.count(Response.id), func.coalesce(func.sum(Response.record_key), 0),
               func.count(Response.completed_at), func.coalesce(func.sum(done_key), 0))
        .where(*agreed))).one()
    combos: dict[str, list[tuple[list[str], int, int]]] = {}
    if total:
        as_text = cast(ResponseGroup.groups, Text)
        for dim, groups, n, key in (await session.execute(
                select(ResponseGroup.dimension_id, as_text, func.count(),
                       func.coalesce(func.sum(Response.record_key), 0))
                .join(Response, Response.id == ResponseGroup.response_id)
                .where(*agreed)
                .group_by(ResponseGroup.dimension_id, as_text))).all():
            chosen = [str(g) for g in (json.loads(groups) if groups else None) or []]
            combos.setdefault(dim, []).append((chosen, int(n), int(key or 0)))
    return _protect(spec, int(total), int(total_key), combos, lang, int(finished), int(finished_key),
                    keyed=bool(total))


def protect_participation(spec: CampaignSpec, total: int, chosen: dict[str, dict[int, list[str]]],
                          lang: str, finished: int | None = None, *, keys: Mapping[int, int] | None = None,
                          finished_key: int | None = None) -> Participation:
    """Counts per group and "not said" (and `finished`, of the `total`), hidden below
    min_group_size and where they could be derived.

    These are counts of people, so a zero is shown, as the report shows zeros of people: it
    identifies nobody (docs/analysis.md, disclosure control, rule 1). `keys` (response id ->
    record key, for everyone who agreed) and `finished_key` (the sum of the finished ones' keys)
    give each count its cell key: shown counts are perturbed, as in the report.
    """
    keys = keys or {}
    combos: dict[str, list[tuple[list[str], int, int]]] = {}
    for dim, answers in chosen.items():
        combos[dim] = [(gs, 1, keys.get(rid, 0)) for rid, gs in answers.items()]
    return _protect(spec, total, sum(keys.values()), combos, lang, finished, finished_key,
                    keyed=bool(keys))


def _protect(spec: CampaignSpec, total: int, everyone_key: int,
             combos: Mapping[str, list[tuple[list[str], int, int]]], lang: str,
             finished: int | None, finished_key: int | None, *, keyed: bool) -> Participation:
    """`protect_participation` on counts already added up: per dimension, each combination of
    groups people chose, how many chose it and the sum of their record keys."""
    from analysis.disclosure import Problem, protect

    p = Problem()
    # hide the total only if nothing else will do
    total_var = p.count("total", total, tier=1, zero_shown=True, key=everyone_key if keyed else None)
    finished_var = None
    if finished is not None:
        finished_var = p.count("finished", finished, tier=1, zero_shown=True,
                               key=finished_key)
        # those who did not finish are not shown, only implied (as in the report's reach)
        unfinished = p.count("unfinished", total - finished, derived=True)
        p.equal({finished_var: 1, unfinished: 1, total_var: -1})
    layout: list[tuple[str, list[tuple[str, int, float | None]]]] = []
    baseline = spec.baseline
    for dim in spec.groups:
        counts: Counter[str] = Counter()
        group_keys: Counter[str] = Counter()
        named = named_key = 0
        for gs, n, key in combos.get(dim.id, []):
            for g in {g for g in gs if g != PREFER_NOT}:
                counts[g] += n
                group_keys[g] += key
            if gs and gs != [PREFER_NOT]:
                named += n
                named_key += key
        not_said = total - named

        def key_of(n: int, key: int) -> int | None:
            return key if keyed else None  # no keys given: only zeros can be published

        cells: list[tuple[str, int, float | None]] = []
        vars_: list[int] = []
        for o in dim.options:
            vars_.append(p.count((dim.id, o.id), counts[o.id], zero_shown=True, key=key_of(counts[o.id], group_keys[o.id])))
            cells.append((spec.text(o.text, lang), vars_[-1], baseline.get(dim.id, {}).get(o.id)))
        ns = p.count((dim.id, None), not_said, zero_shown=True,
                     key=key_of(not_said, everyone_key - named_key))
        cells.append(("", ns, None))
        if dim.multiple:
            for v in [*vars_, ns]:
                p.at_most({v: 1, total_var: -1})
            p.at_least({**{v: 1 for v in vars_}, ns: 1, total_var: -1})
            # everyone minus a group is a set of people too: protected with the rest
            for v in vars_:
                p.complement((dim.id, v, "not in"), total_var, v)
        else:
            p.equal({**{v: 1 for v in vars_}, ns: 1, total_var: -1})
        layout.append((spec.text(dim.text, lang) or dim.id, cells))
    guard = protect(p, spec.min_group_size)

    def shown(var: int) -> str:
        return guard.text(var)

    dims = []
    published_total = guard.value(total_var)
    for label, cells in layout:
        out = []
        for name, var, base in cells:
            n = guard.value(var)
            share = min(n / published_total, 1.0) if published_total and n is not None else None
            out.append(Cell(name, shown(var), share, base))
        dims.append((label, out))
    return Participation(total, shown(total_var), dims,
                         shown(finished_var) if finished_var is not None else None)
