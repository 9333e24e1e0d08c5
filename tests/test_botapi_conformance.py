"""The real bot against an independent Bot API emulator written from Telegram's documentation.

`DocTelegram` below is deliberately *not* built from `bot.sandbox`: it follows
https://core.telegram.org/bots/api only (response shape `{"ok": false, "error_code", "description",
"parameters"}`, getUpdates' offset rule, 409 beside a webhook, the documented limits of
setMyCommands, callback_data and message text, HTML's escaping rules), so where our sandbox shares a
misreading with the bot, these tests do not.

Everything runs on 127.0.0.1 with bounded waits; no timing is asserted.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from pydantic import SecretStr
from sqlalchemy import select

from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import load_and_open
from bot.db import Database
from bot.models import Participant
from bot.runtime.retry import RetryRequests
from bot.runtime.runner import SECRET_HEADER, Runtime, poll, serve_webhook, webhook_app
from bot.settings import ConfigurationError, Settings
from dialogs.context import forget_cached_campaigns

TOKEN = "424242:AAconformance_token-0123456789abcdef"
BOT_ID = 424242
PSEUDONYM_KEY = "conformance-pseudonym-key-0123456789abc"
CONTACT_KEY = "conformance-contact-key-0123456789abcdef"
ALICE = 7_000_000_001
BOB = 7_000_000_002

# --- the emulator, from https://core.telegram.org/bots/api ----------------------------------------

HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
             "tg-emoji", "code", "pre", "blockquote", "tg-time"}
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message")
TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def visible_html(text: str) -> str:
    """The text a user sees, or ApiError 400 "can't parse entities" (Formatting options, HTML style)."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = re.match(r"<(/?)([a-zA-Z-]+)((?:\s[^<>]*)?)>", text[i:])
            if not m or m.group(2).lower() not in HTML_TAGS:
                raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag at byte offset "
                               f"{len(text[:i].encode())}")
            name = m.group(2).lower()
            if m.group(1):
                if not stack or stack.pop() != name:
                    raise ApiError(400, f"Bad Request: can't parse entities: Unmatched end tag \"{name}\"")
            else:
                stack.append(name)
            i += m.end()
        elif ch == "&":
            m = re.match(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);", text[i:])
            if not m:
                raise ApiError(400, "Bad Request: can't parse entities: Character '&' is not an HTML entity")
            out.append(html.unescape(m.group(0)))
            i += m.end()
        elif ch == ">":
            raise ApiError(400, "Bad Request: can't parse entities: Unexpected character '>'")
        else:
            out.append(ch)
            i += 1
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: Can't find end tag corresponding to start "
                       f"tag \"{stack[-1]}\"")
    return "".join(out).strip()


def check_inline_markup(markup: Any) -> None:
    """InlineKeyboardMarkup: 1-64 byte callback_data, non-empty texts, exactly one action per button."""
    if markup is None:
        return
    if isinstance(markup, str):
        markup = json.loads(markup)
    if "inline_keyboard" not in markup:
        return  # reply keyboards etc. are not the subject here
    for row in markup["inline_keyboard"]:
        for button in row:
            if not button.get("text"):
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            actions = [k for k in button if k != "text" and k not in ("style", "icon_custom_emoji_id")]
            if len(actions) != 1:
                raise ApiError(400, "Bad Request: can't parse inline keyboard button: exactly one of the "
                               "optional fields must be used")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    error: int | None = None


