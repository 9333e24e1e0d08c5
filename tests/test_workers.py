"""Several webhook workers, one conversation: no wrong answers, no thrown-away taps, no frozen chats, under a
CPU hog and through outages (database refusing and hanging, Redis cut, Telegram 5xx, kill -9, a start while
the database is away); poison updates set aside; every failure classified in one place."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.pseudonym import pseudonym
from bot.sandbox import Limits, Sandbox
from bot.simulation import Citizen, make_personas
from tests.conftest import IN_CI, create_pg_database, drop_pg_database
from tests.faults import PausableProxy, TcpProxy
from tests.live import PSEUDONYM_KEY, prepare_campaign, stored_by_person
from tests.workers import (
    REDIS_URL,
    BotApiFront,
    apologies,
    callbacks_report,
    cpu_hog,
    fleet,
    tally,
)

FAST = Limits(global_per_second=None, per_chat_per_second=None)
CITIZENS = int(os.environ.get("COASSESS_WORKER_CITIZENS", "12"))
LOG_LEVEL = os.environ.get("COASSESS_WORKER_LOG_LEVEL", "WARNING")
RUNS = int(os.environ.get("COASSESS_WORKER_RUNS", "1"))  # the 20 of 20: COASSESS_WORKER_RUNS=20


def of(uid: int) -> str:
    return pseudonym(PSEUDONYM_KEY.encode(), uid)


def crowd(spec, n: int, seed: int, start_id: int = 610_000_001):  # type: ignore[no-untyped-def]
    people = make_personas(spec, n, seed=seed, start_id=start_id)
    for p in people:
        p.blocks, p.stop_after = False, None
    return people


def need_redis() -> None:
    try:
        import redis as redis_sync

        redis_sync.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"CI=true but Redis is not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


@pytest.fixture
async def pg_url():  # type: ignore[no-untyped-def]
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 4])
async def test_several_workers_fast_taps_under_cpu_load(workers: int, pg_url: str, example_spec,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path) -> None:
    """Citizens tap the moment a screen arrives; the balancer alternates; two busy loops share the CPU."""
    need_redis()
    await prepare_campaign(pg_url, example_spec)
    figures = []
    for run in range(RUNS):
        people = crowd(example_spec, CITIZENS, seed=100 + run, start_id=610_000_001 + 1000 * run)
        async with Sandbox(limits=FAST, token=f"{123456 + run}:TEST") as sb, fleet(sb, pg_url, tmp_path / f"run{run}", workers,
                                                                      COASSESS_LOG_LEVEL=LOG_LEVEL) as f:
            citizens = [Citizen(sb.client, example_spec, p, think=(0.0, 0.0), timeout=60) for p in people]
            with cpu_hog(90):
                results = await asyncio.gather(*(c.run() for c in citizens))
            taps, in_time, moment = callbacks_report(sb)
            sorry = apologies(sb)
            hits = list(f.balancer.hits)
            # every Bot API call the workers made and Telegram refused ("not modified", a second
            # answer to a tap, an edit of a message that is gone...): none is expected
            refused = [f"{c['method']}: {c.get('description')}" for c in await sb.client.calls() if not c.get("ok")]
        stored = await stored_by_person(pg_url, None)
        t = tally(results, {k: v for k, v in stored.items() if k in {of(p.user_id) for p in people}}, of)
        t["should_finish"] = sum(not p.declines for p in people)
        t["first_errors"] = [r.error[:160] for r in results if r.error][:3]
        t["unfinished_last_screens"] = [((c.message or {}).get("text") or "")[:100] for c, r in zip(citizens, results)
                                        if not r.finished and not r.error and not r.persona.declines][:3]
        figures.append({**t, "taps": taps, "answered_in_time": in_time, "one_moment": moment, "sorry": sorry, "hits": hits,
                        "refused_calls": len(refused), "first_refused": refused[:3]})
        print(f"{workers} workers, run {run + 1}: {json.dumps(figures[-1])}")
        assert min(hits) > 10, hits  # every worker really served
        assert "Traceback" not in f.logs() and "ERROR" not in f.logs(), f.logs()[-3000:]
        assert f.codes == [0] * workers  # type: ignore[attr-defined]
    for fig in figures:
        assert fig["errors"] == 0 and fig["stored_differently"] == 0, figures
        assert fig["finished"] == fig["should_finish"], figures
        assert fig["answered_in_time"] == fig["taps"] and fig["sorry"] == 0, figures
        assert fig["refused_calls"] == 0, figures


# --- one taxonomy of failures ------------------------------------------------------------------


def test_failures_are_classified_in_one_place() -> None:
    from aiogram.exceptions import ClientDecodeError, TelegramServerError
    from aiogram.methods import SendMessage
    from pydantic import ValidationError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from aiogram.types import Update
    from bot.runtime.failures import DATABASE, REDIS, TELEGRAM, Failure, cause, describe

    refused = OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    # aiogram-dialog's error middleware raises KeyError('aiogd_context') in a finally while the
    # database is away: the real cause is the connection error behind it
    try:
        try:
            raise refused
        except OperationalError:
            raise KeyError("aiogd_context")  # noqa: B904 - as the framework does, in a finally
    except KeyError as masked:
        framework = masked
    html_502 = ClientDecodeError("Failed to decode object", ValueError("Expecting value"), "<html>502</html>")
    try:
        Update.model_validate({"update_id": 1, "message": {"message_id": 1, "date": "yesterday",
                                                          "chat": {"id": 5, "type": "private"}}})
    except ValidationError as exc:
        poison = exc
    cases = {
        refused: (Failure.TEMPORARY, DATABASE),
        PoolTimeout("QueuePool limit of size 10 overflow 20 reached"): (Failure.TEMPORARY, DATABASE),
        RedisConnectionError("Connection refused"): (Failure.TEMPORARY, REDIS),
        html_502: (Failure.TEMPORARY, TELEGRAM),
        TelegramServerError(SendMessage(chat_id=1, text="x"), "Bad Gateway"): (Failure.TEMPORARY, TELEGRAM),
        TimeoutError(): (Failure.TEMPORARY, "a network call"),
        framework: (Failure.TEMPORARY, DATABASE),
        poison: (Failure.UPDATE, "the update"),
        ValueError("a bug"): (Failure.UPDATE, "the update"),
        FileNotFoundError("x.ogg"): (Failure.UPDATE, "the update"),
    }
    for exc, (kind, part) in cases.items():
        assert cause(exc)[:2] == (kind, part), exc
    assert cause(framework)[2] is refused
    # a parse error is described by its fields, never the person's input
    assert "yesterday" not in describe(poison) and "message.date" in describe(poison)


# --- poison updates ------------------------------------------------------------------------------


def poison_shapes(uid: int) -> list[dict]:  # type: ignore[type-arg]
    chat = {"id": uid, "type": "private", "first_name": "Amina"}
    who = {"id": uid, "is_bot": False, "first_name": "Amina", "language_code": "en"}
    base = {"message_id": 9_000, "date": 1_700_000_000, "chat": chat, "from": who, "text": "hello"}
    no_id = {k: v for k, v in base.items() if k != "message_id"}
    story = {**base, "external_reply": {"origin": {"type": "user", "date": 0, "sender_user": who}, "story": {}}}
    return [{**base, "date": "yesterday"}, {**base, "from": {**who, "id": "x"}}, no_id, story]


async def test_poison_updates_are_set_aside_and_the_next_start_is_answered(
        db_url: str, example_spec, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from bot.runtime.runner import health_report
    from tests.live import CONTACT_KEY, live_bot

    uid = 620_000_001
    caplog.set_level(logging.INFO, logger="bot.runtime.pump")
    async with live_bot(db_url, example_spec, tmp_path, limits=FAST) as live:
        client = live.sandbox.client
        await client.create_user(uid, first_name="Amina", language_code="en")
        ids = [(await client.push_update("message", shape))["update_id"] for shape in poison_shapes(uid)]
        assert all(ids)
        sent = await client.send_command(uid, "start", example_spec.id)
        reply = await client.wait_for_bot(uid, after=sent, timeout=40)
        assert reply.texts and not any("Sorry" in t for t in reply.texts)  # the chat is not blocked
        report = health_report(live.runtime)
    assert report["set_aside"] == 4 and live.runtime.pump.set_aside == 4
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 4 and all("set aside after 3 tries" in r.getMessage() for r in errors)
    assert not any(str(uid) in r.getMessage() or "yesterday" in r.getMessage() for r in caplog.records)

    env = {**os.environ, "COASSESS_PSEUDONYM_KEY": PSEUDONYM_KEY, "COASSESS_CONTACT_KEY": CONTACT_KEY,
           "COASSESS_DATABASE_URL": db_url, "COLUMNS": "200"}
    journal = str(tmp_path / "journal.db")

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "bot.cli", "updates", *args, "--journal", journal],
                              env=env, capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parent.parent)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = cli("list")
    assert all(str(i) in listed for i in ids) and "4 updates set aside" in listed
    assert "could not be read" in listed and "yesterday" not in listed and str(uid) not in listed
    assert "1 update dropped" in cli("drop", str(ids[0]))
    assert "3 updates put back in line" in cli("replay")
    assert "No updates are set aside" in cli("list")


# --- outages --------------------------------------------------------------------------------------


async def test_a_tap_during_a_database_outage_is_told_one_moment_and_caught_up(
        pg_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.live import live_bot

    real = make_url(pg_url)
    proxy = await TcpProxy(real.host or "127.0.0.1", real.port or 5432).start()
    via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    uid = 630_000_001
    try:
        async with live_bot(via_proxy, example_spec, tmp_path, limits=FAST) as live:
            client = live.sandbox.client
            await client.create_user(uid, first_name="Claire", language_code="fr-FR")
            sent = await client.send_command(uid, "start", example_spec.id)
            screen = (await client.wait_for_bot(uid, after=sent, timeout=20)).last
            button = next(b for row in screen["reply_markup"]["inline_keyboard"] for b in row
                          if b.get("callback_data"))
            await proxy.cut()                                     # PostgreSQL is gone
            tap = await client.tap(uid, screen["message_id"], data=button["callback_data"])
            await asyncio.sleep(6.0)
            answer = await client.callback(tap.callback_query_id)
            assert answer["answered"] and answer["answer"]["text"] == "Un instant…"  # in their language
            assert answer["answered_at"] - answer["created_at"] < 15
            await proxy.restore()
            caught_up = await client.wait_for_bot(uid, after=tap, timeout=60)
            assert caught_up.texts and not any("Désolé" in t or "Sorry" in t for t in caught_up.texts)
            assert live.runtime.pump.outage.count >= 1 and not live.runtime.pump.outage.active
    finally:
        await proxy.close()


@pytest.mark.slow
async def test_outages_across_two_workers_throw_no_tap_away(pg_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Database refusing then hanging, Redis cut, Telegram 5xx (JSON and HTML), kill -9 of a worker, and a
    worker started while the database is away: every tap answered, no apology, everything stored."""
    need_redis()
    redis = make_url(REDIS_URL.replace("redis://", "postgresql://"))
    real = make_url(pg_url)
    await prepare_campaign(pg_url, example_spec)
    db_proxy = await PausableProxy(real.host or "127.0.0.1", real.port or 5432).start()
    redis_proxy = await TcpProxy(redis.host or "127.0.0.1", redis.port or 6379).start()
    via_proxy = real.set(host="127.0.0.1", port=db_proxy.port).render_as_string(hide_password=False)
    redis_via = f"redis://127.0.0.1:{redis_proxy.port}/{redis.database or 0}"
    people = crowd(example_spec, 10, seed=77, start_id=640_000_001)
    events: list[str] = []
    try:
        async with Sandbox(limits=FAST) as sb:
            front = BotApiFront(sb.api_url)
            api = await front.start()
            async with fleet(sb, via_proxy, tmp_path, 2, api_url=api, COASSESS_REDIS_URL=redis_via,
                                   COASSESS_LOG_LEVEL=LOG_LEVEL) as f:
                tasks = [asyncio.create_task(Citizen(sb.client, example_spec, p, think=(0.05, 0.3),
                                                     timeout=120).run()) for p in people]

                async def phase(name: str, start, end, seconds: float) -> None:  # type: ignore[no-untyped-def]
                    await asyncio.sleep(2.0)
                    events.append(name)
                    await start()
                    await asyncio.sleep(seconds)
                    await end()

                async def nothing() -> None:
                    return None

                async def hang() -> None:
                    db_proxy.hang()

                async def resume() -> None:
                    db_proxy.resume()

                async def json_5xx() -> None:
                    await sb.client.fail_next(15, status=502, description="Bad Gateway")

                async def html_5xx() -> None:
                    front.html_502_every = 10

                async def html_off() -> None:
                    front.html_502_every = 0

                async def kill_and_start_during_outage() -> None:
                    f.kill(0)
                    await db_proxy.cut()
                    f.start(0)                       # starts while the database is away
                    health = await f.health(0)
                    assert health["waiting_for"] == "the database"

                await phase("database refusing", db_proxy.cut, db_proxy.restore, 5.0)
                await phase("database hanging", hang, resume, 5.0)
                await phase("redis cut", redis_proxy.cut, redis_proxy.restore, 5.0)
                await phase("telegram 5xx json", json_5xx, nothing, 3.0)
                await phase("telegram 5xx html", html_5xx, html_off, 5.0)
                await phase("kill -9, start during an outage", kill_and_start_during_outage, db_proxy.restore, 5.0)
                recovered = time.monotonic()
                results = await asyncio.gather(*tasks)
                caught_up = time.monotonic() - recovered
                taps, in_time, moment = callbacks_report(sb)
                sorry = apologies(sb)
                health = [await f.health(i) for i in range(2)]
            await front.close()
    finally:
        await db_proxy.close()
        await redis_proxy.close()
    stored = await stored_by_person(pg_url, None)
    t = tally(results, stored, of)
    t["first_errors"] = [r.error[:200] for r in results if r.error][:3]
    print(json.dumps({**t, "taps": taps, "answered_in_time": in_time, "one_moment": moment, "sorry": sorry,
                      "html_502_served": front.served_html, "seconds_to_finish_after_last_outage": round(caught_up),
                      "phases": events}))
    assert t["errors"] == 0 and t["stored_differently"] == 0, t
    assert t["finished"] == sum(not p.declines for p in people), t
    assert sorry == 0
    # Every tap answered within Telegram's limit, except at most the one the killed worker had taken:
    # it acknowledged that tap, then died, and nobody else has it until it has started again (15 s
    # and more on a busy 2-core machine); it is answered the moment the worker is back.
    assert taps - in_time <= 1 and moment > 0
    assert front.served_html > 0
    assert caught_up < 60
    assert all(h["set_aside"] == 0 for h in health)
    text = f.logs()
    assert "Traceback" not in text and "KeyError" not in text, text[-3000:]
    assert "is not answering" in text and "is answering again" in text


