"""The console in a real browser (Debian's chromium, driven by Playwright): an officer runs the
example campaign end to end, while the real bot serves sandbox citizens over HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import shutil
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.db import Database
from bot.runtime.runner import Runtime, poll
from bot.sandbox import Limits, Sandbox
from bot.services.participants import Keys
from bot.services.signin import officer_link
from bot.settings import Settings
from bot.simulation import Citizen, make_personas
from dialogs.context import forget_cached_campaigns
from tests.conftest import EXAMPLE, IN_CI, ROOT
from tests.live import CONTACT_KEY, PSEUDONYM_KEY
from web.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts" / "web-walk"
ADMIN = 700_101
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# How long a download may take to start: a bound for a busy 2-core CI machine, not a target
# (the export runs off the console's event loop; figures are in benchmarks/web_console.py).
DOWNLOAD_WAIT = 120_000  # ms


async def _serve(app, port: int):  # type: ignore[no-untyped-def]
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    return server, task


def _decode_qr(png: bytes) -> list[str]:
    import zxingcpp
    from PIL import Image

    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def _open_export(path: Path, fmt: str) -> int:
    """Open a downloaded file as its format says; returns how many rows (or items) it holds."""
    if fmt == "csv":
        return len(list(csv.reader(path.open(encoding="utf-8"))))
    if fmt == "xlsx":
        import openpyxl

        return sum(1 for _ in openpyxl.load_workbook(path, read_only=True).active.iter_rows())
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).num_rows
    if fmt == "json":  # the exports are JSON lines, the report one document
        text = path.read_text(encoding="utf-8")
        try:
            return len(json.loads(text))
        except json.JSONDecodeError:
            return len([json.loads(line) for line in text.splitlines() if line.strip()])
    if fmt == "html":
        return path.read_text(encoding="utf-8").count("<table")
    if fmt == "md":
        return path.read_text(encoding="utf-8").count("\n|")
    raise AssertionError(fmt)


@pytest.mark.skipif(not Path(CHROMIUM).exists() and not IN_CI, reason="Debian's chromium is not installed")
async def test_an_officer_runs_the_example_campaign_in_the_browser(tmp_path: Path, example_spec) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite+aiosqlite:///{tmp_path}/walk.db"
    db = Database(db_url)
    await db.upgrade()
    port = _free_port()
    sandbox = Sandbox(limits=Limits(global_per_second=None, per_chat_per_second=3.0, per_chat_burst=3))
    await sandbox.start()
    settings = Settings(_env_file=None, database_url=db_url, bot_token=SecretStr(sandbox.token),
                        telegram_api_url=sandbox.api_url, pseudonym_key=SecretStr(PSEUDONYM_KEY),
                        contact_key=SecretStr(CONTACT_KEY), journal_path=str(tmp_path / "journal.db"),
                        admin_ids=frozenset({ADMIN}), web_public_url=f"http://127.0.0.1:{port}",
                        web_secret=SecretStr("walk-secret-0123456789abcdefghij"), scheduler_interval=0)
    keys = Keys(PSEUDONYM_KEY.encode(), CONTACT_KEY.encode())
    server, serving = await _serve(create_app(settings, db=db, keys=keys), port)
    runtime = stop = bot_task = None
    base = settings.web_public_url
    personas = make_personas(example_spec, 24, seed=11)
    try:
        async with db.session() as s:
            link = await officer_link(s, keys, base, ADMIN, settings.admin_ids, settings.analyst_ids)
            await s.commit()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            context = await browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(30_000)
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(base) else None)

            async def shot(name: str) -> None:
                await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                shown = await page.content()
                # no citizen's Telegram id or name on any page the officer sees
                assert not [p for p in personas if str(p.user_id) in shown or f"Citizen{p.user_id}" in shown], name

            # sign in with the one-time link
            await page.goto(link)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
            await shot("01-campaigns-empty")

            # upload, check, load
            await page.set_input_files("input[name=file]", str(EXAMPLE))
            await page.get_by_role("button", name="Check the file").click()
            await expect(page.get_by_text("No problems.")).to_be_visible()
            await shot("02-checked")
            await page.get_by_role("button", name="Load the campaign").click()
            await expect(page.get_by_text("The campaign is loaded")).to_be_visible()

            # The example's opening date has passed, so it is open once loaded: close it and open
            # it again, each after a confirmation that names the campaign and what will happen.
            title = example_spec.title["en"]
            await expect(page.locator(".meta .state-open")).to_be_visible()
            await page.get_by_role("link", name="Close now…").click()
            await expect(page.get_by_text(f"Close “{title}” now.")).to_be_visible()
            await page.get_by_role("button", name=f"Yes, close “{title}”").click()
            await expect(page.locator(".meta .state-closed")).to_be_visible()
            await page.get_by_role("link", name="Open now…").click()
            await expect(page.get_by_text(f"Open “{title}” now.")).to_be_visible()
            await shot("03-confirm-open")
            await page.get_by_role("button", name=f"Yes, open “{title}”").click()
            await expect(page.locator(".meta .state-open")).to_be_visible()

            # an invite, and its poster's QR code
            await page.get_by_role("link", name="Invites").click()
            await page.fill("input[name=code]", "walk")
            await page.fill("input[name=partner]", "Walkers' Library")
            await page.get_by_role("button", name="Make the invite").click()
            await expect(page.get_by_role("heading", name="Walkers' Library")).to_be_visible()
            invite_link = (await page.locator("code.link").first.inner_text()).strip()
            assert invite_link.endswith("?start=clinic-access_walk")
            invite_page = page.url
            await page.goto(invite_page + "/poster")
            poster = await page.screenshot(path=str(ARTIFACTS / "04-poster.png"), full_page=True)
            assert invite_link in _decode_qr(poster)
            async with page.expect_download(timeout=DOWNLOAD_WAIT) as dl:
                await page.goto(invite_page)
                await page.get_by_role("link", name="QR code (PNG)").click()
            png = await (await dl.value).path()
            assert _decode_qr(Path(png).read_bytes()) == [invite_link]

            # sandbox citizens answer through the real bot; some through the new invite, some
            # stop early or say "not now" (they can be invited)
            forget_cached_campaigns()
            runtime = await Runtime.create(settings)
            stop = asyncio.Event()
            bot_task = asyncio.create_task(poll(runtime, stop, timeout=1, signals=False))
            for i, p in enumerate(personas):
                p.invite = "walk" if i % 3 == 0 else p.invite
                p.blocks = False
                if i % 4 == 1:
                    p.stop_after = 1
            results = await asyncio.gather(*(Citizen(sandbox.client, example_spec, p).run() for p in personas))
            assert all(r.error is None for r in results), [r.error for r in results if r.error]

            # the campaign page shows them, protected
            await page.goto(f"{base}/campaigns/clinic-access")
            agreed = await page.locator("#participation .big").inner_text()
            assert re.search(r"Agreed to take part: (\d{2,})", agreed), agreed
            await expect(page.locator("#participation")).to_have_attribute("hx-trigger", "every 5s")
            await shot("05-campaign")

            # dry run, then send the invitation to everyone it is for, watching the progress
            await page.get_by_role("link", name="Sends").click()
            await page.get_by_role("button", name="Count who would get the invitation").click()
            await expect(page.locator("#would-receive")).to_contain_text("would go to")
            await shot("06-dry-run")
            await page.get_by_role("button", name=re.compile(r"^Send it to ")).click()
            await expect(page.locator("#send-done")).to_be_visible(timeout=60_000)
            await shot("07-sent")
            assert "failed" in await page.locator("#progress").inner_text()
            sent = [c for c in await sandbox.client.calls(method="sendMessage") if c["ok"]
                    and "clinic-access" in json.dumps(c.get("params", c))]
            assert sent, "no invitation reached the sandbox"

            # every export and the report, downloaded and opened
            await page.get_by_role("link", name="Results").click()
            missing = await page.locator("#under-represented").inner_text()
            assert missing.strip(), "the results page names no under-represented group"
            await shot("08-results")
            links = page.locator("a.export")
            assert await links.count() == 12
            for i in range(await links.count()):
                href = await links.nth(i).get_attribute("href")
                async with page.expect_download(timeout=DOWNLOAD_WAIT) as dl:
                    await links.nth(i).click()
                d = await dl.value
                target = tmp_path / d.suggested_filename
                await d.save_as(target)
                assert _open_export(target, target.suffix[1:]) >= 1, href
            for fmt in ("html", "md", "json"):
                async with page.expect_download(timeout=DOWNLOAD_WAIT) as dl:
                    await page.locator(f"a[href$='report.{fmt}?download=1']").click()
                d = await dl.value
                target = tmp_path / d.suggested_filename
                await d.save_as(target)
                assert _open_export(target, fmt) >= 1
            assert not violations, violations
            assert not offsite, offsite[:5]
            await browser.close()
    finally:
        if stop is not None:
            stop.set()
            await asyncio.wait_for(bot_task, 30)  # type: ignore[arg-type]
            await runtime.close()  # type: ignore[union-attr]
        server.should_exit = True
        await serving
        await sandbox.stop()
        await db.dispose()
