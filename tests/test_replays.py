"""A replay after a crash (issue 18): the person never gets a second copy of a screen, and with Redis the
dialog state and the stored answers never disagree, whichever of the two writes the crash fell between."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.methods import EditMessageText, TelegramMethod
from aiohttp import web
from sqlalchemy.engine import make_url

from bot.campaigns.check import check_text
from bot.campaigns.schema import CampaignSpec
from bot.pseudonym import pseudonym
from bot.sandbox import Limits, Sandbox
from tests.conftest import create_pg_database, drop_pg_database
from tests.faults import PausableProxy, TcpProxy
from tests.live import PSEUDONYM_KEY, live_bot, prepare_campaign, stored_by_person
from tests.test_workers import need_redis
from tests.workers import REDIS_URL, fleet, free_port, wait_http

FAST = Limits(global_per_second=None, per_chat_per_second=None)

SPEC = """\
id: replays
mode: coassessment
languages: [en]
title: {en: How we reach you}
questions:
  - id: channels
    type: multi
    text: {en: "How would you like to reach the clinic?"}
    options:
      - {id: phone, text: {en: Phone}}
      - {id: chat, text: {en: Messaging app}}
      - {id: walkin, text: {en: Walk in}}
  - id: again
    type: yesno
    text: {en: "Would you come again?"}
"""


@pytest.fixture
def spec() -> CampaignSpec:
    result = check_text(SPEC)
    assert result.ok and result.spec is not None
    return result.spec


@pytest.fixture
async def pg_url():  # type: ignore[no-untyped-def]
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


def a_person() -> int:
    # Redis outlives a test run: a fresh person each time, so no earlier run's dialog state is found
    return random.randrange(700_000_000, 799_999_999)


def button(screen: dict[str, Any], label: str) -> dict[str, Any]:
    return next(b for row in screen["reply_markup"]["inline_keyboard"] for b in row if label in b["text"])


async def screen_of(client: Any, uid: int) -> dict[str, Any]:
    messages = await client.bot_messages(uid)
    return messages[-1]


async def to_the_first_question(client: Any, uid: int, spec: CampaignSpec) -> dict[str, Any]:
    sent = await client.send_command(uid, "start", spec.id)
    consent = (await client.wait_for_bot(uid, after=sent, timeout=30)).last
    tap = await client.tap(uid, consent["message_id"], data=button(consent, "Yes")["callback_data"])
    await client.wait_for_bot(uid, after=tap, timeout=30)
    screen = await screen_of(client, uid)
    assert "reach the clinic" in screen["text"], screen["text"]
    return screen


async def tap_and_wait(client: Any, uid: int, screen: dict[str, Any], label: str, timeout: float = 30) -> dict[str, Any]:
    tap = await client.tap(uid, screen["message_id"], data=button(screen, label)["callback_data"])
    await client.wait_for_bot(uid, after=tap, timeout=timeout)
    return await screen_of(client, uid)


# --- the final commit fails after the dialog state could have been written -----------------------------


async def test_a_tick_whose_final_commit_failed_counts_once(pg_url: str, spec: CampaignSpec, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis holds the dialog state; the tick's screen is out, its final database commit fails (the database
    went away). The replay must not tick the option a second time (which would untick it)."""
    from sqlalchemy.exc import OperationalError

    from bot.runtime import middleware

    need_redis()
    uid = a_person()
    real_flush = middleware.state_storage.flush
    armed = {"on": False, "failed": 0}

    async def flush_fails_once(session, marker=None):  # type: ignore[no-untyped-def]
        if armed["on"] and not armed["failed"]:
            armed["failed"] += 1
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))
        return await real_flush(session, marker)

    monkeypatch.setattr(middleware.state_storage, "flush", flush_fails_once)
    async with live_bot(pg_url, spec, tmp_path, limits=FAST, redis_url=REDIS_URL) as live:
        client = live.sandbox.client
        await client.create_user(uid, first_name="Nadia", language_code="en")
        screen = await to_the_first_question(client, uid, spec)
        armed["on"] = True
        screen = await tap_and_wait(client, uid, screen, "Phone")
        await live.runtime.pump.drained(timeout=30)  # the replay has run
        assert armed["failed"] == 1 and live.runtime.pump.retries >= 1
        screen = await screen_of(client, uid)
        screen = await tap_and_wait(client, uid, screen, "Messaging app")
        screen = await tap_and_wait(client, uid, screen, "Done")
        assert "come again" in screen["text"], screen["text"]  # the next question, not "choose one"
        await tap_and_wait(client, uid, screen, "Yes")
        await live.runtime.pump.drained(timeout=30)
    stored = (await stored_by_person(pg_url, None))[pseudonym(PSEUDONYM_KEY.encode(), uid)]
    assert sorted(stored["channels"]["options"]) == ["chat", "phone"], stored  # what the person ticked


