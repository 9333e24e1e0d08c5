"""The console's ASGI app: settings, database, templates, sessions, security headers, routes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.db import Database
from bot.services.participants import Keys
from bot.settings import Settings
from web.access import BadForm, Officer, Refused, RateLimit, csrf_token, current, who_can
from web.i18n import pick_language, translations

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
# Telegram's own web clients frame a Mini App; nobody else may (only on /miniapp).
TELEGRAM_FRAME_ANCESTORS = "https://web.telegram.org https://*.web.telegram.org"


@dataclass
class Console:
    """What every page needs: settings, the database, the keys, and the sends under way."""

    settings: Settings
    db: Database
    keys: Keys
    officers: dict[str, str]  # audit pseudonym -> admin | analyst, from the settings
    bot_factory: Any = None  # () -> aiogram Bot, for sends and the bot's username
    send_states: dict[str, Any] = field(default_factory=dict)  # campaign id -> web.sends.SendState
    bot_username: str | None = None  # asked of Telegram once, when not configured
    sign_in_limit: RateLimit = field(default_factory=RateLimit)

    @property
    def public_url(self) -> str:
        return self.settings.web_public_url.rstrip("/")


def officers_of(settings: Settings, keys: Keys) -> dict[str, str]:
    roles = {keys.admin(i): "analyst" for i in settings.analyst_ids}
    roles.update({keys.admin(i): "admin" for i in settings.admin_ids})
    return roles


templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True),
                        trim_blocks=True, lstrip_blocks=True)


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def translator(request: Request) -> Any:
    lang = pick_language(request.headers.get("accept-language"))
    t = translations(lang)

    def _(message: str, **values: Any) -> str:
        text = t.gettext(message)
        return text % values if values else text

    def ngettext(one: str, many: str, count: int, **values: Any) -> str:
        text = t.ngettext(one, many, count)
        return text % values if values else text

    _.ngettext = ngettext  # type: ignore[attr-defined]
    _.lang = lang  # type: ignore[attr-defined]
    return _


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page (or an htmx fragment) from its template, with what every template uses."""
    _ = translator(request)
    officer: Officer | None = context.pop("officer", None) or current(request)
    html = templates.get_template(name).render(
        _=_, ngettext=_.ngettext, lang=_.lang, officer=officer, csrf=csrf_token(request),
        path=request.url.path, **context)
    return HTMLResponse(html, status_code=status_code)


class SecurityHeaders:
    """CSP without inline script, no referrer, no sniffing; a route may set its own CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [(b"content-security-policy", CSP.encode()),
                         (b"referrer-policy", b"no-referrer"),
                         (b"x-content-type-options", b"nosniff"),
                         (b"cross-origin-opener-policy", b"same-origin")]
                headers += [(k, v) for k, v in extra if k not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    _ = translator(request)
    return render(request, "refused.html", status_code=403, sentence=_(who_can(exc.permission)))


async def _bad_form(request: Request, exc: Exception) -> Response:
    _ = translator(request)
    if str(exc) == "too large":
        return render(request, "refused.html", status_code=413, title=_("Too large"),
                      sentence=_("The file is larger than 2 MB: a campaign, spreadsheet or outcome file is "
                                 "much smaller. Check you chose the right file."))
    return render(request, "refused.html", status_code=403,
                  sentence=_("This form is out of date or did not come from the console. Go back, "
                             "reload the page and try again."))


async def _not_found(request: Request, exc: Exception) -> Response:
    _ = translator(request)
    return render(request, "refused.html", status_code=404, title=_("Not found"),
                  sentence=_("There is nothing here. Check the address, or start again from the "
                             "list of campaigns."))


async def _error(request: Request, exc: Exception) -> Response:
    # The class name only: a message could quote a participant's answer or an id.
    log.error("console page failed: %s", exc.__class__.__name__)
    _ = translator(request)
    return render(request, "refused.html", status_code=500, title=_("Something went wrong"),
                  sentence=_("The console could not finish this. Nothing was lost; try again in a "
                             "moment. If it keeps happening, tell whoever runs the console."))


def create_app(settings: Settings, *, db: Database | None = None, keys: Keys | None = None,
               bot_factory: Any = None) -> Starlette:
    """The console for these settings; tests pass their own database, keys and Bot factory."""
    from web import audit, campaign, campaigns, invites, results, sends, signin, translations

    if keys is None:
        p, c = settings.secret_keys()
        keys = Keys(p, c)
    db = db or Database(settings.database_url)
    if bot_factory is None and settings.bot_token is not None:
        from bot.runtime.app import make_bot

        token = settings.require_token()

        def bot_factory() -> Any:
            return make_bot(token, settings.telegram_api_url, settings.telegram_timeout)

    state = Console(settings, db, keys, officers_of(settings, keys), bot_factory)
    https = urlsplit(settings.web_public_url).scheme == "https"
    routes = [*signin.routes, *campaigns.routes, *campaign.routes, *invites.routes, *sends.routes,
              *results.routes, *translations.routes, *audit.routes,
              Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for send in list(state.send_states.values()):
                if send.task is not None:
                    send.task.cancel()
            await db.dispose()

    app = Starlette(
        routes=routes, lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders),
                    Middleware(SessionMiddleware, secret_key=settings.web_session_secret().decode(),
                               session_cookie="coassess_session", max_age=8 * 3600, same_site="lax",
                               https_only=https)],
        exception_handlers={Refused: _refused, BadForm: _bad_form, 404: _not_found, 500: _error},
    )
    app.state.console = state
    return app