# --- a replay after a failed final commit ----------------------------------------------------------


async def test_a_replay_after_a_failed_final_commit_sends_no_second_consent(
        db_url: str, example_spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import OperationalError

    from bot.runtime import middleware
    from tests.live import live_bot

    uid = 650_000_001
    real_flush = middleware.state_storage.flush
    failed = {"n": 0}

    async def flush_fails_once(session, marker=None):  # type: ignore[no-untyped-def]
        if failed["n"] == 0 and marker is not None:
            failed["n"] += 1  # the screen is out; the final commit is not (the database went away)
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))
        return await real_flush(session, marker)

    async with live_bot(db_url, example_spec, tmp_path, limits=FAST) as live:
        client = live.sandbox.client
        await client.create_user(uid, first_name="Leyla", language_code="en")
        monkeypatch.setattr(middleware.state_storage, "flush", flush_fails_once)
        sent = await client.send_command(uid, "start", example_spec.id)
        await client.wait_for_bot(uid, after=sent, timeout=20)
        await live.runtime.pump.drained(timeout=20)  # the retry has run too
        assert failed["n"] == 1 and live.runtime.pump.retries >= 1
        screens = await client.bot_messages(uid)
        assert len(screens) == 1, [m["text"][:60] for m in screens]  # one consent, not two
        consent = screens[0]
        yes = next(b for row in consent["reply_markup"]["inline_keyboard"] for b in row
                   if (b.get("callback_data") or "").endswith("\x1dy"))
        tap = await client.tap(uid, consent["message_id"], data=yes["callback_data"])
        after = await client.wait_for_bot(uid, after=tap, timeout=20)
        assert after.last and after.last.get("reply_markup"), after.texts  # the first question, not /help


