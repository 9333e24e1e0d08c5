"""The console over HTTP (in-process): sign-in, sessions, CSRF, roles, partners, and no small
count or Telegram id on any page of a campaign with small groups."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from bot.db import Database
from bot.models import AuditEvent, Campaign, Invite, WebSignIn, utcnow
from bot.services.invites import create_invite
from bot.services.participants import Keys
from bot.services.signin import officer_link
from tests.admin_world import FIRST_USER, Someone, load_open, seed
from tests.conftest import EXAMPLE
from tests.web_world import (
    ADMIN,
    ANALYST,
    STRANGER,
    client,
    console_settings,
    officer_signs_in,
    partner_link,
    post_form,
    sign_in_with,
)
from web.app import create_app

TOKEN = "123456:TEST-console-token"


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/console.db")
    await db.upgrade()
    yield db
    await db.dispose()


def _app(db: Database, keys: Keys, **changes: object):  # type: ignore[no-untyped-def]
    settings = console_settings(db.url, bot_token=SecretStr(TOKEN), **changes)
    return create_app(settings, db=db, keys=keys), settings


async def test_no_session_gets_the_sign_in_page(sqlite_db: Database, keys: Keys) -> None:
    app, _ = _app(sqlite_db, keys)
    async with client(app) as c:
        for path in ("/", "/campaigns/clinic-access", "/audit", "/campaigns/clinic-access/sends"):
            r = await c.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/signin", path
        page = await c.get("/signin")
        assert page.status_code == 200 and "/admin" in page.text and "Open the console" in page.text
        # a changing form without a session goes to the sign-in page, changing nothing
        r = await c.post("/campaigns/load", data={"text": EXAMPLE.read_text()})
        assert r.status_code == 303 and r.headers["location"] == "/signin"


async def test_a_link_signs_in_once_and_only_while_fresh(sqlite_db: Database, keys: Keys) -> None:
    app, settings = _app(sqlite_db, keys)
    async with sqlite_db.session() as s:
        url = await officer_link(s, keys, settings.web_public_url, ADMIN, settings.admin_ids,
                                 settings.analyst_ids)
        stale = await officer_link(s, keys, settings.web_public_url, ADMIN, settings.admin_ids,
                                   settings.analyst_ids)
        await s.commit()
    token = url.rsplit("/", 1)[1]
    assert len(base64.urlsafe_b64decode(token + "==")) >= 32
    async with sqlite_db.session() as s:
        stored = (await s.scalars(select(WebSignIn.token_hash))).all()
        # only hashes are kept, never the token
        assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored
        await s.execute(update(WebSignIn).where(WebSignIn.token_hash == hashlib.sha256(
            stale.rsplit("/", 1)[1].encode()).hexdigest()).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    async with client(app) as c:
        # opening the link (a link preview does) does not use it up
        assert (await c.get(url.removeprefix("http://testserver"))).status_code == 200
        r = await sign_in_with(c, url)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
        assert (await c.get("/")).status_code == 200
    async with client(app) as other:
        again = await sign_in_with(other, url)
        assert again.status_code == 403 and "used already" in again.text
        assert (await other.get("/")).status_code == 303
        old = await sign_in_with(other, stale)
        assert old.status_code == 403 and "ten minutes" in old.text
        forged = await sign_in_with(other, "http://testserver/signin/" + "A" * 43)
        assert forged.status_code == 403


async def test_sign_in_attempts_are_rate_limited(sqlite_db: Database, keys: Keys) -> None:
    app, _ = _app(sqlite_db, keys)
    async with client(app) as c:
        codes = [(await sign_in_with(c, f"http://testserver/signin/guess{i:040d}")).status_code
                 for i in range(12)]
    assert codes[:10] == [403] * 10 and codes[10:] == [429, 429]


async def test_sessions_end_when_idle_signed_out_or_delisted(sqlite_db: Database, keys: Keys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    app, settings = _app(sqlite_db, keys)
    async with client(app) as c:
        await officer_signs_in(c, sqlite_db, keys, settings, ADMIN)
        assert (await c.get("/")).status_code == 200
        r = await post_form(c, "/signout")
        assert r.status_code == 303 and (await c.get("/")).status_code == 303
        await officer_signs_in(c, sqlite_db, keys, settings, ADMIN)
        later = time.time() + 8 * 3600 + 5
        monkeypatch.setattr("web.access.time.time", lambda: later)
        assert (await c.get("/")).status_code == 303  # eight idle hours: signed out
    monkeypatch.undo()
    async with client(app) as c:
        await officer_signs_in(c, sqlite_db, keys, settings, ADMIN)
        app.state.console.officers.pop(keys.admin(ADMIN))  # taken off COASSESS_ADMIN_IDS
        assert (await c.get("/")).status_code == 303
    # a Telegram id on neither list gets no link at all
    async with sqlite_db.session() as s:
        with pytest.raises(ValueError, match="not an officer"):
            await officer_link(s, keys, "http://x", STRANGER, settings.admin_ids, settings.analyst_ids)


async def test_https_console_sets_secure_cookies_and_headers(sqlite_db: Database, keys: Keys) -> None:
    app, settings = _app(sqlite_db, keys, web_public_url="https://console.example.org")
    async with client(app, "https://testserver") as c:
        async with sqlite_db.session() as s:
            url = await officer_link(s, keys, settings.web_public_url, ADMIN, settings.admin_ids,
                                     settings.analyst_ids)
            await s.commit()
        signed = await sign_in_with(c, url)
        assert "secure" in signed.headers["set-cookie"].lower()
        r = await c.get("/")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'self'" in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in r.text and " on" + "click=" not in r.text
        mini = await c.get("/miniapp")
        assert "frame-ancestors https://web.telegram.org" in mini.headers["content-security-policy"]
        assert "web.telegram.org" not in r.headers["content-security-policy"]
        js = await c.get("/static/htmx.min.js")
        assert js.status_code == 200 and "htmx" in js.text


def _init_data(token: str, user: dict, auth_date: int, tamper: bool = False) -> str:  # type: ignore[type-arg]
    fields = {"auth_date": str(auth_date), "query_id": "AAH", "user": json.dumps(user, separators=(",", ":"))}
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if tamper:
        fields["user"] = fields["user"].replace(str(user["id"]), str(ADMIN))
    return urlencode(fields)


async def test_mini_app_sign_in_checks_telegrams_signature(sqlite_db: Database, keys: Keys) -> None:
    app, _ = _app(sqlite_db, keys)
    admin = {"id": ADMIN, "first_name": "Fatima", "username": "fatima_officer"}
    async with client(app) as c:
        async def send(data: str) -> httpx.Response:
            return await c.post("/miniapp/signin", data={"init_data": data})

        now = int(time.time())
        assert (await send(_init_data("999:WRONG", admin, now))).status_code == 403  # forged
        assert (await send(_init_data(TOKEN, admin, now - 2 * 3600))).status_code == 403  # stale
        stranger = {"id": STRANGER, "first_name": "Eve"}
        assert (await send(_init_data(TOKEN, stranger, now, tamper=True))).status_code == 403
        assert (await send(_init_data(TOKEN, stranger, now))).status_code == 403  # not an officer
        assert (await c.get("/")).status_code == 303
        ok = await send(_init_data(TOKEN, admin, now))
        assert ok.status_code == 200 and ok.json() == {"next": "/"}
        page = await c.get("/audit")
        assert page.status_code == 200 and "web_sign_in" in page.text
        assert "Fatima" not in page.text and "fatima_officer" not in page.text and str(ADMIN) not in page.text
    async with sqlite_db.session() as s:
        actors = (await s.scalars(select(AuditEvent.actor))).all()
    assert actors == [keys.admin(ADMIN)]


async def test_a_form_without_its_csrf_token_is_refused(sqlite_db: Database, keys: Keys) -> None:
    app, settings = _app(sqlite_db, keys)
    async with client(app) as c:
        await officer_signs_in(c, sqlite_db, keys, settings, ADMIN)
        text = EXAMPLE.read_text()
        for data in ({"text": text}, {"text": text, "csrf": "not-the-token"}):
            r = await c.post("/campaigns/load", data=data)
            assert r.status_code == 403 and "did not come from the console" in r.text
        assert await _campaigns(sqlite_db) == []
        ok = await post_form(c, "/campaigns/load", {"text": text})
        assert ok.status_code == 303 and ok.headers["location"] == "/campaigns/clinic-access?loaded=1"
        assert await _campaigns(sqlite_db) == ["clinic-access"]


async def _campaigns(db: Database) -> list[str]:
    async with db.session() as s:
        return list((await s.scalars(select(Campaign.id))).all())


async def test_an_analyst_reads_but_cannot_send_or_change(sqlite_db: Database, keys: Keys,
                                                          example_spec) -> None:  # type: ignore[no-untyped-def]
    await load_open(sqlite_db, example_spec)
    app, settings = _app(sqlite_db, keys)
    async with client(app) as c:
        await officer_signs_in(c, sqlite_db, keys, settings, ANALYST)
        for path in ("/", "/campaigns/clinic-access", "/campaigns/clinic-access/results",
                     "/campaigns/clinic-access/invites", "/audit"):
            assert (await c.get(path)).status_code == 200, path
        page = (await c.get("/")).text
        assert "Upload a campaign" not in page and "Analyst" in page
        for path in ("/campaigns/clinic-access/sends", "/campaigns/clinic-access/change/close"):
            r = await c.get(path)
            assert r.status_code == 403 and "administrator" in r.text, path
        for path, data in (("/campaigns/clinic-access/change/close", {}),
                           ("/campaigns/clinic-access/sends/start", {"kind": "invitation"}),
                           ("/campaigns/clinic-access/sends/dry-run", {"kind": "invitation"}),
                           ("/campaigns/clinic-access/invites", {"code": "lib", "partner": "Library"}),
                           ("/campaigns/load", {"text": EXAMPLE.read_text()})):
            r = await post_form(c, path, data)
            assert r.status_code == 403 and "Only an administrator" in r.text, path
    async with sqlite_db.session() as s:
        c_row = await s.get(Campaign, "clinic-access")
        assert c_row is not None and c_row.status == "open"
        assert "lib" not in (await s.scalars(select(Invite.code))).all()


async def test_a_partner_sees_only_their_invite(sqlite_db: Database, keys: Keys,
                                                example_spec) -> None:  # type: ignore[no-untyped-def]
    await load_open(sqlite_db, example_spec)
    async with sqlite_db.session() as s:
        mine = await create_invite(s, example_spec, "noor", "Al-Noor Mosque", {"community": ["arabic"]})
        other = await create_invite(s, example_spec, "lib", "Central Library")
        await s.commit()
        mine_id, other_id = mine.id, other.id
    app, settings = _app(sqlite_db, keys)
    async with client(app) as c:
        r = await sign_in_with(c, await partner_link(sqlite_db, mine_id, "noor"))
        assert r.status_code == 303 and r.headers["location"] == f"/invites/{mine_id}"
        page = await c.get(f"/invites/{mine_id}")
        assert page.status_code == 200 and "Al-Noor Mosque" in page.text
        assert "https://t.me/CouncilTestBot?start=clinic-access_noor" in page.text
        assert "Central Library" not in page.text and "partner sign-in link" not in page.text
        png = await c.get(f"/invites/{mine_id}/qr.png")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert (await c.get(f"/invites/{mine_id}/qr.svg")).text.lstrip().startswith("<?xml")
        poster = await c.get(f"/invites/{mine_id}/poster")
        assert poster.status_code == 200 and "Al-Noor Mosque" in poster.text
        for path in (f"/invites/{other_id}", f"/invites/{other_id}/qr.png", f"/invites/{other_id}/poster",
                     "/", "/campaigns/clinic-access", "/campaigns/clinic-access/invites",
                     "/campaigns/clinic-access/results", "/campaigns/clinic-access/export/long.csv",
                     "/audit"):
            r = await c.get(path)
            assert r.status_code == 403, path
            assert "Central Library" not in r.text
        r = await post_form(c, f"/invites/{mine_id}/partner-link", page=f"/invites/{mine_id}")
        assert r.status_code == 403
    # the admin makes partner links on the invite's page
    async with client(app) as c:
        await officer_signs_in(c, sqlite_db, keys, settings, ADMIN)
        r = await post_form(c, f"/invites/{other_id}/partner-link", page=f"/invites/{other_id}")
        link = re.search(r'id="partner-link">([^<]+)<', r.text)
        assert r.status_code == 200 and link
    async with client(app) as partner:
        assert (await sign_in_with(partner, link.group(1))).headers["location"] == f"/invites/{other_id}"


# --------------------------------------------------------------------------- nothing small, no ids

COUNT_WORDS = r"(people|person|sent|failed|stopped|skipped|uncertain|not sent yet)"
SMALL = [re.compile(r"<td[^>]*>\s*(?:<bdi>)?[1-9](?:</bdi>)?\s*<"),  # a cell holding a count of 1..9
         re.compile(rf"(?<![\d<.\-:/]){'[1-9]'}\s+{COUNT_WORDS}\b"),
         re.compile(r"(Agreed to take part|Finished|So far): [1-9](?!\d)")]


def _small_counts(text: str) -> list[str]:
    return [m.group(0) for rx in SMALL for m in rx.finditer(text)]


async def test_no_page_shows_a_small_count_or_an_id(db: Database, keys: Keys, example_spec,  # type: ignore[no-untyped-def]
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Five people in small groups: every page, fragment, report and grouped export of the
    campaign shows no count of 1 to 9 and no Telegram id, and no id reaches the log."""
    caplog.set_level("DEBUG")
    await load_open(db, example_spec)
    async with db.session() as s:
        invite = await create_invite(s, example_spec, "noor", "Al-Noor Mosque")
        await s.commit()
        iid = invite.id
    crowd = [Someone(FIRST_USER + i, ("en", "ar", "so")[i % 3], consented_hours_ago=60, completed=i < 3,
                     wants_outcome=True, groups={"community": [("somali", "arabic")[i % 2]], "age": ["over64"]})
             for i in range(5)]
    await seed(db, keys, "clinic-access", crowd)
    async with db.session() as s:
        from bot.models import Response

        await s.execute(update(Response).values(invite_id=iid))
        await s.commit()
    app, settings = _app(db, keys)
    ids = [str(p.user_id) for p in crowd] + [str(ADMIN), str(ANALYST)]
    cid = "clinic-access"
    pages = ["/", f"/campaigns/{cid}", f"/campaigns/{cid}/participation", f"/campaigns/{cid}/invites",
             f"/invites/{iid}", f"/campaigns/{cid}/sends", f"/campaigns/{cid}/results",
             # report.json too: nobody answered the coin question here, a figure with no answer
             # behind it (NaN in the model) must come out as null, not an error page
             f"/campaigns/{cid}/report.html", f"/campaigns/{cid}/report.md", f"/campaigns/{cid}/report.json",
             f"/campaigns/{cid}/export/grouped.csv", f"/campaigns/{cid}/export/grouped.json",
             f"/campaigns/{cid}/translations", "/audit"]
    seen: dict[str, str] = {}
    async with client(app) as c:
        await officer_signs_in(c, db, keys, settings, ADMIN)
        for path in pages:
            r = await c.get(path)
            assert r.status_code == 200, (path, r.status_code)
            seen[path] = r.text
        for kind in ("invitation", "reminder"):
            r = await post_form(c, f"/campaigns/{cid}/sends/dry-run", {"kind": kind}, page=f"/campaigns/{cid}/sends")
            assert r.status_code == 200 and "would go to" in r.text or "Nobody would" in r.text
            seen[f"dry-run {kind}"] = r.text
        r = await post_form(c, f"/campaigns/{cid}/sends/dry-run",
                            {"kind": "outcome", "outcome_text": (ROOT / "examples" / "outcome-clinic-access.yaml").read_text()},
                            page=f"/campaigns/{cid}/sends")
        assert "would go to" in r.text, r.text
        seen["dry-run outcome"] = r.text
        cookie = c.cookies.get("coassess_session") or ""
    assert "&lt;10" in seen[f"/campaigns/{cid}"]  # the five are there, hidden
    for path, text in seen.items():
        assert not _small_counts(text), (path, _small_counts(text)[:5])
        for i in ids:
            assert i not in text, (path, i)
    payload = base64.b64decode(cookie.split(".")[0] + "==").decode(errors="replace")
    assert str(ADMIN) not in payload and "actor" in payload
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged and not [i for i in ids if i in logged]