# --- the database commit went through, the Redis write did not -------------------------------------


class AfterScreen(BaseRequestMiddleware):
    """Runs `then` once, right after the next screen edit went out (Telegram has answered)."""

    def __init__(self) -> None:
        self.then: Any = None

    async def __call__(self, make_request, bot: Bot, method: TelegramMethod[Any]):  # type: ignore[no-untyped-def]
        result = await make_request(bot, method)
        if self.then is not None and isinstance(method, EditMessageText):
            then, self.then = self.then, None
            await then()
        return result


async def test_an_answer_stored_before_redis_went_away_is_shown_and_kept(pg_url: str, spec: CampaignSpec,
                                                                         tmp_path: Path) -> None:
    """Done on the multiple choice: the answer is committed and the next question shown, then Redis goes
    away before the dialog state is written. After Redis is back the person is on the next question, the
    stored answer is what they ticked, and the conversation goes on."""
    need_redis()
    redis = make_url(REDIS_URL.replace("redis://", "postgresql://"))
    proxy = await TcpProxy(redis.host or "127.0.0.1", redis.port or 6379).start()
    uid = a_person()
    try:
        async with live_bot(pg_url, spec, tmp_path, limits=FAST,
                            redis_url=f"redis://127.0.0.1:{proxy.port}/{redis.database or 0}") as live:
            client = live.sandbox.client
            hook = AfterScreen()
            live.runtime.bot.session.middleware(hook)
            await client.create_user(uid, first_name="Oksana", language_code="en")
            screen = await to_the_first_question(client, uid, spec)
            screen = await tap_and_wait(client, uid, screen, "Walk in")
            hook.then = proxy.cut  # Redis is gone the moment the next question is on screen
            tap = await client.tap(uid, screen["message_id"], data=button(screen, "Done")["callback_data"])
            await client.wait_for_bot(uid, after=tap, timeout=30)
            for _ in range(300):
                if live.runtime.pump.outage.active:
                    break
                await asyncio.sleep(0.1)
            assert live.runtime.pump.outage.active  # the state could not be written
            await proxy.restore()
            await live.runtime.pump.drained(timeout=60)
            screen = await screen_of(client, uid)
            assert "come again" in screen["text"], screen["text"]
            after = await tap_and_wait(client, uid, screen, "Yes")
            await live.runtime.pump.drained(timeout=30)
            assert "come again" not in after["text"]
    finally:
        await proxy.close()
    stored = (await stored_by_person(pg_url, None))[pseudonym(PSEUDONYM_KEY.encode(), uid)]
    assert stored["channels"] == {"options": ["walkin"]} and stored["again"] == {"value": "yes"}, stored


# --- the journal's list of sent messages -----------------------------------------------------------


def test_the_journal_keeps_what_an_update_sent_without_a_readable_chat_id(tmp_path: Path) -> None:
    from bot.pseudonym import ContactCipher
    from bot.runtime.journal import Journal

    chat = 765_432_109
    journal = Journal(tmp_path / "j.db", ContactCipher(b"k" * 32))
    journal.append({"update_id": 7, "message": {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}}})
    journal.remember_sent(7, 0, chat, 41, "text")
    journal.remember_sent(7, 1, chat, 42, "voice")
    journal.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert str(chat).encode() not in raw  # encrypted, as the payload is
    journal = Journal(tmp_path / "j.db", ContactCipher(b"k" * 32))  # a restart
    assert journal.sent(7) == [(str(chat), 41, "text"), (str(chat), 42, "voice")]
    journal.mark_done(7)
    assert journal.sent(7) == []
    journal.close()


# --- kill -9 of a worker after the screen went out ----------------------------------------------------


# Redis commands of the chat lock's renewal (a thread of its own, every 1.5 s): not the update's work
LOCK_RENEWAL = (b"EVALSHA", b"EVAL")


class HangAfter:
    """In front of the sandbox Bot API: once armed, the next sendMessage is passed on and answered, and
    Redis is made to hang before the worker gets the answer (the worker's next step waits for it)."""

    def __init__(self, target: str, redis: PausableProxy) -> None:
        self.target = target.rstrip("/")
        self.redis = redis
        self.armed = False
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._http = aiohttp.ClientSession()
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        async with self._http.request(request.method, self.target + request.path_qs, data=await request.read(),
                                      headers={"Content-Type": request.headers.get("Content-Type", "")}) as r:
            body = await r.read()
        if self.armed and request.path.endswith("/sendMessage") and r.status == 200:
            self.armed = False
            self.redis.hang(except_for=LOCK_RENEWAL)
        return web.Response(status=r.status, body=body, content_type="application/json")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.mark.slow