# --- locks of a dead worker ---------------------------------------------------------------------------


async def test_a_chat_lock_outlives_a_stalled_loop_and_dies_with_its_worker(tmp_path: Path) -> None:
    import subprocess
    import sys

    from redis.asyncio import Redis

    from bot.runtime.locks import LOCK_TTL, ChatLocks

    need_redis()
    redis = Redis.from_url(REDIS_URL)
    locks = ChatLocks(redis, b"lock-test-secret", url=REDIS_URL, ttl=2.0, renew_every=0.3)
    try:
        async with locks.hold("4242"):
            time.sleep(3.0)  # the event loop is blocked longer than the TTL (a CPU-starved worker)
            assert await redis.pttl(locks.key("4242")) > 0 and locks.lost == 0
        assert not await redis.exists(locks.key("4242"))
        # a worker holding a chat's lock is killed: the chat is free again within the TTL
        code = ("import asyncio, sys\nfrom redis.asyncio import Redis\nfrom bot.runtime.locks import ChatLocks\n"
                "async def main():\n    locks = ChatLocks(Redis.from_url(sys.argv[1]), b'lock-test-secret', "
                "url=sys.argv[1])\n    async with locks.hold('4343'):\n        print('held', flush=True)\n"
                "        await asyncio.sleep(600)\nasyncio.run(main())\n")
        holder = subprocess.Popen([sys.executable, "-c", code, REDIS_URL], stdout=subprocess.PIPE,
                                  cwd=Path(__file__).resolve().parent.parent)
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        holder.kill()
        holder.wait(10)
        started = time.monotonic()
        other = ChatLocks(redis, b"lock-test-secret", url=REDIS_URL, wait=30)
        async with other.hold("4343"):
            freed_after = time.monotonic() - started
        other.close()
        assert freed_after <= LOCK_TTL + 1.0, freed_after
    finally:
        locks.close()
        await redis.aclose()