ROOT = Path(__file__).resolve().parent.parent


async def test_upload_shows_each_problem_with_its_line_then_loads(sqlite_db: Database, keys: Keys) -> None:
    app, settings = _app(sqlite_db, keys)
    broken = EXAMPLE.read_text().replace("min_group_size: 10", "min_group_size: ten", 1)
    async with client(app) as c:
        await officer_signs_in(c, sqlite_db, keys, settings, ADMIN)
        r = await post_form(c, "/campaigns/check", files={"file": ("../../etc/passwd.yaml", broken.encode())})
        assert r.status_code == 200 and "1 problem." in r.text and "Load the campaign" not in r.text
        line = next(i for i, text in enumerate(broken.splitlines(), 1) if "min_group_size" in text)
        assert re.search(rf'<td class="num">{line}</td>', r.text), r.text
        assert "passwd" not in r.text  # the browser's file name is not used
        assert await _campaigns(sqlite_db) == []
        # an XLSForm is converted as `campaign import-xlsform` does, then checked
        form = (ROOT / "tests" / "data" / "two-language-form.xlsx").read_bytes()
        r = await post_form(c, "/campaigns/check", files={"file": ("form.xlsx", form)})
        assert "No problems." in r.text and "Load the campaign" in r.text
        r = await post_form(c, "/campaigns/check", files={"file": ("big.yaml", b"#" * (3 * 1024 * 1024))})
        assert r.status_code == 413 and "larger than 2 MB" in r.text  # refused before it is read
        ok = await post_form(c, "/campaigns/load", {"text": EXAMPLE.read_text()})
        assert ok.status_code == 303
        # schedule, behind a confirmation naming the campaign
        page = await c.get("/campaigns/clinic-access/change/schedule")
        assert "Schedule “Your say on North Street Health Centre”" in page.text
        r = await post_form(c, "/campaigns/clinic-access/change/schedule",
                            {"opens": "2031-01-05T09:00", "closes": "2031-02-01T18:00"},
                            page="/campaigns/clinic-access/change/schedule")
        assert r.status_code == 303
        assert "scheduled" in (await c.get("/")).text
        bad = await post_form(c, "/campaigns/clinic-access/change/schedule",
                              {"opens": "2031-02-05T09:00", "closes": "2031-02-01T18:00"},
                              page="/campaigns/clinic-access/change/schedule")
        assert "must come after" in bad.text
    async with sqlite_db.session() as s:
        actions = (await s.scalars(select(AuditEvent.action).where(AuditEvent.campaign_id == "clinic-access")
                                   .order_by(AuditEvent.id))).all()
    assert actions == ["load", "schedule"]


