"""Live participation per group against the baseline, with small counts hidden (disclosure control)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Text, case, cast, delete, func, literal, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.schema import PREFER_NOT, CampaignSpec
from bot.models import ParticipationTally, Response, ResponseGroup


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


TALLY_SHARDS = 16  # each response counts in shard `id % TALLY_SHARDS` (migration 0008)


@dataclass(frozen=True)
class Counts:
    """The people who agreed to take part in a campaign, added up: each figure is (people, sum of
    their record keys), the keys giving each published count its cell key (analysis.disclosure).

    `groups`: per dimension, per group answer as stored (JSON text), e.g. '["a", "b"]'.
    `invites`: per invite id, None for people who came without one; `reached` and `completed`:
    the same for everyone who started, and who finished, whether they agreed or not."""

    agreed: tuple[int, int] = (0, 0)
    finished: tuple[int, int] = (0, 0)
    languages: dict[str, tuple[int, int]] = field(default_factory=dict)
    invites: dict[int | None, tuple[int, int]] = field(default_factory=dict)
    groups: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    reached: dict[int | None, tuple[int, int]] = field(default_factory=dict)
    completed: dict[int | None, tuple[int, int]] = field(default_factory=dict)


def _counts(rows: Any) -> Counts:
    """Counts from (kind, dimension, value, people, key sum) rows, empty cells left out."""
    out = Counts()
    for kind, dim, value, n, key in rows:
        cell = (int(n), int(key or 0))
        if cell[0] == 0 and cell[1] == 0:
            continue  # everyone in it left (erased, withdrew): as if never there
        if kind == "agreed":
            out = replace(out, agreed=cell)
        elif kind == "finished":
            out = replace(out, finished=cell)
        elif kind == "language":
            out.languages[value] = cell
        elif kind in ("invite", "reached", "completed"):
            per_invite = {"invite": out.invites, "reached": out.reached, "completed": out.completed}[kind]
            per_invite[int(value) if value else None] = cell
        elif kind == "groups":
            out.groups.setdefault(dim, {})[value] = cell
    return out


async def tallied(session: AsyncSession, campaign_id: str) -> Counts:
    """The campaign's running tallies: a few dozen rows, however many people answered. Database
    triggers keep them in the transaction of every change (migration 0008)."""
    t = ParticipationTally
    rows = await session.execute(
        select(t.kind, t.dimension_id, t.value, func.sum(t.n), func.sum(t.key_sum))
        .where(t.campaign_id == campaign_id).group_by(t.kind, t.dimension_id, t.value))
    return _counts(rows.all())


async def _recount_rows(session: AsyncSession, campaign_id: str) -> list[tuple[str, str, str, int, int, int]]:
    """(kind, dimension, value, shard, people, key sum), counted from every response and group
    answer, in the shards the triggers use, so that tallies written from them stay exact."""
    r = Response
    key, shard = func.coalesce(r.record_key, 0), r.id % TALLY_SHARDS
    agreed = r.consented_at.is_not(None)
    link = case((r.invite_id.is_(None), ""), else_=cast(r.invite_id, Text))
    out: list[tuple[str, str, str, int, int, int]] = []
    for kind, value, when in (("agreed", literal(""), agreed),
                              ("finished", literal(""), agreed & r.completed_at.is_not(None)),
                              ("language", r.language, agreed), ("invite", link, agreed),
                              ("reached", link, true()), ("completed", link, r.completed_at.is_not(None))):
        out += [(kind, "", v, sh, n, k) for v, sh, n, k in (await session.execute(
            select(value, shard, func.count(), func.sum(key)).where(r.campaign_id == campaign_id, when)
            .group_by(value, shard))).all()]
    as_text = cast(ResponseGroup.groups, Text)
    out += [("groups", dim, groups, sh, n, k) for dim, groups, sh, n, k in (await session.execute(
        select(ResponseGroup.dimension_id, as_text, shard, func.count(), func.sum(key))
        .join(r, r.id == ResponseGroup.response_id).where(r.campaign_id == campaign_id, agreed)
        .group_by(ResponseGroup.dimension_id, as_text, shard))).all()]
    return [(kind, dim, str(v), int(sh), int(n), int(k or 0)) for kind, dim, v, sh, n, k in out]


async def recount(session: AsyncSession, campaign_id: str) -> Counts:
    """The same figures as `tallied`, counted again from every response and group answer: what
    the tallies must equal (`check_tallies`), and what `repair_tallies` writes back."""
    summed: dict[tuple[str, str, str], list[int]] = {}
    for kind, dim, value, _shard, n, key in await _recount_rows(session, campaign_id):
        cell = summed.setdefault((kind, dim, value), [0, 0])
        cell[0] += n
        cell[1] += key
    return _counts([(kind, dim, value, n, key) for (kind, dim, value), (n, key) in summed.items()])


def _cells(counts: Counts) -> dict[tuple[str, str, str], tuple[int, int]]:
    out = {("agreed", "", ""): counts.agreed, ("finished", "", ""): counts.finished}
    out.update({("language", "", lang): c for lang, c in counts.languages.items()})
    out.update({("invite", "", "" if i is None else str(i)): c for i, c in counts.invites.items()})
    out.update({("reached", "", "" if i is None else str(i)): c for i, c in counts.reached.items()})
    out.update({("completed", "", "" if i is None else str(i)): c for i, c in counts.completed.items()})
    out.update({("groups", dim, g): c for dim, combos in counts.groups.items() for g, c in combos.items()})
    return {k: v for k, v in out.items() if v != (0, 0)}


async def check_tallies(session: AsyncSession, campaign_id: str) -> list[str]:
    """Where the running tallies differ from a full recount, one line per figure (no one's data:
    only counts); empty when they agree. Figures that add up but sit in other shards than the
    triggers use are said too: a later erasure would miss them."""
    t = ParticipationTally
    kept_rows = (await session.execute(
        select(t.kind, t.dimension_id, t.value, t.shard, t.n, t.key_sum).where(t.campaign_id == campaign_id))).all()
    counted_rows = await _recount_rows(session, campaign_id)
    kept, counted = _cells(await tallied(session, campaign_id)), _cells(await recount(session, campaign_id))
    out = []
    for cell in sorted(set(kept) | set(counted)):
        (a, ka), (b, kb) = kept.get(cell, (0, 0)), counted.get(cell, (0, 0))
        if (a, ka) != (b, kb):
            out.append(" ".join(cell).strip() + f": kept {a} people, counted {b}"
                       + ("" if a != b else " (record keys differ)"))
    by_shard = {(*row[:4],): (int(row[4]), int(row[5])) for row in kept_rows if (row[4], row[5]) != (0, 0)}
    if not out and by_shard != {(*row[:4],): (row[4], row[5]) for row in counted_rows}:
        out.append("the figures add up, but some are kept in other shards than the triggers use")
    return out


async def repair_tallies(session: AsyncSession, campaign_id: str) -> None:
    """Replace the campaign's tallies with a full recount (in the caller's transaction), each
    response in its shard, as the triggers keep them. The responses are locked first on
    PostgreSQL, so no answer lands between the count and the write. Call it at the start of a
    transaction (on SQLite a transaction that has read already may be refused the write)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("LOCK TABLE response, response_group IN SHARE MODE"))
    # deleting first makes this transaction the writer on SQLite before it counts: no bot's
    # write can land between the count and the tallies written from it
    await session.execute(delete(ParticipationTally).where(ParticipationTally.campaign_id == campaign_id))
    rows = await _recount_rows(session, campaign_id)
    session.add_all(ParticipationTally(campaign_id=campaign_id, kind=kind, dimension_id=dim, value=value,
                                       shard=shard, n=n, key_sum=key)
                    for kind, dim, value, shard, n, key in rows)
    await session.flush()


async def participation(session: AsyncSession, spec: CampaignSpec, lang: str, *,
                        counts: Counts | None = None) -> Participation:
    """People who agreed to take part (and how many of them finished), per group, with small
    counts hidden (disclosure control); the campaign list and the campaign's page show these.

    Read from the campaign's running tallies (`tallied`): the console's live page reads a few
    dozen rows, not one row per person, however large the campaign. `counts`: figures already
    read (the campaign page reads them once for every table it shows)."""
    if counts is None:
        counts = await tallied(session, spec.id)
    total, total_key = counts.agreed
    finished, finished_key = counts.finished
    combos: dict[str, list[tuple[list[str], int, int]]] = {}
    if total:
        for dim, answers in counts.groups.items():
            for groups, (n, key) in answers.items():
                chosen = [str(g) for g in (json.loads(groups) if groups else None) or []]
                combos.setdefault(dim, []).append((chosen, n, key))
    return _protect(spec, total, total_key, combos, lang, finished, finished_key, keyed=bool(total))


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
