"""The bot process: long polling or a webhook server, both journalling before acknowledging."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import signal
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiogram import Bot, Dispatcher
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
from aiogram.types import BotCommand, BotCommandScopeDefault

from bot.db import Database
from bot.runtime.app import BotConfig, build_dispatcher, make_bot
from bot.runtime.failures import describe, is_temporary
from bot.runtime.journal import Entry, Journal, JournalError, lane_of
from bot.runtime.locks import ChatLocks
from bot.runtime.pump import UpdatePump
from bot.runtime.storage import RedisUpdateStorage
from bot.services.participants import Keys
from bot.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

# Every update type a handler exists for ("my_chat_member": someone blocked the bot). Telegram's
# default would add edited messages, channel posts and more that nobody here reads.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TOKEN_REFUSED = ("Telegram refused the bot token ({what}). Check COASSESS_BOT_TOKEN: it is the whole "
                 "token @BotFather gave (digits, a colon, then letters); a token revoked with /revoke "
                 "stops working at once.")


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
    menus: asyncio.Task[int] | None = None
    upgrader: asyncio.Task[None] | None = None

    @classmethod
    async def create(cls, settings: Settings, *, journal_path: str | None = None) -> Runtime:
        token = settings.require_token()
        p_key, c_key = settings.secret_keys()
        keys = Keys(p_key, c_key)
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            waiting: BaseException | None = None
        except Exception as exc:
            if not is_temporary(exc):
                raise
            # the bot still starts: updates are journalled and acknowledged, taps answered, and
            # everything is processed once the database is back (see `_upgrade_when_back`)
            waiting = exc
            log.warning("the database is not reachable (%s); starting anyway: updates are kept in the "
                        "journal and processed once it is back", describe(exc))
        inner: BaseStorage | None = None
        redis = None
        locks = None
        if settings.redis_url:
            from aiogram.fsm.storage.redis import RedisStorage
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
            # keys hold keyed hashes of chat and user ids (PseudonymousStorage); writes wait for the
            # update's database commit (RedisUpdateStorage)
            inner = RedisUpdateStorage(RedisStorage(redis, key_builder=DefaultKeyBuilder(with_destiny=True)))
            # One chat at a time across workers is the pump's per-chat lock, taken before anything
            # reads the chat's state and held until its work is committed. aiogram-dialog's own
            # isolation (its default, in-process) is left to order its events inside the update.
            locks = ChatLocks(redis, p_key, url=settings.redis_url)
        dp = build_dispatcher(db, keys, inner_storage=inner,
                              config=BotConfig(admin_ids=settings.admin_ids, bot_username=settings.bot_username,
                                               store_voice_audio=settings.store_voice_audio))
        bot = make_bot(token, settings.telegram_api_url, settings.telegram_timeout)
        journal = Journal(journal_path or settings.journal_file(), keys.cipher)

        async def probe() -> None:
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            if redis is not None:
                await redis.ping()

        pump = UpdatePump(journal, dp, bot, concurrency=settings.concurrency, locks=locks, probe=probe)
        dp["runtime_settings"] = settings
        runtime = cls(settings, db, keys, dp, bot, journal, pump, redis)
        if waiting is not None:
            pump.ready.clear()
            pump.waiting_cause = waiting
            runtime.upgrader = asyncio.create_task(runtime._upgrade_when_back(), name="coassess-upgrade")
        return runtime

    async def _upgrade_when_back(self) -> None:
        """Started while the database was away: upgrade it as soon as it answers, then process."""
        delay = 1.0
        started = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(delay)
            try:
                await self.db.upgrade()
            except Exception as exc:  # noqa: BLE001 - still away (or a real error: said once it answers)
                self.pump.waiting_cause = exc
                if not is_temporary(exc):
                    log.error("the database answers but cannot be upgraded: %s", describe(exc))
                delay = min(delay * 1.5, 10.0)
                continue
            break
        self.pump.ready.set()
        self.pump.waiting_cause = None
        log.warning("the database is reachable after %.0f s and up to date; processing the %d waiting updates",
                    asyncio.get_running_loop().time() - started, len(self.pump._queued))
        self.pump.wake()

    async def prepare_bot(self) -> None:
        """getMe (the token must be accepted), then the command menus; a refused menu is not fatal.

        Raises:
            ConfigurationError: Telegram answered 401 or 404 (a wrong or malformed token): retrying
                would only repeat it.
        """
        try:
            me = await self.bot.get_me()
        except (TelegramUnauthorizedError, TelegramNotFound) as exc:
            raise ConfigurationError(TOKEN_REFUSED.format(what=_describe(exc))) from None
        except Exception as exc:  # noqa: BLE001 - Telegram may be unreachable for a moment
            log.warning("getMe failed (%s); starting anyway, the command menu is not registered",
                        _describe(exc))
            return
        self.dp["bot_username"] = me.username
        with suppress(Exception):  # remembered for `coassess campaign show`; never fatal
            from bot.services.invites import remember_username

            await remember_username(self.db, self.bot.token, me.username)
        # in the background: with flood waits, fourteen menus could hold up the first update
        self.menus = asyncio.create_task(register_command_menus(self.bot), name="coassess-menus")

    async def close(self) -> None:
        self.pump.stop()
        if self.upgrader is not None and not self.upgrader.done():
            self.upgrader.cancel()
            with suppress(BaseException):
                await self.upgrader
        if self.menus is not None and not self.menus.done():
            self.menus.cancel()
            with suppress(BaseException):
                await self.menus
        # each step bounded: a connection left half-open by an outage must not hold up the exit
        with suppress(Exception):
            await asyncio.wait_for(self.bot.session.close(), 5)
        with suppress(Exception):
            await asyncio.wait_for(self.dp.storage.close(), 5)
        await _dispose_quietly(self.db)
        if self.pump.locks is not None:
            self.pump.locks.close()
        if self.redis is not None:
            with suppress(Exception):
                await asyncio.wait_for(self.redis.aclose(), 5)
        self.journal.close()


class _CancelledClose(logging.Filter):
    """At exit, a pooled connection the database stopped answering on is dropped, not reported."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