async def test_translators_spreadsheet_goes_down_and_back_up(sqlite_db: Database, keys: Keys) -> None:
    import openpyxl

    app, settings = _app(sqlite_db, keys)
    async with client(app) as c:
        await officer_signs_in(c, sqlite_db, keys, settings, ADMIN)
        text = (ROOT / "tests" / "data" / "short-campaign.yaml").read_text()
        assert (await post_form(c, "/campaigns/load", {"text": text})).status_code == 303
        sheet = await c.get("/campaigns/quick-check/translations.xlsx")
        assert sheet.status_code == 200
        wb = openpyxl.load_workbook(io.BytesIO(sheet.content))
        ws = wb.active
        header = [cell.value for cell in ws[1]]
        row = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "title")
        row[header.index("Arabic (ar)")].value = "رأيك في نادي الشباب"
        out = io.BytesIO()
        wb.save(out)
        page = "/campaigns/quick-check/translations"
        checked = await post_form(c, page, files={"file": ("t.xlsx", out.getvalue())}, page=page)
        assert "The spreadsheet is fine" in checked.text, re.findall(r"<li>(.*?)</li>", checked.text)
        async with sqlite_db.session() as s:
            assert (await s.get(Campaign, "quick-check")).title["ar"] == "رأيك في مركز الشباب"  # not yet
        loaded = await post_form(c, page, {"load": "1"}, files={"file": ("t.xlsx", out.getvalue())}, page=page)
        assert "The new texts are loaded." in loaded.text
        not_a_sheet = await post_form(c, page, files={"file": ("t.xlsx", b"id: x")}, page=page)
        assert "This is not the translators" in not_a_sheet.text
    async with sqlite_db.session() as s:
        assert (await s.get(Campaign, "quick-check")).title["ar"] == "رأيك في نادي الشباب"


async def test_two_clicks_on_one_link_sign_in_once(db: Database, keys: Keys) -> None:
    """Two tabs (or two console processes) redeeming the same token at once: one gets in."""
    import asyncio

    from bot.services.signin import redeem

    async with db.session() as s:
        url = await officer_link(s, keys, "http://x", ADMIN, frozenset({ADMIN}), frozenset())
        await s.commit()
    token = url.rsplit("/", 1)[1]

    async def click() -> object:
        async with db.session() as s:
            return await redeem(s, token)

    got = await asyncio.gather(*(click() for _ in range(4)))
    assert sum(g is not None for g in got) == 1
