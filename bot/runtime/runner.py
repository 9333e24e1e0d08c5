"""The bot process: long polling or a webhook server, both journalling before acknowledging."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StorageKey

from bot.db import Database
from bot.runtime.app import BotConfig, build_dispatcher, make_bot, register_commands
from bot.runtime.journal import Entry, Journal, JournalError, lane_of
from bot.runtime.pump import UpdatePump
from bot.runtime.storage import hashed_id
from bot.services.participants import Keys
from bot.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class HashingKeyBuilder(DefaultKeyBuilder):
    """Redis keys (locks included) with keyed hashes instead of chat and user ids."""

    def __init__(self, secret: bytes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secret = secret

    def build(self, key: StorageKey, part: Any = None) -> str:
        hashed = StorageKey(bot_id=key.bot_id, chat_id=hashed_id(self.secret, key.chat_id),
                            user_id=hashed_id(self.secret, key.user_id), thread_id=key.thread_id,
                            destiny=key.destiny)
        return super().build(hashed, part) if part is not None else super().build(hashed)


@dataclass
class Runtime:
    """Everything a running bot holds; built by `Runtime.create`, closed by `close`."""

    settings: Settings
    db: Database
    keys: Keys
    dp: Dispatcher
    bot: Bot
    journal: Journal
    pump: UpdatePump
    redis: Any = None

    @classmethod
    async def create(cls, settings: Settings, *, journal_path: str | None = None) -> Runtime:
        token = settings.require_token()
        p_key, c_key = settings.secret_keys()
        keys = Keys(p_key, c_key)
        db = Database(settings.database_url)
        await db.upgrade()
        inner: BaseStorage | None = None
        isolation = None
        redis = None
        if settings.redis_url:
            from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
            inner = RedisStorage(redis, key_builder=DefaultKeyBuilder(with_destiny=True))
            isolation = RedisEventIsolation(redis, key_builder=HashingKeyBuilder(p_key, with_destiny=True))
        dp = build_dispatcher(db, keys, inner_storage=inner, events_isolation=isolation,
                              config=BotConfig(admin_ids=settings.admin_ids, bot_username=settings.bot_username,
                                               store_voice_audio=settings.store_voice_audio))
        bot = make_bot(token, settings.telegram_api_url, settings.telegram_timeout)
        journal = Journal(journal_path or settings.journal_file(), keys.cipher)
        pump = UpdatePump(journal, dp, bot, concurrency=settings.concurrency)
        dp["runtime_settings"] = settings
        return cls(settings, db, keys, dp, bot, journal, pump, redis)

    async def prepare_bot(self) -> None:
        """setMyCommands and the bot's username (for invite links); a failure here is not fatal."""
        try:
            me = await self.bot.get_me()
            self.dp["bot_username"] = me.username
            await register_commands(self.bot)
        except Exception as exc:  # noqa: BLE001 - Telegram may be unreachable for a moment
            log.warning("could not register the bot's commands yet: %s", exc.__class__.__name__)

    async def close(self) -> None:
        self.pump.stop()
        with suppress(Exception):
            await self.bot.session.close()
        with suppress(Exception):
            await self.dp.storage.close()
        with suppress(Exception):
            await self.db.dispose()
        if self.redis is not None:
            with suppress(Exception):
                await self.redis.aclose()
        self.journal.close()


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def poll(runtime: Runtime, stop: asyncio.Event | None = None, timeout: int = 25,
               signals: bool = True) -> None:
    """Long polling: each batch is journalled before the next getUpdates confirms it."""
    stop = stop or asyncio.Event()
    if signals:
        _install_signal_handlers(stop)
    await runtime.prepare_bot()
    pump_task = asyncio.create_task(runtime.pump.run(), name="coassess-pump")
    clock = start_scheduler(runtime, stop)
    base = runtime.settings.telegram_api_url.rstrip("/")
    url = f"{base}/bot{runtime.settings.require_token()}/getUpdates"
    last = runtime.journal.last_update_id()
    offset = last + 1 if last is not None else None
    backoff = 1.0
    log.info("polling for updates (journal %s)", runtime.journal.path)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout + 15)) as http:
        while not stop.is_set():
            body: dict[str, Any] = {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES}
            if offset is not None:
                body["offset"] = offset
            poll_task = asyncio.create_task(http.post(url, json=body))
            stop_task = asyncio.create_task(stop.wait())
            finished, _ = await asyncio.wait({poll_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if stop_task in finished:
                poll_task.cancel()
                break
            stop_task.cancel()
            try:
                resp = poll_task.result()
                data = await resp.json(content_type=None)
            except Exception as exc:  # noqa: BLE001 - network trouble: wait and try again
                log.warning("getUpdates failed (%s); retrying in %.0f s", exc.__class__.__name__, backoff)
                await _sleep(stop, backoff)
                backoff = min(backoff * 2, 30)
                continue
            if not data.get("ok"):
                code = data.get("error_code")
                wait = (data.get("parameters") or {}).get("retry_after") or backoff
                if code == 409:
                    log.error("Telegram says another bot instance is polling or a webhook is set: %s",
                              data.get("description"))
                else:
                    log.warning("getUpdates answered %s: %s", code, data.get("description"))
                await _sleep(stop, float(wait))
                backoff = min(backoff * 2, 30)
                continue
            backoff = 1.0
            updates = data.get("result") or []
            try:
                for update in updates:
                    if await asyncio.to_thread(runtime.journal.append, update):
                        runtime.pump.submit(entry_of(update))
                    offset = int(update["update_id"]) + 1
            except JournalError as exc:
                # not acknowledged: the next getUpdates asks again from the first one not journalled
                log.error("%s", exc)
                await _sleep(stop, 5)
                continue
    log.info("stopping: finishing the update in hand")
    runtime.pump.stop()
    await pump_task
    await _finish(clock)


def start_scheduler(runtime: Runtime, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """Campaigns open and close on time, and due reminders go out, while the bot runs."""
    interval = runtime.settings.scheduler_interval
    if interval <= 0:
        return None
    from bot.services.scheduler import scheduler_loop

    return asyncio.create_task(scheduler_loop(runtime.db, runtime.keys, runtime.bot, stop, interval=interval,
                                              settings=runtime.settings), name="coassess-scheduler")


async def _finish(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        with suppress(Exception):
            await asyncio.wait_for(task, 30)


def entry_of(update: dict[str, Any]) -> Entry:
    return Entry(int(update["update_id"]), lane_of(update), update, 0)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def webhook_app(runtime: Runtime, path: str, secret: str) -> web.Application:
    """The aiohttp application that takes Telegram's webhook calls."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        try:
            update = await request.json()
            int(update["update_id"])
        except Exception:  # noqa: BLE001
            return web.json_response({"ok": False, "description": "not an update"}, status=400)
        try:
            fresh = await asyncio.to_thread(runtime.journal.append, update)
        except JournalError as exc:
            log.error("%s", exc)
            return web.json_response({"ok": False, "description": "journal unavailable"}, status=503)
        if fresh:
            runtime.pump.submit(entry_of(update))
        return web.json_response({"ok": True})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "journal": runtime.journal.counts()})

    app = web.Application()
    app.router.add_post(path, receive)
    app.router.add_get("/healthz", health)
    return app


async def serve_webhook(runtime: Runtime, host: str, port: int, path: str, secret: str,
                        public_url: str | None = None, stop: asyncio.Event | None = None,
                        signals: bool = True) -> None:
    stop = stop or asyncio.Event()
    if signals:
        _install_signal_handlers(stop)
    await runtime.prepare_bot()
    app = webhook_app(runtime, path, secret)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("webhook listening on http://%s:%s%s", host, port, path)
    if public_url:
        await runtime.bot.set_webhook(public_url.rstrip("/") + path, secret_token=secret,
                                      allowed_updates=ALLOWED_UPDATES)
        log.info("webhook registered with Telegram")
    pump_task = asyncio.create_task(runtime.pump.run(), name="coassess-pump")
    clock = start_scheduler(runtime, stop)
    await stop.wait()
    log.info("stopping: no new updates; finishing the update in hand")
    await runner.cleanup()
    runtime.pump.stop()
    await pump_task
    await _finish(clock)