async def _dispose_quietly(db: Database) -> None:
    pool_log = logging.getLogger("sqlalchemy.pool.impl.AsyncAdaptedQueuePool")
    quiet = _CancelledClose()
    pool_log.addFilter(quiet)
    try:
        await asyncio.wait_for(db.dispose(), 5)
    except Exception as exc:  # noqa: BLE001 - exiting anyway: the sockets close with the process
        log.info("database connections dropped at exit (%s)", exc.__class__.__name__)
    finally:
        pool_log.removeFilter(quiet)


def _describe(exc: BaseException) -> str:
    """A short, id-free description of a failed Bot API call for the log."""
    if isinstance(exc, TelegramAPIError):
        return f"{exc.__class__.__name__}: {exc.message}"
    return exc.__class__.__name__


async def register_command_menus(bot: Bot) -> int:
    """setMyCommands once per language that has a catalog (English as the default list).

    Telegram matches menus by two-letter ISO 639-1 codes, so only those are sent; each language is
    registered on its own, so one refused list (a too-long translation: 400) costs only that menu.
    Returns how many lists Telegram accepted.
    """
    from dialogs.commands import command_menu
    from dialogs.i18n import tr
    from locales import available

    accepted = 0
    for lang in available():
        code = None if lang == "en" else lang
        if code is not None and not re.fullmatch(r"[a-z]{2}", code):
            continue
        commands = [BotCommand(command=c, description=d) for c, d in command_menu(tr(lang))]
        try:
            await bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=code)
            accepted += 1
        except Exception as exc:  # noqa: BLE001 - a menu is a convenience, not a reason to stop
            log.warning("setMyCommands for %s failed (%s)", lang, _describe(exc))
    return accepted


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def poll(runtime: Runtime, stop: asyncio.Event | None = None, timeout: int = 25,
               signals: bool = True) -> None:
    """Long polling: each batch is journalled before the next getUpdates confirms it.

    Raises:
        ConfigurationError: Telegram refuses the token (401, or 404 for a malformed one).
    """
    stop = stop or asyncio.Event()
    if signals:
        _install_signal_handlers(stop)
    await runtime.prepare_bot()
    await _leave_webhook(runtime.bot)
    await asyncio.to_thread(runtime.journal.prune)
    pump_task = asyncio.create_task(runtime.pump.run(), name="coassess-pump")
    clock = start_scheduler(runtime, stop)
    base = runtime.settings.telegram_api_url.rstrip("/")
    url = f"{base}/bot{runtime.settings.require_token()}/getUpdates"
    # No offset at first: Telegram hands out every unconfirmed update, and the journal recognises
    # those it already holds. (An offset from the journal's highest id would confirm, unseen, the
    # updates Telegram numbers lower: after a week without updates the next id is chosen at random.)
    offset: int | None = None
    backoff = 1.0
    refused: ConfigurationError | None = None
    log.info("polling for updates (journal %s)", runtime.journal.path)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout + 15)) as http:
        while not stop.is_set():
            body: dict[str, Any] = {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES}
            if offset is not None:
                body["offset"] = offset
            poll_task = asyncio.create_task(_get_updates(http, url, body))
            stop_task = asyncio.create_task(stop.wait())
            finished, _ = await asyncio.wait({poll_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if stop_task in finished:
                poll_task.cancel()
                break
            stop_task.cancel()
            try:
                status, data = poll_task.result()
            except Exception as exc:  # noqa: BLE001 - network trouble: wait and try again
                log.warning("getUpdates failed (%s); retrying in %.0f s", exc.__class__.__name__, backoff)
                await _sleep(stop, backoff)
                backoff = min(backoff * 2, 30)
                continue
            if not isinstance(data, dict) or not data.get("ok"):
                data = data if isinstance(data, dict) else {}
                code = data.get("error_code") or status
                description = data.get("description") or f"HTTP {status}"
                if code in (401, 404):
                    refused = ConfigurationError(TOKEN_REFUSED.format(what=f"{code} {description}"))
                    log.error("%s", refused)
                    break
                retry_after = (data.get("parameters") or {}).get("retry_after")
                wait = float(retry_after) if isinstance(retry_after, (int, float)) and retry_after > 0 \
                    else backoff
                if code == 409:
                    log.error("getUpdates refused (409 %s): another process polls with this token, or a "
                              "webhook was set; retrying in %.0f s", description, wait)
                else:
                    log.warning("getUpdates answered %s: %s; retrying in %.0f s", code, description, wait)
                await _sleep(stop, wait)
                backoff = min(backoff * 2, 30)
                continue
            backoff = 1.0
            updates = data.get("result") or []
            if not updates:
                # everything below the offset is confirmed now; asking without one also returns an
                # update numbered lower than the last (ids restart at random after a quiet week)
                offset = None
                continue
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
    if refused is not None:
        raise refused


async def _get_updates(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(url, json=body) as resp:
        try:
            return resp.status, await resp.json(content_type=None)
        except ValueError:  # not JSON (a proxy's error page): judged by the status alone
            if resp.status == 200:
                raise
            return resp.status, None


async def _leave_webhook(bot: Bot) -> None:
    """getUpdates does not work while a webhook is set (409): remove it, keeping waiting updates."""
    with suppress(Exception):
        info = await bot.get_webhook_info()
        if info.url:
            log.warning("a webhook was set for this bot (%s); removing it to poll: webhook workers "
                        "with this token get no more updates", urlsplit(info.url).hostname)
    try:
        await bot.delete_webhook(drop_pending_updates=False)
    except (TelegramUnauthorizedError, TelegramNotFound) as exc:
        raise ConfigurationError(TOKEN_REFUSED.format(what=_describe(exc))) from None
    except Exception as exc:  # noqa: BLE001 - getUpdates will say what is wrong
        log.warning("deleteWebhook failed (%s); polling anyway", _describe(exc))


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


def health_report(runtime: Runtime) -> dict[str, Any]:
    """What /healthz says: the journal, updates set aside, and what the bot is waiting for."""
    counts = runtime.journal.counts()
    pump = runtime.pump
    waiting_for = "the database" if not pump.ready.is_set() else pump.outage.part
    return {"ok": True, "journal": counts, "set_aside": counts.get("aside", 0), "waiting_for": waiting_for,
            "waiting_updates": counts.get("pending", 0), "outages": pump.outage.count,
            "taps_told_one_moment": pump.held_callbacks}


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
        return web.json_response(health_report(runtime))

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
    await asyncio.to_thread(runtime.journal.prune)
    if public_url:
        try:
            # pending updates are kept (no drop_pending_updates): they come to the new address
            await runtime.bot.set_webhook(public_url.rstrip("/") + path, secret_token=secret,
                                          allowed_updates=ALLOWED_UPDATES)
            log.info("webhook registered with Telegram")
        except TelegramAPIError as exc:
            if isinstance(exc, (TelegramUnauthorizedError, TelegramNotFound)):
                error = ConfigurationError(TOKEN_REFUSED.format(what=_describe(exc)))
            elif isinstance(exc, TelegramServerError | TelegramRetryAfter):
                error = None
            else:
                error = ConfigurationError(
                    f"Telegram refused the webhook address ({_describe(exc)}). It must be a public "
                    "https:// address on port 443, 80, 88 or 8443 that reaches this server.")
            if error is not None:
                await runner.cleanup()
                raise error from None
            log.error("could not register the webhook yet (%s); serving anyway: Telegram keeps using "
                      "the address registered before, if any", _describe(exc))
        except Exception as exc:  # noqa: BLE001 - network trouble: serve, a restart registers again
            log.error("could not register the webhook yet (%s); serving anyway: Telegram keeps using "
                      "the address registered before, if any", _describe(exc))
    pump_task = asyncio.create_task(runtime.pump.run(), name="coassess-pump")
    clock = start_scheduler(runtime, stop)
    await stop.wait()
    log.info("stopping: no new updates; finishing the update in hand")
    await runner.cleanup()
    runtime.pump.stop()
    await pump_task
    await _finish(clock)
