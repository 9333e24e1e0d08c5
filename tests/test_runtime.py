"""The runtime: journal before acknowledging, webhook secret, full disk, graceful stop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.pseudonym import ContactCipher
from bot.runtime.journal import Journal, JournalError
from bot.runtime.runner import Runtime, webhook_app
from bot.sandbox import Limits, Sandbox
from bot.simulation import Citizen, make_personas
from tests.live import make_settings, prepare_campaign

UPDATE = {"update_id": 77, "message": {"message_id": 1, "date": 0, "chat": {"id": 555123987, "type": "private"},
                                       "from": {"id": 555123987, "is_bot": False, "first_name": "Hodan"},
                                       "text": "/start"}}


def test_journal_is_durable_encrypted_and_deduplicated(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", ContactCipher(b"k" * 32))
    assert j.append(UPDATE) is True
    assert j.append(UPDATE) is False  # Telegram delivered it twice
    j.close()
    raw = (tmp_path / "j.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("j.db-*"))
    assert b"555123987" not in raw and b"Hodan" not in raw
    j = Journal(tmp_path / "j.db", ContactCipher(b"k" * 32))  # after a restart
    [entry] = j.pending()
    assert entry.payload == UPDATE and entry.lane == "555123987"
    j.mark_done(77)
    assert j.pending() == [] and j.counts() == {"done": 1}
    assert j.append(UPDATE) is False  # still recognised after processing
    assert j.prune(keep_seconds=-1) == 1


def fill_up(journal: Journal) -> None:
    """Make the journal's file behave as on a full disk (SQLite's own 'disk is full' error)."""
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages}")


def test_full_journal_says_what_to_do(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", ContactCipher(b"k" * 32))
    fill_up(j)
    with pytest.raises(JournalError, match="Free disk space|COASSESS_JOURNAL_PATH"):
        for i in range(500):
            j.append({**UPDATE, "update_id": 1000 + i, "pad": "x" * 4000})


async def test_webhook_secret_and_full_disk(db_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await prepare_campaign(db_url, example_spec)
    async with Sandbox() as sb:
        runtime = await Runtime.create(make_settings(db_url, sb, tmp_path / "journal.db"))
        app = webhook_app(runtime, "/hook", "s3cret-value")
        async with TestClient(TestServer(app)) as http:
            assert (await http.post("/hook", json=UPDATE)).status == 401
            assert (await http.post("/hook", json=UPDATE,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})).status == 401
            ok = await http.post("/hook", json=UPDATE, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-value"})
            assert ok.status == 200
            fill_up(runtime.journal)
            statuses = set()
            for i in range(200):
                r = await http.post("/hook", json={**UPDATE, "update_id": 5000 + i, "pad": "x" * 4000},
                                    headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-value"})
                statuses.add(r.status)
            assert 503 in statuses  # Telegram will deliver it again: nothing silently dropped
            assert (await http.get("/healthz")).status == 200
        await runtime.close()


async def test_polling_does_not_acknowledge_what_it_could_not_journal(db_url: str, example_spec,
                                                                      tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.live import live_bot

    personas = make_personas(example_spec, 2, seed=9)
    for p in personas:
        p.stop_after, p.blocks = None, False
    async with live_bot(db_url, example_spec, tmp_path,
                        limits=Limits(global_per_second=None, per_chat_per_second=None)) as live:
        original = live.runtime.journal.append
        broken = {"on": True}

        def append(update):  # type: ignore[no-untyped-def]
            if broken["on"]:
                raise JournalError("disk full (test)")
            return original(update)

        live.runtime.journal.append = append  # type: ignore[method-assign]
        sent = await live.sandbox.client.send_command(personas[0].user_id, "start", example_spec.id) \
            if await live.sandbox.client.create_user(personas[0].user_id, language_code="en") else None
        await asyncio.sleep(2.5)
        pending = await live.sandbox.client.pending_updates()
        assert any(u["update_id"] == sent.update_id for u in pending)  # still waiting at Telegram
        broken["on"] = False
        reply = await live.sandbox.client.wait_for_bot(personas[0].user_id, after=sent, timeout=20)
        assert reply.texts  # processed once the journal works again
