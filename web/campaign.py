"""One campaign: participation per group against the baseline, who is missing, per language and invite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from analysis.summary import UNDER_REPRESENTED
from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import campaign_state
from bot.models import Campaign, Invite
from bot.services.invites import NO_INVITE, protect_column
from bot.services.participation import Counts, Participation, participation, tallied
from web.access import Officer, page
from web.app import console_of, render, translator
from web.campaigns import days_left, title_of

REFRESH_SECONDS = 5


@dataclass(frozen=True)
class Missing:
    dimension: str
    group: str
    certain: bool  # False: hidden figures leave it open


def who_is_missing(part: Participation, k: int) -> list[Missing]:
    """Groups whose share among the people taking part is below UNDER_REPRESENTED of their share
    in the population (the report's rule); a hidden count is judged at the most it could be."""
    out = []
    total = int(part.total_shown) if part.total_shown.isdigit() else None
    for label, cells in part.dimensions:
        for c in cells:
            if not c.label or not c.baseline:
                continue
            if c.share is not None:
                if c.share / c.baseline < UNDER_REPRESENTED:
                    out.append(Missing(label, c.label, True))
            elif c.shown.startswith("<") and total:
                # at most k - 1 people: under-represented even then?
                if (k - 1) / total / c.baseline < UNDER_REPRESENTED:
                    out.append(Missing(label, c.label, True))
            elif total is None or c.shown == "c":
                out.append(Missing(label, c.label, False))
    return out


def by_language(c: Campaign, counts: Counts) -> tuple[str, list[tuple[str, str]]]:
    """People who agreed to take part per language they answered in, protected as one column."""
    langs = [*c.languages, *sorted(set(counts.languages) - set(c.languages))]
    # each row's record keys give its cell key: shown counts are perturbed as in the report
    total, shown = protect_column([counts.languages.get(lang, (0, 0))[0] for lang in langs], c.min_group_size,
                                  [counts.languages.get(lang, (0, 0))[1] for lang in langs])
    return total, list(zip(langs, shown, strict=True))


async def by_invite(session: AsyncSession, c: Campaign, counts: Counts) -> tuple[str, list[dict[str, Any]]]:
    """People who agreed to take part per invite (and without one), protected as one column."""
    invites = (await session.scalars(select(Invite).where(Invite.campaign_id == c.id)
                                     .order_by(Invite.created_at, Invite.id))).all()
    rows = [(i.code, i.partner, counts.invites.get(i.id, (0, 0))) for i in invites]
    if None in counts.reached:  # someone came without an invite (as responses_per_invite shows)
        rows.append(("", NO_INVITE, counts.invites.get(None, (0, 0))))
    total, shown = protect_column([n for _, _, (n, _) in rows], c.min_group_size, [k for _, _, (_, k) in rows])
    return total, [{"code": code, "partner": partner, "agreed": s}
                   for (code, partner, _), s in zip(rows, shown, strict=True)]


def chart_rows(part: Participation) -> list[dict[str, Any]]:
    """Bars for the inline SVG chart: the share taking part beside the population's share."""
    rows: list[dict[str, Any]] = []
    for label, cells in part.dimensions:
        rows.append({"heading": label})
        for c in cells:
            if not c.label:
                continue
            rows.append({"label": c.label, "share": c.share, "baseline": c.baseline, "shown": c.shown})
    return rows


async def _context(request: Request) -> dict[str, Any] | None:
    _ = translator(request)
    async with console_of(request).db.session() as session:
        c = await session.get(Campaign, request.path_params["cid"])
        if c is None:
            return None
        spec = CampaignSpec.model_validate(c.definition)
        counts = await tallied(session, c.id)  # a few dozen rows: the figures of every table below
        part = await participation(session, spec, _.lang, counts=counts)
        lang_total, langs = by_language(c, counts)
        invite_total, invites = await by_invite(session, c, counts)
    k = c.min_group_size
    rows = chart_rows(part)
    hidden = any(not x.isdigit() for x in [part.total_shown, part.finished_shown or "0", lang_total,
                                           invite_total, *(s for _, s in langs),
                                           *(i["agreed"] for i in invites),
                                           *(cell.shown for _, cells in part.dimensions for cell in cells)])
    return {"c": c, "cid": c.id, "title": title_of(c, _.lang), "state": campaign_state(c),
            "days_left": days_left(c), "part": part, "k": k, "missing": who_is_missing(part, k),
            "languages": langs, "invites": invites, "chart": rows, "hidden": hidden,
            "has_baseline": bool(spec.baseline), "refresh": REFRESH_SECONDS,
            "live": campaign_state(c) == "open"}


async def campaign_page(request: Request, officer: Officer) -> Response:
    ctx = await _context(request)
    if ctx is None:
        return render(request, "refused.html", status_code=404, officer=officer,
                      sentence=translator(request)("There is no such campaign."))
    return render(request, "campaign.html", officer=officer, loaded=request.query_params.get("loaded"),
                  **ctx)


async def participation_fragment(request: Request, officer: Officer) -> Response:
    ctx = await _context(request)
    if ctx is None:
        return Response(status_code=404)
    return render(request, "_participation.html", officer=officer, **ctx)


routes = [
    Route("/campaigns/{cid}", page("read")(campaign_page)),
    Route("/campaigns/{cid}/participation", page("read")(participation_fragment)),
]
