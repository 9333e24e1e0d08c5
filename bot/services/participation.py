"""Live participation per group against the baseline, with small counts hidden (disclosure control)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
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
    counts hidden (disclosure control); the campaign list and the campaign's page show these."""
    rows = (await session.execute(
        select(Response.id, Response.completed_at, Response.record_key)
        .where(Response.campaign_id == spec.id, Response.consented_at.is_not(None))
    )).all()
    ids = {r for r, _, _ in rows}
    keys = {r: int(key or 0) for r, _, key in rows}
    finished = sum(1 for _, done, _ in rows if done is not None)
    finished_key = sum(int(key or 0) for _, done, key in rows if done is not None)
    chosen: dict[str, dict[int, list[str]]] = {}
    if ids:
        for rid, dim, groups in (await session.execute(
                select(ResponseGroup.response_id, ResponseGroup.dimension_id, ResponseGroup.groups)
                .join(Response, Response.id == ResponseGroup.response_id)
                .where(Response.campaign_id == spec.id, Response.consented_at.is_not(None)))).all():
            chosen.setdefault(dim, {})[rid] = [str(g) for g in groups or []]
    return protect_participation(spec, len(ids), chosen, lang, finished, keys=keys, finished_key=finished_key)


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
    from analysis.disclosure import Problem, protect

    keys = keys or {}
    everyone_key = sum(keys.values())
    p = Problem()
    # hide the total only if nothing else will do
    total_var = p.count("total", total, tier=1, zero_shown=True, key=everyone_key if keys else None)
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
        answers = chosen.get(dim.id, {})
        counts: Counter[str] = Counter()
        group_keys: Counter[str] = Counter()
        named = [rid for rid, gs in answers.items() if gs and gs != [PREFER_NOT]]
        not_said = total - len(named)
        for rid, gs in answers.items():
            chosen_groups = {g for g in gs if g != PREFER_NOT}
            counts.update(chosen_groups)
            for g in chosen_groups:
                group_keys[g] += keys.get(rid, 0)

        def key_of(n: int, key: int) -> int | None:
            return key if keys else None  # no keys given: only zeros can be published

        cells: list[tuple[str, int, float | None]] = []
        vars_: list[int] = []
        for o in dim.options:
            vars_.append(p.count((dim.id, o.id), counts[o.id], zero_shown=True, key=key_of(counts[o.id], group_keys[o.id])))
            cells.append((spec.text(o.text, lang), vars_[-1], baseline.get(dim.id, {}).get(o.id)))
        ns = p.count((dim.id, None), not_said, zero_shown=True,
                     key=key_of(not_said, everyone_key - sum(keys.get(rid, 0) for rid in named)))
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