@dataclass
class DocTelegram:
    """A small Bot API server. Script errors with `fail()`; feed updates with `push()`."""

    poll_cap: float = 0.3  # a long poll waits at most this long here (the bot asks for more)
    calls: list[Call] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    chats: set[int] = field(default_factory=set)        # private chats whose user wrote to the bot
    blocked: set[int] = field(default_factory=set)
    deactivated: set[int] = field(default_factory=set)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    open_queries: set[str] = field(default_factory=set)
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    scripted: list[tuple[str, int, str, dict[str, Any] | None]] = field(default_factory=list)
    next_update_id: int = 1
    next_message_id: int = 1000
    url: str = ""

    def __post_init__(self) -> None:
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # control
    def fail(self, method: str, code: int, description: str, parameters: dict[str, Any] | None = None,
             times: int = 1) -> None:
        self.scripted += [(method.lower(), code, description, parameters)] * times

    def push(self, kind: str, body: dict[str, Any], update_id: int | None = None) -> int:
        uid = self.next_update_id if update_id is None else update_id
        self.next_update_id = uid + 1
        self.pending.append({"update_id": uid, kind: body})
        self._arrived.set()
        return uid

    def text(self, user: int, text: str, *, chat: dict[str, Any] | None = None, lang: str | None = "en",
             **extra: Any) -> int:
        frm: dict[str, Any] = {"id": user, "is_bot": False, "first_name": "Test"}
        if lang is not None:
            frm["language_code"] = lang
        chat = chat or {"id": user, "type": "private", "first_name": "Test"}
        if chat["type"] == "private":
            self.chats.add(user)
        msg: dict[str, Any] = {"message_id": self._mid(), "date": int(time.time()), "chat": chat, "from": frm,
                               **extra}
        if text:
            msg["text"] = text
            if text.startswith("/"):
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self.push("message", msg)

    def tap(self, user: int, message_id: int | None, data: str, *, lang: str = "en") -> tuple[int, str]:
        qid = f"q{self.next_update_id}x{user % 1000}"
        self.open_queries.add(qid)
        body: dict[str, Any] = {"id": qid, "from": {"id": user, "is_bot": False, "first_name": "Test",
                                                    "language_code": lang},
                                "chat_instance": "ci-1", "data": data}
        if message_id is not None:
            body["message"] = self.messages[(user, message_id)]
        else:
            body["inline_message_id"] = "AAAAinline"
        return self.push("callback_query", body), qid

    def _mid(self) -> int:
        self.next_message_id += 1
        return self.next_message_id

    def calls_of(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()
                and (ok is None or (c.error is None) == ok)]

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.error is None and c.method.lower() in (
            "sendmessage", "editmessagetext", "sendphoto") and str(c.params.get("chat_id")) == str(chat_id)]

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for (chat, _), m in sorted(self.messages.items()) if chat == chat_id and m["from"]["is_bot"]]

    # server
    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._arrived.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in ("reply_markup", "allowed_updates", "commands", "scope"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params)
        self.calls.append(call)
        try:
            if request.match_info["token"] != TOKEN:
                raise ApiError(401, "Unauthorized")
            for i, (name, code, description, parameters) in enumerate(self.scripted):
                if name == method.lower():
                    del self.scripted[i]
                    raise ApiError(code, description, parameters)
            handler = getattr(self, "m_" + method.lower(), None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
            return web.json_response({"ok": True, "result": result})
        except ApiError as err:
            call.error = err.code
            body: dict[str, Any] = {"ok": False, "error_code": err.code, "description": err.description}
            if err.parameters:
                body["parameters"] = err.parameters
            return web.json_response(body, status=err.code)

    # methods
    def _chat(self, params: dict[str, Any]) -> int:
        try:
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _text(self, params: dict[str, Any]) -> str:
        raw = str(params.get("text") or "")
        shown = visible_html(raw) if params.get("parse_mode") == "HTML" else raw.strip()
        if not shown:
            raise ApiError(400, "Bad Request: message text is empty")
        if len(shown) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return shown

    def m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Doc Bot", "username": "doc_conformance_bot",
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use "
                           "deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        if offset:  # "confirmed as soon as getUpdates is called with an offset higher than its update_id"
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        timeout = min(float(params.get("timeout") or 0), self.poll_cap)
        if not self.pending and timeout > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                pass
        return self.pending[:limit]

    def m_deletewebhook(self, params: dict[str, Any]) -> bool:
        if str(params.get("drop_pending_updates")).lower() == "true":
            self.pending.clear()
        self.webhook = None
        return True

    def m_setwebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, **params} if url else None
        return True

    def m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self.pending)}

    def m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands") or []
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c.get("command", "")):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(c.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: command description is invalid")
        lang = str(params.get("language_code") or "")
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise ApiError(400, "Bad Request: invalid language code specified")
        scope = params.get("scope") or {"type": "default"}
        self.commands[(scope["type"], lang)] = commands
        return True

    def _store(self, chat_id: int, params: dict[str, Any], text: str) -> dict[str, Any]:
        msg = {"message_id": self._mid(), "date": int(time.time()),
               "chat": {"id": chat_id, "type": "private", "first_name": "Test"},
               "from": {"id": BOT_ID, "is_bot": True, "first_name": "Doc Bot"}, "text": text}
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        self.messages[(chat_id, msg["message_id"])] = msg
        return msg

    def m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = self._text(params)
        check_inline_markup(params.get("reply_markup"))
        return self._store(self._chat(params), params, text)

    def m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        text = self._text(params)
        check_inline_markup(params.get("reply_markup"))
        chat_id = self._chat(params)
        msg = self.messages.get((chat_id, int(params.get("message_id") or 0)))
        if msg is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not msg["from"]["is_bot"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        markup = params.get("reply_markup")
        if msg.get("text") == text and msg.get("reply_markup") == markup:
            raise ApiError(400, NOT_MODIFIED)
        msg["text"] = text
        msg.pop("reply_markup", None)
        if markup:
            msg["reply_markup"] = markup
        msg["edit_date"] = int(time.time())
        return msg

    def m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        check_inline_markup(params.get("reply_markup"))
        chat_id = self._chat(params)
        msg = self.messages.get((chat_id, int(params.get("message_id") or 0)))
        if msg is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if msg.get("reply_markup") == params.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        msg.pop("reply_markup", None)
        if params.get("reply_markup"):
            msg["reply_markup"] = params["reply_markup"]
        return msg

    def m_deletemessage(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat(params)
        if self.messages.pop((chat_id, int(params.get("message_id") or 0)), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        qid = str(params.get("callback_query_id"))
        if qid not in self.open_queries:
            raise ApiError(400, TOO_OLD)
        self.open_queries.discard(qid)
        return True

    def m_sendchataction(self, params: dict[str, Any]) -> bool:
        self._chat(params)
        return True


# --- running the real bot against it ------------------------------------------------------------


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll `predicate` until it is truthy (bounded); returns its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def make_settings(tmp: Path, api_url: str, token: str = TOKEN) -> Settings:
    return Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp}/coassess.db",
                    bot_token=SecretStr(token), telegram_api_url=api_url,
                    pseudonym_key=SecretStr(PSEUDONYM_KEY), contact_key=SecretStr(CONTACT_KEY),
                    journal_path=str(tmp / "journal.db"), scheduler_interval=0)


@dataclass
class Running:
    tg: DocTelegram
    runtime: Runtime
    stop: asyncio.Event
    task: asyncio.Task[None]
    db_url: str
    checked: bool = False

    async def outcome(self) -> BaseException | None:
        """Wait (bounded) for the poller to end by itself; its exception, or None."""
        await asyncio.wait({self.task}, timeout=20)
        assert self.task.done(), "the poller kept running"
        self.checked = True
        return self.task.exception()

    def done(self) -> int:
        return self.runtime.journal.counts().get("done", 0)

    async def processed(self, update_id: int) -> None:
        """Wait until the journal has processed `update_id` (and everything before it was taken)."""
        def finished() -> bool:
            with self.runtime.journal._lock:
                row = self.runtime.journal._db.execute(
                    "SELECT state FROM journal WHERE update_id = ?", (update_id,)).fetchone()
            return bool(row and row[0] == "done")
        await wait_until(finished)

    async def stopped(self, user_id: int) -> bool:
        async with Database(self.db_url).session() as s:
            p = await s.scalar(select(Participant).where(
                Participant.pseudonym == self.runtime.keys.pseudonym(user_id)))
            return bool(p and p.stopped)


@asynccontextmanager
async def running_bot(tmp: Path, tg: DocTelegram | None = None, spec: CampaignSpec | None = None,
                      token: str = TOKEN) -> AsyncIterator[Running]:
    tg = tg or DocTelegram()
    if not tg.url:
        await tg.start()
    settings = make_settings(tmp, tg.url, token)
    if spec is not None:
        await load_and_open(settings.database_url, spec)
        forget_cached_campaigns()
    runtime = await Runtime.create(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(poll(runtime, stop, timeout=5, signals=False))
    running = Running(tg, runtime, stop, task, settings.database_url)
    try:
        yield running
    finally:
        stop.set()
        try:
            await asyncio.wait({task}, timeout=30)
            assert task.done(), "the poller did not stop"
            error = None if task.cancelled() else task.exception()
            if error is not None and not running.checked:  # expected ones are read with `outcome()`
                raise error
        finally:
            await runtime.close()
            await tg.stop()
            forget_cached_campaigns()


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.ERROR or r.exc_info]


# --- start-up -----------------------------------------------------------------------------------


async def test_polling_start_up_follows_the_documented_order(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """getMe, deleteWebhook (getUpdates beside a webhook is a 409), commands per language, then polls."""
    tg = DocTelegram()
    await tg.start()
    tg.webhook = {"url": "https://old.example.org/hook"}  # left behind by an earlier webhook run
    async with running_bot(tmp_path, tg) as bot:
        uid = tg.text(ALICE, "/start")
        await bot.processed(uid)
        await wait_until(lambda: tg.sent_to(ALICE))
        await wait_until(lambda: bot.runtime.menus is not None and bot.runtime.menus.done())
    names = [c.method.lower() for c in tg.calls]
    assert names[0] == "getme"
    assert "deletewebhook" in names and names.index("deletewebhook") < names.index("getupdates")
    delete = tg.calls_of("deleteWebhook")[0].params
    assert str(delete.get("drop_pending_updates", "false")).lower() == "false"  # nothing waiting is lost
    assert not tg.calls_of("getUpdates", ok=False), "polled beside a webhook (409)"
    assert "a webhook was set for this bot (old.example.org); removing it" in caplog.text
    allowed = tg.calls_of("getUpdates")[0].params["allowed_updates"]
    assert {"message", "callback_query", "my_chat_member"} <= set(allowed)
    # one list per language Telegram can match (two-letter ISO 639-1), all accepted
    assert not tg.calls_of("setMyCommands", ok=False)
    langs = {lang for (_scope, lang) in tg.commands}
    assert "" in langs and "fr" in langs and "ar" in langs
    for commands in tg.commands.values():
        assert [c["command"] for c in commands][:1] == ["start"]


async def test_a_refused_command_list_does_not_stop_the_bot(tmp_path: Path) -> None:
    """setMyCommands answering 400 (say, a translation too long) costs that language's menu only."""
    tg = DocTelegram()
    await tg.start()
    tg.fail("setMyCommands", 400, "Bad Request: command description is invalid")
    async with running_bot(tmp_path, tg) as bot:
        uid = tg.text(ALICE, "/help")
        await bot.processed(uid)
        await wait_until(lambda: tg.sent_to(ALICE))
        # the other languages are still registered
        await wait_until(lambda: bot.runtime.menus is not None and bot.runtime.menus.done())
        assert bot.runtime.menus.result() == len(tg.commands) >= 10  # type: ignore[union-attr]
    assert len(tg.calls_of("setMyCommands", ok=False)) == 1


# --- getUpdates ---------------------------------------------------------------------------------


async def test_polling_rides_out_conflicts_server_errors_and_flood_waits(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """409 (another poller), 502, 500 and 429 with retry_after while polling: logged, waited, nothing lost."""
    caplog.set_level(logging.INFO)
    tg = DocTelegram()
    await tg.start()
    tg.fail("getUpdates", 409, "Conflict: terminated by other getUpdates request; make sure that only one bot "
            "instance is running")
    tg.fail("getUpdates", 502, "Bad Gateway")
    tg.fail("getUpdates", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
    first = tg.text(ALICE, "/help")
    async with running_bot(tmp_path, tg) as bot:
        await bot.processed(first)
        second = tg.text(ALICE, "/stop")
        await bot.processed(second)
        assert bot.task.done() is False  # still polling
    assert len(tg.sent_to(ALICE)) == 2  # each update answered once
    refused = [c for c in tg.calls_of("getUpdates") if c.error]
    assert [c.error for c in refused] == [409, 502, 429]
    text = caplog.text
    assert "another process polls with this token" in text
    assert "Traceback" not in text


async def test_telegram_unreachable_for_a_while(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Connection refused while polling: logged, retried with backoff, and the updates that waited
    on Telegram's side arrive once it is back."""
    caplog.set_level(logging.INFO)
    tg = DocTelegram()
    await tg.start()
    async with running_bot(tmp_path, tg) as bot:
        await bot.processed(tg.text(ALICE, "/help"))
        port = int(tg.url.rsplit(":", 1)[1])
        await tg.stop()  # Telegram unreachable
        await wait_until(lambda: "getUpdates failed (ClientConnectorError" in caplog.text)
        await tg.start(port)  # back, with an update that arrived meanwhile
        uid = tg.text(ALICE, "/stop")
        await bot.processed(uid)
    assert len(tg.sent_to(ALICE)) == 2
    assert "Traceback" not in caplog.text


async def test_a_refused_token_stops_with_a_clear_message_instead_of_looping(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    async with running_bot(tmp_path, tg, token="424242:AAwrong_token-0000000000000000000") as bot:
        error = await bot.outcome()
    assert isinstance(error, ConfigurationError) and "refused the bot token" in str(error)
    assert len(tg.calls) <= 3  # getMe (and no endless getUpdates)


async def test_a_token_revoked_while_polling_stops_the_poller(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    tg.poll_cap = 0.05
    async with running_bot(tmp_path, tg) as bot:
        await wait_until(lambda: tg.calls_of("getUpdates"))
        tg.fail("getUpdates", 401, "Unauthorized", times=50)
        error = await bot.outcome()
    assert isinstance(error, ConfigurationError) and "401" in str(error)
    assert len(tg.calls_of("getUpdates", ok=False)) == 1


async def test_offsets_confirm_only_what_was_journalled_and_ids_may_restart_lower(tmp_path: Path) -> None:
    """Very large ids, and an id lower than the last (Telegram picks one at random after a quiet week)."""
    tg = DocTelegram()
    await tg.start()
    big = tg.text(ALICE, "/help", update_id=2_147_483_600)
    async with running_bot(tmp_path, tg) as bot:
        await bot.processed(big)
        await wait_until(lambda: any(c.params.get("offset") == big + 1 for c in tg.calls_of("getUpdates")))
        await wait_until(lambda: not tg.pending)  # confirmed by the offset
        low = tg.text(ALICE, "/stop", update_id=17)
        await bot.processed(low)
    assert len(tg.sent_to(ALICE)) == 2


async def test_a_restart_gets_unconfirmed_updates_again_without_doubling_them(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    first = tg.text(ALICE, "/help")
    async with running_bot(tmp_path, tg) as bot:
        await bot.processed(first)
        bot.stop.set()  # stops before the next getUpdates confirms `first`
    tg2 = DocTelegram()
    tg2.pending = [u for u in tg.pending if u["update_id"] == first]  # Telegram would redeliver it
    tg2.chats = set(tg.chats)
    tg2.next_update_id = first + 1
    await tg2.start()
    async with running_bot(tmp_path, tg2) as bot:
        second = tg2.text(ALICE, "/stop")
        await bot.processed(second)
    assert len(tg.sent_to(ALICE)) == 1 and len(tg2.sent_to(ALICE)) == 1


# --- errors in a conversation -------------------------------------------------------------------


def last_bot_message(tg: DocTelegram, chat_id: int) -> dict[str, Any]:
    return tg.bot_messages(chat_id)[-1]


def buttons(msg: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for row in (msg.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row if "callback_data" in b]


SORRY = "Sorry, something went wrong"


async def agree(tg: DocTelegram, bot: Running, user: int) -> None:
    """/start and "Yes, I agree": from then on the person is a participant."""
    await bot.processed(tg.text(user, "/start"))
    screen = last_bot_message(tg, user)
    tap, _ = tg.tap(user, screen["message_id"], next(d for d in buttons(screen) if d.endswith("\x1dy")))
    await bot.processed(tap)


def sorry_sent(tg: DocTelegram, chat_id: int) -> bool:
    return any(SORRY in str(p.get("text")) for p in tg.sent_to(chat_id))


async def test_flood_wait_on_send_is_waited_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tg = DocTelegram()
    await tg.start()
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
    async with running_bot(tmp_path, tg) as bot:
        uid = tg.text(ALICE, "/help")
        await bot.processed(uid)
    assert [c.error for c in tg.calls_of("sendMessage")] == [429, None]
    assert not errors_logged(caplog)


@pytest.mark.parametrize("description", ["Forbidden: bot was blocked by the user",
                                         "Forbidden: user is deactivated"])
async def test_403_marks_the_participant_stopped_quietly(tmp_path: Path, example_spec: CampaignSpec,
                                                         caplog: pytest.LogCaptureFixture,
                                                         description: str) -> None:
    tg = DocTelegram()
    await tg.start()
    async with running_bot(tmp_path, tg, example_spec) as bot:
        await agree(tg, bot, ALICE)  # only someone who agreed is kept, and so can be stopped
        sent = len(tg.sent_to(ALICE))
        tg.fail("sendMessage", 403, description)
        uid = tg.text(ALICE, "/help")
        await bot.processed(uid)
        assert await bot.stopped(ALICE)
    assert len(tg.sent_to(ALICE)) == sent  # no "sorry" sent into a blocked chat
    assert not errors_logged(caplog)


async def test_chat_not_found_costs_one_update_not_the_bot(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    tg.fail("sendMessage", 400, "Bad Request: chat not found", times=2)  # the reply and the apology
    async with running_bot(tmp_path, tg) as bot:
        first = tg.text(ALICE, "/help")
        await bot.processed(first)
        second = tg.text(ALICE, "/help")
        await bot.processed(second)
    assert len(tg.sent_to(ALICE)) == 1


async def test_a_tap_too_old_to_answer_still_does_its_work(tmp_path: Path, example_spec: CampaignSpec) -> None:
    """answerCallbackQuery 400 "query is too old..." (the tap waited behind a slow update) is not a failure."""
    tg = DocTelegram()
    await tg.start()
    async with running_bot(tmp_path, tg, example_spec) as bot:
        uid = tg.text(ALICE, "/help")
        await bot.processed(uid)
        msg = last_bot_message(tg, ALICE)
        before = len(tg.sent_to(ALICE))
        tap, qid = tg.tap(ALICE, msg["message_id"], f"start:{example_spec.id}")
        tg.open_queries.discard(qid)  # expired before the bot got to it
        await bot.processed(tap)
        await wait_until(lambda: len(tg.sent_to(ALICE)) > before)
        assert not sorry_sent(tg, ALICE)
        # the survey began: its first screen has buttons
        assert buttons(last_bot_message(tg, ALICE))


@pytest.mark.parametrize("description", [
    "Bad Request: message to edit not found", "Bad Request: message can't be edited", NOT_MODIFIED])
async def test_dialog_edits_that_telegram_refuses(tmp_path: Path, example_spec: CampaignSpec,
                                                  caplog: pytest.LogCaptureFixture, description: str) -> None:
    """A deleted or too old message: the next screen comes as a new message; "not modified" is ignored."""
    tg = DocTelegram()
    await tg.start()
    async with running_bot(tmp_path, tg, example_spec) as bot:
        uid = tg.text(ALICE, "/start")
        await bot.processed(uid)
        screen = last_bot_message(tg, ALICE)
        assert buttons(screen)
        tg.fail("editMessageText", 400, description)
        before = len(tg.bot_messages(ALICE))
        tap, qid = tg.tap(ALICE, screen["message_id"], buttons(screen)[0])
        await bot.processed(tap)
        assert qid not in tg.open_queries  # the spinner stopped
        if description != NOT_MODIFIED:
            assert len(tg.bot_messages(ALICE)) == before + 1
        assert not sorry_sent(tg, ALICE)
    assert not errors_logged(caplog)


def next_tap(data: list[str]) -> str | None:
    """A participant's next tap, read from aiogram-dialog's widget ids (not the language): Done,
    Yes or Continue; else a coin; else the first choice. None on a typed-answer screen."""
    short = {d.split("\x1d", 1)[-1]: d for d in data}
    for key in ("d", "y", "c"):
        if key in short:
            return short[key]
    plus = [d for key, d in short.items() if ".+" in key]
    if plus:
        return plus[0]
    choices = [d for key, d in short.items() if key not in ("k", "n", "s", "u")]
    return choices[0] if choices else None


async def test_every_message_and_button_the_survey_sends_is_valid(tmp_path: Path, example_spec: CampaignSpec,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The whole survey in two languages: HTML parses (typed text with <, > and & included), texts
    fit 4096 characters, callback_data fits 64 bytes, nothing is refused."""
    tg = DocTelegram()
    await tg.start()
    async with running_bot(tmp_path, tg, example_spec) as bot:
        for user, lang in ((ALICE, "ar"), (BOB, "pt-br")):
            await bot.processed(tg.text(user, "/start", lang=lang))
            for _step in range(60):
                screen = last_bot_message(tg, user)
                data = buttons(screen)
                if not data:
                    break  # the end
                choice = next_tap(data)
                if choice is None:  # a typed answer, with characters HTML would take for markup
                    await bot.processed(tg.text(user, "a <b> & c > d", lang=lang))
                    continue
                tap, _ = tg.tap(user, screen["message_id"], choice, lang=lang)
                await bot.processed(tap)
            else:
                raise AssertionError("the survey did not end")
    assert not [(c.method, c.params.get("text"), c.error) for c in tg.calls if c.error]
    assert not errors_logged(caplog)


async def test_a_flood_wait_on_a_callback_answer_does_not_cost_the_tap(tmp_path: Path,
                                                                       example_spec: CampaignSpec) -> None:
    tg = DocTelegram()
    await tg.start()
    async with running_bot(tmp_path, tg, example_spec) as bot:
        uid = tg.text(ALICE, "/start")
        await bot.processed(uid)
        screen = last_bot_message(tg, ALICE)
        tg.fail("answerCallbackQuery", 429, "Too Many Requests: retry after 30", {"retry_after": 30})
        before = [m.get("edit_date") for m in tg.bot_messages(ALICE)] + [len(tg.bot_messages(ALICE))]
        tap, _ = tg.tap(ALICE, screen["message_id"], buttons(screen)[0])
        await bot.processed(tap)
        after = [m.get("edit_date") for m in tg.bot_messages(ALICE)] + [len(tg.bot_messages(ALICE))]
        assert after != before  # the next screen was shown
        assert not sorry_sent(tg, ALICE)


# --- updates our own sandbox never sends --------------------------------------------------------


async def test_group_chats_get_silence_and_do_not_stop_anyone(tmp_path: Path, example_spec: CampaignSpec,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """The bot works in private chats only: in a group it says nothing; being removed from a group
    (my_chat_member "kicked"/"left" there) is not the person blocking the bot."""
    tg = DocTelegram()
    await tg.start()
    group = {"id": -100123456789, "type": "supergroup", "title": "Neighbours"}
    me = {"id": BOT_ID, "is_bot": True, "first_name": "Doc Bot", "username": "doc_conformance_bot"}
    alice = {"id": ALICE, "is_bot": False, "first_name": "Test", "language_code": "en"}
    async with running_bot(tmp_path, tg, example_spec) as bot:
        await agree(tg, bot, ALICE)  # Alice is a participant
        member = {"chat": group, "from": alice, "date": int(time.time()),
                  "old_chat_member": {"status": "left", "user": me},
                  "new_chat_member": {"status": "member", "user": me}}
        ids = [tg.push("my_chat_member", member)]
        ids.append(tg.text(ALICE, "/start@doc_conformance_bot", chat=group))
        ids.append(tg.text(ALICE, "hello everyone", chat=group))
        ids.append(tg.push("message", {"message_id": 77, "date": 1, "chat": group, "sender_chat": group,
                                       "text": "/start"}))  # no `from`: sent on behalf of a chat
        kicked = {**member, "old_chat_member": member["new_chat_member"],
                  "new_chat_member": {"status": "kicked", "user": me, "until_date": 0}}
        ids.append(tg.push("my_chat_member", kicked))
        for uid in ids:
            await bot.processed(uid)
        assert not await bot.stopped(ALICE)
        # blocking in the private chat does stop her
        private = {**kicked, "chat": {"id": ALICE, "type": "private", "first_name": "Test"}}
        await bot.processed(tg.push("my_chat_member", private))
        assert await bot.stopped(ALICE)
    assert not tg.sent_to(group["id"])
    assert not errors_logged(caplog)


async def test_updates_of_every_shape_are_processed_without_errors(tmp_path: Path, example_spec: CampaignSpec,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Media, locations, contacts, forwards, entities, inline taps, inaccessible messages, edited
    messages and channel posts (the last two only if a server sends more than allowed_updates asked),
    odd or missing language codes: each is processed once, private ones get an answer."""
    tg = DocTelegram()
    await tg.start()
    user = {"id": BOB, "is_bot": False, "first_name": "Test"}
    private = {"id": BOB, "type": "private", "first_name": "Test"}
    channel = {"id": -100987654321, "type": "channel", "title": "News"}
    async with running_bot(tmp_path, tg, example_spec) as bot:
        start = tg.text(BOB, "/start", lang="zh-hans")
        await bot.processed(start)
        screen = last_bot_message(tg, BOB)
        photo = [{"file_id": "AgAD1", "file_unique_id": "u1", "width": 90, "height": 90}]
        shapes = [
            {"photo": photo, "caption": "look"},
            {"sticker": {"file_id": "CAAD1", "file_unique_id": "u2", "type": "regular", "width": 512,
                         "height": 512, "is_animated": False, "is_video": False, "emoji": "👍"}},
            {"document": {"file_id": "BQAD1", "file_unique_id": "u3", "file_name": "a.pdf"}},
            {"location": {"latitude": 51.5, "longitude": -0.1}},
            {"contact": {"phone_number": "+440000000000", "first_name": "X"}},
            {"text": "fwd", "forward_origin": {"type": "hidden_user", "sender_user_name": "Someone",
                                               "date": 1}},
            {"text": "see https://example.org", "entities": [{"type": "url", "offset": 4, "length": 19}]},
        ]
        ids = [tg.text(BOB, shape.pop("text", ""), lang=lang, **shape) for shape, lang in
               zip(shapes, ["pt-br", None, "xx", "en-GB", "fil", "ar", "uk"])]
        ids.append(tg.push("edited_message", {"message_id": 1, "date": 1, "edit_date": 2, "chat": private,
                                              "from": user, "text": "edited"}))
        ids.append(tg.push("channel_post", {"message_id": 2, "date": 1, "chat": channel, "text": "post"}))
        inline, _ = tg.tap(BOB, None, "inline-data")
        ids.append(inline)
        old = tg.tap(BOB, screen["message_id"], buttons(screen)[0])[0]
        tg.pending[-1]["callback_query"]["message"] = {"chat": private, "message_id": screen["message_id"],
                                                       "date": 0}  # InaccessibleMessage (Bot API 7.0)
        ids.append(old)
        ids.append(tg.push("message", {"message_id": 9, "date": 1, "chat": private, "from": user,
                                       "text": "x" * 4096}, update_id=10**12))
        for uid in ids:
            await bot.processed(uid)
        assert bot.runtime.pump.retries == 0
    assert not [c for c in tg.calls if c.error]
    assert not sorry_sent(tg, BOB)
    assert not errors_logged(caplog)


# --- webhook ------------------------------------------------------------------------------------

SECRET = "conformance_secret-0123456789"


async def test_webhook_checks_the_secret_header_and_answers_at_once(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    runtime = await Runtime.create(make_settings(tmp_path, tg.url))
    app = webhook_app(runtime, "/hook", SECRET)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    update = {"update_id": 5, "message": {"message_id": 1, "date": 1, "text": "/help",
                                          "chat": {"id": ALICE, "type": "private", "first_name": "T"},
                                          "from": {"id": ALICE, "is_bot": False, "first_name": "T"}}}
    try:
        async with ClientSession() as http:
            url = f"http://127.0.0.1:{port}/hook"
            for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}):
                async with http.post(url, json=update, headers=headers) as resp:
                    assert resp.status == 401
            assert runtime.journal.counts() == {}
            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as resp:
                assert resp.status == 200  # journalled; processed afterwards by the pump
            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as resp:
                assert resp.status == 200  # Telegram's retry of the same update: accepted, not doubled
            assert runtime.journal.counts() == {"pending": 1}
            async with http.post(url, data=b"not json", headers={SECRET_HEADER: SECRET}) as resp:
                assert resp.status == 400
    finally:
        await runner.cleanup()
        await runtime.close()
        await tg.stop()


async def test_webhook_registration_asks_for_what_the_bot_handles(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    runtime = await Runtime.create(make_settings(tmp_path, tg.url))
    stop = asyncio.Event()
    task = asyncio.create_task(serve_webhook(runtime, "127.0.0.1", 0, "/hook", SECRET,
                                             "https://bot.example.org", stop, signals=False))
    try:
        await wait_until(lambda: tg.calls_of("setWebhook"))
        params = tg.calls_of("setWebhook")[0].params
        assert params["url"] == "https://bot.example.org/hook"
        assert params["secret_token"] == SECRET
        assert {"message", "callback_query", "my_chat_member"} <= set(params["allowed_updates"])
        assert str(params.get("drop_pending_updates", "false")).lower() == "false"
    finally:
        stop.set()
        await asyncio.wait({task}, timeout=30)
        await runtime.close()
        await tg.stop()
    assert task.done() and task.exception() is None


async def test_a_refused_webhook_address_is_explained(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    runtime = await Runtime.create(make_settings(tmp_path, tg.url))
    try:
        with pytest.raises(ConfigurationError, match="https://"):
            await asyncio.wait_for(serve_webhook(runtime, "127.0.0.1", 0, "/hook", SECRET, "http://bot.example.org",
                                                 asyncio.Event(), signals=False), 30)
    finally:
        await runtime.close()
        await tg.stop()


async def test_a_flood_wait_on_the_command_menus_does_not_hold_up_updates(tmp_path: Path) -> None:
    tg = DocTelegram()
    await tg.start()
    tg.fail("setMyCommands", 429, "Too Many Requests: retry after 30", {"retry_after": 30})
    async with running_bot(tmp_path, tg) as bot:
        uid = tg.text(ALICE, "/help")
        await bot.processed(uid)
        assert bot.runtime.menus is not None and not bot.runtime.menus.done()  # still waiting its turn
    assert tg.sent_to(ALICE)


async def test_callback_queries_without_data_or_message(tmp_path: Path, example_spec: CampaignSpec,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A game button has `game_short_name` instead of `data`; an inline message's tap has no `message`.

    (Not here: a game tap *with* a message, which aiogram-dialog's intent middleware cannot take
    (`data` None). Only a bot that sends games gets one, and this bot sends none.)"""
    tg = DocTelegram()
    await tg.start()
    frm = {"id": BOB, "is_bot": False, "first_name": "Test"}
    async with running_bot(tmp_path, tg, example_spec) as bot:
        await bot.processed(tg.text(BOB, "/start"))
        ids = []
        for extra in ({"game_short_name": "g", "inline_message_id": "AAA"},
                      {"inline_message_id": "AAA", "data": "start:clinic-access"}):
            qid = f"q-{len(ids)}"
            tg.open_queries.add(qid)
            ids.append(tg.push("callback_query", {"id": qid, "from": frm, "chat_instance": "c", **extra}))
        for uid in ids:
            await bot.processed(uid)
        assert bot.runtime.pump.retries == 0
    assert not errors_logged(caplog)


async def test_a_long_flood_wait_is_retried_not_apologised_for(tmp_path: Path) -> None:
    """A flood wait longer than RetryRequests allows sends the update back to the journal's pump,
    which waits what Telegram asked and tries again: the screen asked for comes, no apology."""
    tg = DocTelegram()
    await tg.start()
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 3", {"retry_after": 3})
    async with running_bot(tmp_path, tg) as bot:
        # the same path as a 61 s wait against the default 60 s, in 3 s
        retry = next(m for m in bot.runtime.bot.session.middleware if isinstance(m, RetryRequests))
        retry.max_wait = 2
        uid = tg.text(ALICE, "/help")
        await bot.processed(uid)
    assert not sorry_sent(tg, ALICE)
    assert any("/start" in str(p.get("text")) for p in tg.sent_to(ALICE))  # the help text came


async def test_a_429_without_parameters_is_still_a_flood_wait(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """`parameters` (and its retry_after) are optional in the documented error response."""
    tg = DocTelegram()
    await tg.start()
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 1")
    tg.fail("sendMessage", 429, "Too Many Requests")
    async with running_bot(tmp_path, tg) as bot:
        uid = tg.text(ALICE, "/help")
        await bot.processed(uid)
    assert [c.error for c in tg.calls_of("sendMessage")] == [429, 429, None]
    assert not sorry_sent(tg, ALICE)
    assert not errors_logged(caplog)


def test_the_pump_serves_private_chats_only() -> None:
    from bot.runtime.pump import serves

    private = {"id": 1, "type": "private"}
    group = {"id": -2, "type": "group"}
    assert serves({"update_id": 1, "message": {"chat": private}})
    assert serves({"update_id": 1, "my_chat_member": {"chat": private}})
    assert serves({"update_id": 1, "callback_query": {"id": "q", "message": {"chat": private}}})
    assert serves({"update_id": 1, "callback_query": {"id": "q", "inline_message_id": "A"}})  # answered
    assert not serves({"update_id": 1, "message": {"chat": group}})
    assert not serves({"update_id": 1, "my_chat_member": {"chat": group}})
    assert not serves({"update_id": 1, "callback_query": {"id": "q", "message": {"chat": group}}})
    assert not serves({"update_id": 1, "channel_post": {"chat": {"id": -3, "type": "channel"}}})
    assert not serves({"update_id": 1, "inline_query": {"id": "i"}})
