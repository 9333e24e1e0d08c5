"""Signing in: one-time links (from /admin or `coassess web login-link`), the Mini App, signing out."""

from __future__ import annotations

import hmac
import time

from aiogram.utils.web_app import safe_parse_webapp_init_data
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.services import audit
from bot.services.signin import NotAnOfficer, officer_role, redeem
from web.access import client_of, csrf_token, current, sign_in
from web.app import TELEGRAM_FRAME_ANCESTORS, console_of, render, translator

INIT_DATA_MAX_AGE = 3600  # seconds: a Mini App's initData older than this is refused


def _home(role: str, invite_id: int | None) -> str:
    return f"/invites/{invite_id}" if role == "partner" and invite_id else "/"


async def signin_page(request: Request) -> Response:
    if current(request) is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "signin.html")


async def signin_link(request: Request) -> Response:
    # Opening the link only shows a button: a link preview (Telegram fetches links in chats)
    # must not use up the one-time token.
    csrf_token(request)
    return render(request, "signin_confirm.html", token=request.path_params["token"])


def _too_many(request: Request) -> Response | None:
    if console_of(request).sign_in_limit.hit(client_of(request)):
        return None
    _ = translator(request)
    return render(request, "signin.html", status_code=429,
                  problem=_("Too many attempts to sign in from here. Wait five minutes, then ask for a "
                            "new link."))


async def signin_redeem(request: Request) -> Response:
    if (busy := _too_many(request)) is not None:
        return busy
    _ = translator(request)
    form = await request.form(max_files=0, max_fields=5)
    expected = str(request.session.get("csrf") or "")
    if not expected or not hmac.compare_digest(str(form.get("csrf") or ""), expected):
        return render(request, "signin.html", status_code=403,
                      problem=_("This sign-in page is out of date. Open the link again."))
    console = console_of(request)
    async with console.db.session() as session:
        who = await redeem(session, request.path_params["token"])
        if who is None:
            return render(request, "signin.html", status_code=403,
                          problem=_("This sign-in link has been used already or is more than ten minutes "
                                    "old. Ask for a new one: send /admin to the bot and tap “Open the "
                                    "console”."))
        if who.role != "partner" and who.actor not in console.officers:
            return render(request, "signin.html", status_code=403,
                          problem=_("You are no longer on the list of officers. Ask an administrator."))
        await audit.record(session, who.actor, "web_sign_in", None, role=who.role, via="link")
        await session.commit()
    sign_in(request, console.officers.get(who.actor, who.role), who.actor, who.invite_id)
    return RedirectResponse(_home(who.role, who.invite_id), status_code=303)


async def signout(request: Request) -> Response:
    # Signing out changes nothing but the visitor's own cookie, yet it is a form with a token.
    form = await request.form(max_files=0, max_fields=5)
    if hmac.compare_digest(str(form.get("csrf") or ""), str(request.session.get("csrf") or "")):
        request.session.clear()
    return RedirectResponse("/signin", status_code=303)


async def miniapp_page(request: Request) -> Response:
    response = render(request, "miniapp.html")
    response.headers["content-security-policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {TELEGRAM_FRAME_ANCESTORS}")
    return response


async def miniapp_signin(request: Request) -> Response:
    """Sign in with the initData Telegram gives a Mini App (checked with the bot's token)."""
    _ = translator(request)
    if not console_of(request).sign_in_limit.hit(client_of(request)):
        return JSONResponse({"error": _("Too many attempts to sign in from here. Wait five minutes.")},
                            status_code=429)
    console = console_of(request)
    form = await request.form(max_files=0, max_fields=5)
    init_data = str(form.get("init_data") or "")
    refused = JSONResponse({"error": _("Telegram's sign-in could not be checked. Open the console "
                                       "again from /admin.")}, status_code=403)
    if not init_data or console.settings.bot_token is None or len(init_data) > 8192:
        return refused
    try:
        data = safe_parse_webapp_init_data(console.settings.require_token(), init_data)
    except ValueError:
        return refused
    if data.user is None or time.time() - data.auth_date.timestamp() > INIT_DATA_MAX_AGE:
        return refused
    try:
        role = officer_role(data.user.id, console.settings.admin_ids, console.settings.analyst_ids)
    except NotAnOfficer:
        return refused
    actor = console.keys.admin(data.user.id)
    async with console.db.session() as session:
        await audit.record(session, actor, "web_sign_in", None, role=role, via="mini app")
        await session.commit()
    sign_in(request, role, actor, None)
    return JSONResponse({"next": "/"})


routes = [
    Route("/signin", signin_page),
    Route("/signin/{token}", signin_link),
    Route("/signin/{token}", signin_redeem, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/miniapp", miniapp_page),
    Route("/miniapp/signin", miniapp_signin, methods=["POST"]),
]
