"""The sandbox's aiohttp app: the Bot API under ``/bot<token>/``, files, and the control API."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import mimetypes
import re
import signal
from typing import Any, Self

from aiohttp import web

from bot.sandbox import control
from bot.sandbox.botapi import BotApi
from bot.sandbox.client import SandboxClient
from bot.sandbox.errors import NOT_FOUND, UNAUTHORIZED, BotApiError, bad_request
from bot.sandbox.params import Params, Upload
from bot.sandbox.state import Limits, World

log = logging.getLogger(__name__)

#: Telegram's upload limit for bots; larger requests get 413.
MAX_REQUEST_BYTES = 50 * 1024 * 1024
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")


def _telegram_error(error: BotApiError) -> web.Response:
    return web.json_response(error.to_json(), status=error.error_code)


async def _read_params(request: web.Request) -> Params:
    """Query string plus a JSON, urlencoded or multipart body, as the Bot API accepts."""
    values: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if not request.can_read_body:
        return Params(values, files)
    if request.content_length and request.content_length > MAX_REQUEST_BYTES:
        raise BotApiError(413, "Request Entity Too Large")
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON encoded request body") from None
        if isinstance(body, dict):
            values.update(body)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise BotApiError(413, "Request Entity Too Large") from None
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = Upload(value.filename, value.content_type, value.file.read())
            else:
                values[name] = value
    return Params(values, files)


async def bot_api(request: web.Request) -> web.Response:
    """``/bot<token>/<method>``: any Bot API call, GET or POST."""
    api = request.app[control.API_KEY]
    token = request.match_info["token"]
    if not _TOKEN.fullmatch(token):
        return _telegram_error(NOT_FOUND)
    if token != api.world.token:
        return _telegram_error(UNAUTHORIZED)
    try:
        params = await _read_params(request)
    except BotApiError as error:
        return _telegram_error(error)
    status, body = await api.handle(request.match_info["method"], params)
    return web.json_response(body, status=status)


async def download(request: web.Request) -> web.StreamResponse:
    """``/file/bot<token>/<file_path>``: a file's bytes after getFile."""
    api = request.app[control.API_KEY]
    if request.match_info["token"] != api.world.token:
        return _telegram_error(UNAUTHORIZED)
    stored = api.world.files.by_path(request.match_info["path"])
    if stored is None:
        return _telegram_error(NOT_FOUND)
    content_type = stored.mime_type or mimetypes.guess_type(stored.file_path or "")[0]
    return web.Response(body=stored.data, content_type=content_type or "application/octet-stream")


async def not_found(request: web.Request) -> web.Response:
    """Anything else: Telegram's 404."""
    return _telegram_error(NOT_FOUND)


def build_app(api: BotApi) -> web.Application:
    """The aiohttp application serving ``api`` (Bot API, files, control API)."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES + 1024 * 1024,
                          middlewares=[control.control_errors])
    app[control.API_KEY] = api
    control.add_routes(app)
    app.router.add_route("*", "/bot{token}/{method}", bot_api)
    app.router.add_get("/file/bot{token}/{path:.+}", download)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the sandbox listens on loopback only (127.0.0.1, ::1, localhost), "
                     f"not {host!r}")


class Sandbox:
    """A local Telegram Bot API for demos and end-to-end tests, run in the current event loop.

    Use as ``async with Sandbox() as sb:`` and point aiogram at it with
    ``AiohttpSession(api=TelegramAPIServer.from_base(sb.api_url))``.

    Args:
        host: Loopback address to listen on.
        port: TCP port; 0 picks a free one (see ``port`` after start).
        token: The bot token the sandbox accepts; its numeric prefix is the bot's id.
        limits: Flood, callback and webhook limits (defaults: Telegram's).
        bot_first_name: The bot's name in getMe.
        bot_username: The bot's username in getMe.
        strict_html: Refuse a bare ``&`` in HTML (the Bot API docs' rule; TDLib is lenient).

    Attributes:
        state: The in-memory world, for in-process inspection.
        api: The Bot API implementation.
        client: A ``SandboxClient`` for the control API (available after start).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "123456:TEST",
        *,
        limits: Limits | None = None,
        bot_first_name: str = "Coassess Sandbox",
        bot_username: str = "coassess_sandbox_bot",
        strict_html: bool = True,
    ) -> None:
        _check_loopback(host)
        if not _TOKEN.fullmatch(token):
            raise ValueError("token must look like a bot token: <digits>:<letters, digits, _ or ->")
        self.host = host
        self.port = port
        self.token = token
        self.state = World(token, limits=limits, bot_first_name=bot_first_name,
                           bot_username=bot_username, strict_html=strict_html)
        self.api = BotApi(self.state)
        self._runner: web.AppRunner | None = None
        self._client: SandboxClient | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running sandbox."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The base to give ``TelegramAPIServer.from_base``."""
        return self.base_url

    @property
    def client(self) -> SandboxClient:
        """The control-API client (only while the sandbox runs)."""
        if self._client is None:
            raise RuntimeError("the sandbox is not running; use `async with Sandbox() as sb`")
        return self._client

    async def start(self) -> Self:
        """Start listening; resolves ``port`` when it was 0."""
        self._runner = web.AppRunner(build_app(self.api), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._client = SandboxClient(self.base_url)
        log.info("sandbox Bot API listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        """Stop serving and close sessions."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.api.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def run_sandbox(host: str = "127.0.0.1", port: int = 8081, token: str = "123456:TEST",
                **options: Any) -> None:
    """Run a sandbox until interrupted (blocking); for ``coassess sandbox``.

    Args:
        host: Loopback address to listen on.
        port: TCP port.
        token: The bot token to accept.
        **options: Further ``Sandbox`` keyword arguments (``limits``, ``strict_html``, ...).
    """

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Not on Windows; there Ctrl+C still ends asyncio.run with KeyboardInterrupt.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
        async with Sandbox(host, port, token, **options) as sandbox:
            print(f"Sandbox Bot API: {sandbox.api_url}  (control API: {sandbox.api_url}/sandbox/)",
                  flush=True)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
