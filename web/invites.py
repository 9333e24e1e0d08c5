"""Invites: make one (the campaign's groups offered as choices), list them with protected reach,
QR codes and A4 posters, and sign-in links for a partner that show only their invite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.campaigns.schema import PREFER_NOT, CampaignSpec
from bot.campaigns.store import campaign_state
from bot.models import Campaign, Invite
from bot.services import audit
from bot.services.invites import (
    InviteError,
    create_invite,
    invite_link,
    parse_groups,
    poster_html,
    protect_column,
    qr_png,
    qr_svg,
    resolve_bot_username,
    responses_per_invite,
)
from bot.services.signin import make_link
from bot.settings import ConfigurationError
from web.access import Officer, Refused, action, allowed, page
from web.app import Console, console_of, render, translator
from web.campaigns import title_of

POSTER_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'self'")


async def bot_username(console: Console) -> str:
    """COASSESS_BOT_USERNAME, else asked of Telegram once (getMe) and remembered."""
    if console.bot_username:
        return console.bot_username
    bot = console.bot_factory() if console.bot_factory and not console.settings.bot_username else None
    try:
        name = await resolve_bot_username(console.settings.bot_username, bot)
    finally:
        if bot is not None:
            await bot.session.close()
    console.bot_username = name
    return name


def group_choices(spec: CampaignSpec, lang: str) -> list[dict[str, Any]]:
    return [{"id": d.id, "label": spec.text(d.text, lang) or d.id, "multiple": d.multiple,
             "options": [(o.id, spec.text(o.text, lang) or o.id) for o in d.options if o.id != PREFER_NOT]}
            for d in spec.groups]


async def _invites_context(request: Request, cid: str) -> dict[str, Any] | None:
    _ = translator(request)
    async with console_of(request).db.session() as session:
        c = await session.get(Campaign, cid)
        if c is None:
            return None
        spec = CampaignSpec.model_validate(c.definition)
        reach = await responses_per_invite(session, cid)
        ids = {i.code: i.id for i in (await session.scalars(select(Invite).where(Invite.campaign_id == cid))).all()}
    k = c.min_group_size
    cols = {col: protect_column([getattr(r, col) for r in reach], k, [r.keys[i] for r in reach])
            for i, col in enumerate(("started", "consented", "completed"))}
    rows = [{"id": ids.get(r.code), "code": r.code, "partner": r.partner,
             "groups": "; ".join(f"{d} = {', '.join(g)}" for d, g in r.groups.items()),
             **{col: cols[col][1][i] for col in cols}} for i, r in enumerate(reach)]
    totals = {col: cols[col][0] for col in cols}
    hidden = any(not x.isdigit() for col in cols.values() for x in (col[0], *col[1]))
    return {"cid": cid, "title": title_of(c, _.lang), "state": campaign_state(c), "rows": rows,
            "totals": totals, "hidden": hidden, "k": k, "groups": group_choices(spec, _.lang)}


async def invite_list(request: Request, officer: Officer) -> Response:
    ctx = await _invites_context(request, request.path_params["cid"])
    if ctx is None:
        return render(request, "refused.html", status_code=404, officer=officer,
                      sentence=translator(request)("There is no such campaign."))
    return render(request, "invites.html", officer=officer, **ctx)


async def invite_create(request: Request, officer: Officer, form: FormData) -> Response:
    _ = translator(request)
    console = console_of(request)
    cid = request.path_params["cid"]
    code = str(form.get("code") or "").strip()
    partner = str(form.get("partner") or "").strip()
    words = [str(v) for v in form.getlist("group") if str(v).strip()]
    async with console.db.session() as session:
        c = await session.get(Campaign, cid)
        if c is None:
            return RedirectResponse("/", status_code=303)
        spec = CampaignSpec.model_validate(c.definition)
        try:
            groups = parse_groups(words, spec)
            invite = await create_invite(session, spec, code, partner, groups)
            await bot_username(console)  # the link must be makeable before the invite is kept
        except (InviteError, ConfigurationError) as exc:
            await session.rollback()
            ctx = await _invites_context(request, cid)
            assert ctx is not None
            return render(request, "invites.html", officer=officer, problem=str(exc), code=code,
                          partner=partner, status_code=400, **ctx)
        await audit.record(session, officer.actor, "invite", cid, code=invite.code, partner=invite.partner,
                           groups=groups, via="web")
        await session.commit()
        iid = invite.id
    return RedirectResponse(f"/invites/{iid}", status_code=303)


async def _invite(request: Request, officer: Officer) -> tuple[Invite, Campaign, CampaignSpec, str]:
    try:
        iid = int(request.path_params["iid"])
    except ValueError:
        raise Refused("invite") from None
    if not allowed(officer, "invite", iid):
        raise Refused("invite")
    console = console_of(request)
    async with console.db.session() as session:
        invite = await session.get(Invite, iid)
        if invite is None:
            raise Refused("invite")
        c = await session.get(Campaign, invite.campaign_id)
        assert c is not None
    link = invite_link(await bot_username(console), c.id, invite.code)
    return invite, c, CampaignSpec.model_validate(c.definition), link


async def invite_page(request: Request, officer: Officer, partner_url: str | None = None) -> Response:
    _ = translator(request)
    invite, c, spec, link = await _invite(request, officer)
    async with console_of(request).db.session() as session:
        reach = await responses_per_invite(session, c.id)
    # The invite's reach is protected within the campaign's column, as in the invite list.
    cols = {col: protect_column([getattr(r, col) for r in reach], c.min_group_size, [r.keys[i] for r in reach])
            for i, col in enumerate(("started", "consented", "completed"))}
    index = next((i for i, r in enumerate(reach) if r.code == invite.code), None)
    figures = {col: (cols[col][1][index] if index is not None else "0") for col in cols}
    return render(request, "invite.html", officer=officer, invite=invite, cid=c.id,
                  title=title_of(c, _.lang), link=link, figures=figures, k=c.min_group_size,
                  hidden=any(not v.isdigit() for v in figures.values()),
                  partner_link=partner_url)


async def invite_png(request: Request, officer: Officer) -> Response:
    invite, c, _spec, link = await _invite(request, officer)
    return Response(qr_png(link), media_type="image/png",
                    headers={"content-disposition": f'attachment; filename="{c.id}-{invite.code}.png"'})


async def invite_svg(request: Request, officer: Officer) -> Response:
    invite, c, _spec, link = await _invite(request, officer)
    return Response(qr_svg(link), media_type="image/svg+xml",
                    headers={"content-disposition": f'attachment; filename="{c.id}-{invite.code}.svg"'})


async def invite_poster(request: Request, officer: Officer) -> Response:
    invite, c, spec, link = await _invite(request, officer)
    return Response(poster_html(spec, invite.partner, link), media_type="text/html; charset=utf-8",
                    headers={"content-security-policy": POSTER_CSP})


async def partner_link(request: Request, officer: Officer, form: FormData) -> Response:
    """A one-time sign-in link for the partner of this invite (shown once, to the admin)."""
    invite, c, _spec, _link = await _invite(request, officer)
    console = console_of(request)
    async with console.db.session() as session:
        url = await make_link(session, console.public_url, role="partner", actor=f"partner:{c.id}:{invite.code}",
                              invite_id=invite.id)
        await audit.record(session, officer.actor, "partner_link", c.id, code=invite.code, via="web")
        await session.commit()
    # Shown once, in this answer only: it is a key to the invite's page.
    return await invite_page(request, officer, url)


routes = [
    Route("/campaigns/{cid}/invites", page("read")(invite_list)),
    Route("/campaigns/{cid}/invites", action("change")(invite_create), methods=["POST"]),
    Route("/invites/{iid}", page("invite")(invite_page)),
    Route("/invites/{iid}/qr.png", page("invite")(invite_png)),
    Route("/invites/{iid}/qr.svg", page("invite")(invite_svg)),
    Route("/invites/{iid}/poster", page("invite")(invite_poster)),
    Route("/invites/{iid}/partner-link", action("change")(partner_link), methods=["POST"]),
]
