"""A console on a fresh database, reached over HTTP in-process, and officers signed in to it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from urllib.parse import urlsplit
from pydantic import SecretStr

from bot.db import Database
from bot.services.participants import Keys
from bot.services.signin import make_link, officer_link
from bot.settings import Settings

ADMIN, ANALYST, STRANGER = 700_001, 700_002, 700_003
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_settings(db_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {"database_url": db_url, "admin_ids": frozenset({ADMIN}),
                              "analyst_ids": frozenset({ANALYST}), "web_public_url": "http://testserver",
                              "web_secret": SecretStr("test-web-secret-0123456789abcdef"),
                              "bot_username": "CouncilTestBot"}
    values.update(changes)
    return Settings(_env_file=None, **values)


def client(app: Any, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url,
                             follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in_with(c: httpx.AsyncClient, url: str) -> httpx.Response:
    path = urlsplit(url).path
    page = await c.get(path)
    return await c.post(path, data={"csrf": csrf_of(page.text)})


async def officer_signs_in(c: httpx.AsyncClient, db: Database, keys: Keys, settings: Settings,
                           telegram_id: int) -> None:
    async with db.session() as s:
        url = await officer_link(s, keys, settings.web_public_url, telegram_id, settings.admin_ids,
                                 settings.analyst_ids)
        await s.commit()
    r = await sign_in_with(c, url)
    assert r.status_code == 303, r.text


async def partner_link(db: Database, invite_id: int, code: str) -> str:
    async with db.session() as s:
        url = await make_link(s, "http://testserver", role="partner", actor=f"partner:{code}",
                              invite_id=invite_id)
        await s.commit()
    return url


async def post_form(c: httpx.AsyncClient, path: str, data: dict[str, Any] | None = None,
                    files: dict[str, Any] | None = None, page: str | None = None,
                    token: Callable[[str], str] = csrf_of) -> httpx.Response:
    """POST a form as the browser would: with the CSRF token of the page it is on."""
    html = (await c.get(page or "/")).text
    return await c.post(path, data={"csrf": token(html), **(data or {})}, files=files)
