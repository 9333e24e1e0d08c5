"""Who is signed in, what each role may do (one table, one check) and the CSRF guard."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

IDLE_TIMEOUT = 8 * 3600  # seconds without a request before a session ends
UPLOAD_LIMIT = 2 * 1024 * 1024  # a campaign file, a spreadsheet or an outcome file


def N_(message: str) -> str:
    """Marks a message for extraction; translated where it is shown."""
    return message


# permission: (roles allowed, the sentence a refused officer reads)
PERMISSIONS: dict[str, tuple[frozenset[str], str]] = {
    "read": (frozenset({"admin", "analyst"}),
             N_("Administrators and analysts can see this page; a partner sees only their own invite.")),
    "change": (frozenset({"admin"}),
               N_("Only an administrator (COASSESS_ADMIN_IDS) can load, open, close or schedule a campaign, "
                  "or make invites and partner links.")),
    "send": (frozenset({"admin"}),
             N_("Only an administrator (COASSESS_ADMIN_IDS) can send messages to participants.")),
    "results": (frozenset({"admin", "analyst"}),
                N_("Administrators and analysts (COASSESS_ANALYST_IDS) can read results, reports and "
                   "exports.")),
    "audit": (frozenset({"admin", "analyst"}),
              N_("Administrators and analysts can read the audit log.")),
    "invite": (frozenset({"admin", "analyst", "partner"}),
               N_("A partner sees only the invite their link was made for; administrators and analysts "
                  "see every invite.")),
}


@dataclass(frozen=True)
class Officer:
    """The person signed in: their role, their audit pseudonym and (a partner) their invite."""

    role: str
    actor: str
    invite_id: int | None
    csrf: str


def allowed(officer: Officer, permission: str, invite_id: int | None = None) -> bool:
    """The one permission check of the console."""
    roles, _ = PERMISSIONS[permission]
    if officer.role not in roles:
        return False
    if officer.role == "partner":
        return permission == "invite" and invite_id is not None and invite_id == officer.invite_id
    return True


class Refused(Exception):
    """A page or action outside the officer's role (403, with who can do it)."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


class BadForm(Exception):
    """A changing form without its CSRF token (403)."""


def sign_in(request: Request, role: str, actor: str, invite_id: int | None) -> None:
    request.session.clear()
    request.session.update({"role": role, "actor": actor, "invite": invite_id,
                            "csrf": secrets.token_urlsafe(32), "seen": int(time.time())})


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made for a visitor not signed in yet, for the sign-in form)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def current(request: Request) -> Officer | None:
    """The officer of this request's session, or None (none, idle too long, or no longer listed)."""
    s = request.session
    role, actor = s.get("role"), s.get("actor")
    if not role or not actor:
        return None
    now = int(time.time())
    if now - int(s.get("seen", 0)) > IDLE_TIMEOUT:
        s.clear()
        return None
    if role != "partner":
        # Taken off COASSESS_ADMIN_IDS / COASSESS_ANALYST_IDS: signed out at the next request;
        # moved from one list to the other: the new role applies at once.
        role = request.app.state.console.officers.get(actor)
        if role is None:
            s.clear()
            return None
    if now - int(s.get("seen", 0)) > 60:
        s["seen"] = now
    return Officer(role, actor, s.get("invite"), csrf_token(request))


async def checked_form(request: Request) -> FormData:
    """The form of a POST, refused unless it carries the session's CSRF token."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > UPLOAD_LIMIT + 64 * 1024:
        raise BadForm("too large")
    form = await request.form(max_files=2, max_fields=200, max_part_size=UPLOAD_LIMIT)
    sent = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
    expected = str(request.session.get("csrf") or "")
    if not expected or not hmac.compare_digest(sent, expected):
        raise BadForm("csrf")
    return form


Handler = Callable[..., Awaitable[Response]]


def page(permission: str) -> Callable[[Handler], Handler]:
    """A GET page: signed in (else the sign-in page) and allowed (else 403)."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            officer = current(request)
            if officer is None:
                return RedirectResponse("/signin", status_code=303)
            if permission != "invite" and not allowed(officer, permission):
                raise Refused(permission)
            return await handler(request, officer)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


def action(permission: str) -> Callable[[Handler], Handler]:
    """A POST that changes something: signed in, allowed, and with the CSRF token."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            officer = current(request)
            if officer is None:
                return RedirectResponse("/signin", status_code=303)
            form = await checked_form(request)
            if permission != "invite" and not allowed(officer, permission):
                raise Refused(permission)
            return await handler(request, officer, form)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


class RateLimit:
    """At most `limit` sign-in attempts per client address in `window` seconds (in memory)."""

    def __init__(self, limit: int = 10, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._seen: dict[str, deque[float]] = {}

    def hit(self, client: str) -> bool:
        """Count an attempt; False when there were too many."""
        now = time.monotonic()
        q = self._seen.setdefault(client, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        if len(self._seen) > 10_000:  # forget idle addresses rather than grow without end
            for key in [k for k, v in self._seen.items() if not v][:5000]:
                del self._seen[key]
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def who_can(permission: str) -> str:
    return PERMISSIONS[permission][1]