async def test_a_worker_killed_after_the_consent_went_out_sends_no_second_copy(
        pg_url: str, spec: CampaignSpec, tmp_path: Path) -> None:
    """The consent screen is out; the worker's next step waits for Redis, and the worker is killed there
    (kill -9), before the update is done. Restarted, it replays the update from its journal: the person
    still has one consent screen, and their tap on it opens the first question."""
    need_redis()
    await prepare_campaign(pg_url, spec)
    address = make_url(REDIS_URL.replace("redis://", "postgresql://"))
    redis = await PausableProxy(address.host or "127.0.0.1", address.port or 6379).start()
    uid = a_person()
    front: HangAfter | None = None
    try:
        async with Sandbox(limits=FAST) as sb:
            front = HangAfter(sb.api_url, redis)
            api = await front.start()
            async with fleet(sb, pg_url, tmp_path, 1, api_url=api,
                             COASSESS_REDIS_URL=f"redis://127.0.0.1:{redis.port}/{address.database or 0}") as f:
                client = sb.client
                await client.create_user(uid, first_name="Leyla", language_code="en")
                front.armed = True
                sent = await client.send_command(uid, "start", spec.id)
                await client.wait_for_bot(uid, after=sent, timeout=60)
                await asyncio.wait_for(redis.held.wait(), 60)  # the worker waits for Redis after the screen
                f.kill(0)
                redis.resume()
                f.start(0)
                for _ in range(600):
                    health = await wait_http(f"http://127.0.0.1:{f.ports[0]}/healthz")
                    if health["waiting_updates"] == 0:
                        break
                    await asyncio.sleep(0.1)
                assert health["waiting_updates"] == 0, health
                screens = await client.bot_messages(uid)
                assert len(screens) == 1, [m["text"][:60] for m in screens]  # one consent, not two
                consent = screens[0]
                tap = await client.tap(uid, consent["message_id"], data=button(consent, "Yes")["callback_data"])
                await client.wait_for_bot(uid, after=tap, timeout=60)
                screen = await screen_of(client, uid)
                assert "reach the clinic" in screen["text"], screen["text"]  # the first question, not /help
                assert "Traceback" not in f.logs(), f.logs()[-3000:]
    finally:
        if front is not None:
            await front.close()
        await redis.close()


# --- a replayed screen's voice note ---------------------------------------------------------------


async def test_a_replay_sends_no_second_voice_note(pg_url: str, campaign_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone listens: the first question and its voice note are out when the final commit fails. The
    replay shows the same question, and the voice note is not sent a second time."""
    from sqlalchemy.exc import OperationalError

    from bot.campaigns.check import check_file
    from bot.campaigns.store import load_and_open
    from bot.runtime import middleware
    from tests.test_spoken_questions import _button, _screen, _until_voices, _voices

    spec = check_file(campaign_dir / "campaign.yaml").spec
    assert spec is not None
    await load_and_open(pg_url, spec, voice_notes_from=campaign_dir)
    real_flush = middleware.state_storage.flush
    armed = {"on": False, "failed": 0}

    async def flush_fails_once(session, marker=None):  # type: ignore[no-untyped-def]
        if armed["on"] and marker is not None and not armed["failed"]:
            armed["failed"] += 1
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))
        return await real_flush(session, marker)

    monkeypatch.setattr(middleware.state_storage, "flush", flush_fails_once)
    uid = a_person()
    async with live_bot(pg_url, spec, tmp_path, limits=FAST) as live:
        client = live.sandbox.client
        await client.create_user(uid, language_code="es")
        sent = await client.send_command(uid, "start", spec.id)
        consent = (await client.wait_for_bot(uid, after=sent, timeout=30)).last
        sent = await client.tap(uid, consent["message_id"], data=_button(consent, "v"))
        reply = await _until_voices(client, uid, sent, 1)  # they listen: the consent is spoken
        armed["on"] = True
        sent = await client.tap(uid, consent["message_id"], data=_button(_screen(reply), "y"))
        await _until_voices(client, uid, sent, 1)
        await live.runtime.pump.drained(timeout=30)  # the replay has run
        assert armed["failed"] == 1 and live.runtime.pump.retries >= 1
        everything = await client.wait_for_bot(uid, after=sent, timeout=30)
        assert len(_voices(everything)) == 1, len(_voices(everything))  # the question's voice note, once
        assert "conseguir una cita" in _screen(everything)["text"]


from tests.test_spoken_questions import campaign_dir  # noqa: E402, F401 - the voiced campaign (a fixture)
