"""Several real `coassess webhook` workers behind an alternating balancer, a CPU hog beside them, and checks
of what the citizens saw (for tests/test_workers.py and benchmarks/workers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox import Sandbox
from tests.faults import kill9, start_bot_process, stop
from tests.live import CONTACT_KEY, PSEUDONYM_KEY

SECRET = "several-workers-secret"
REDIS_URL = os.environ.get("COASSESS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
APOLOGY = "Sorry, something went wrong"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_http(url: str, seconds: float = 90) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(seconds * 10)):
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                async with http.get(url) as r:
                    if r.status == 200:
                        return await r.json()
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


class Balancer:
    """Consecutive updates alternate between workers, as a round-robin load balancer sends them;
    a worker that does not answer (killed) is skipped, as a balancer's health check would."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.n = 0
        self.hits = [0] * len(targets)
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/tg", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._http = aiohttp.ClientSession()
        return f"http://127.0.0.1:{self.port}/tg"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("x-telegram", "content-type"))}
        assert self._http is not None
        for _ in range(len(self.targets)):
            i = self.n % len(self.targets)
            self.n += 1
            try:
                async with self._http.post(self.targets[i], data=body, headers=headers) as r:
                    self.hits[i] += 1
                    return web.Response(status=r.status, body=await r.read(), content_type="application/json")
            except aiohttp.ClientError:
                continue
        return web.Response(status=502, text="no worker")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()


class BotApiFront:
    """In front of the sandbox Bot API: answers a share of calls with an nginx-style HTML 502 page
    (Telegram's own front does this when its back end is away), without passing them on."""

    PAGE = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway" \
           b"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.port = free_port()
        self.html_502_every = 0  # 0: none; n: every n-th call
        self.calls = 0
        self.served_html = 0
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
        self.calls += 1
        if self.html_502_every and self.calls % self.html_502_every == 0:
            self.served_html += 1
            return web.Response(status=502, body=self.PAGE, content_type="text/html")
        assert self._http is not None
        async with self._http.request(request.method, self.target + request.path_qs, data=await request.read(),
                                      headers={"Content-Type": request.headers.get("Content-Type", "")}) as r:
            return web.Response(status=r.status, body=await r.read(), content_type="application/json")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()


@contextlib.contextmanager
def cpu_hog(seconds: float, processes: int = 2) -> Any:
    """Busy loops beside the workers (bounded in time: they end by themselves)."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
    try:
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(10)


def bot_env(db_url: str, api_url: str, token: str, **extra: str) -> dict[str, str]:
    return {"COASSESS_DATABASE_URL": db_url, "COASSESS_BOT_TOKEN": token,
            "COASSESS_TELEGRAM_API_URL": api_url, "COASSESS_PSEUDONYM_KEY": PSEUDONYM_KEY,
            "COASSESS_CONTACT_KEY": CONTACT_KEY, "COASSESS_LOG_LEVEL": "WARNING",
            "COASSESS_REDIS_URL": REDIS_URL, "COASSESS_WEBHOOK_SECRET": SECRET,
            "COASSESS_SCHEDULER_INTERVAL": "0", **extra}


@dataclass
class Fleet:
    """N webhook workers, their logs and the balancer in front of them."""

    tmp: Path
    env: dict[str, str]
    ports: list[int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    balancer: Balancer | None = None

    def args(self, i: int) -> list[str]:
        return ["webhook", "--host", "127.0.0.1", "--port", str(self.ports[i]), "--path", "/tg",
                "--journal", str(self.tmp / f"journal-{i}.db")]

    def log(self, i: int) -> Path:
        return self.tmp / f"w{i}.log"

    def start(self, i: int, **env: str) -> None:
        self.procs[i] = start_bot_process(self.args(i), {**self.env, **env}, self.log(i))

    def kill(self, i: int) -> None:
        kill9(self.procs[i])

    async def health(self, i: int) -> dict[str, Any]:
        return await wait_http(f"http://127.0.0.1:{self.ports[i]}/healthz")

    def logs(self) -> str:
        return "\n".join(self.log(i).read_text() for i in range(len(self.ports)) if self.log(i).exists())


@contextlib.asynccontextmanager
async def fleet(sb: Sandbox, db_url: str, tmp: Path, n: int, *, api_url: str | None = None,
                **env: str) -> AsyncIterator[Fleet]:
    """Start `n` workers and a balancer, point the sandbox's webhook at it; stop them all after."""
    tmp.mkdir(parents=True, exist_ok=True)
    f = Fleet(tmp, bot_env(db_url, api_url or sb.api_url, sb.token, **env), [free_port() for _ in range(n)])
    f.procs = [start_bot_process(f.args(i), f.env, f.log(i)) for i in range(n)]
    try:
        for i in range(n):
            await f.health(i)
        f.balancer = Balancer([f"http://127.0.0.1:{p}/tg" for p in f.ports])
        url = await f.balancer.start()
        async with aiohttp.ClientSession() as http:
            r = await http.post(f"{sb.api_url}/bot{sb.token}/setWebhook", json={"url": url, "secret_token": SECRET})
            assert (await r.json())["ok"]
        yield f
    finally:
        f.codes = [stop(p) for p in f.procs]  # type: ignore[attr-defined]
        if f.balancer is not None:
            await f.balancer.close()


def callbacks_report(sb: Sandbox, limit: float = 15.0) -> tuple[int, int, int]:
    """(taps, answered in time, answered "One moment") from the sandbox's record of every press."""
    records = list(sb.state.callbacks.values())
    in_time = sum(1 for r in records if r.answered and r.answered_at is not None
                  and r.answered_at - r.created_at <= limit)
    moment = sum(1 for r in records if r.answer and (r.answer.get("text") or "").startswith(("One moment", "Un ")))
    return len(records), in_time, moment


def apologies(sb: Sandbox) -> int:
    """How many "Sorry, something went wrong" messages the bot sent."""
    return sum(1 for m in sb.state.messages.values() if APOLOGY in (_text(m) or ""))


def _text(message: Any) -> str | None:
    return getattr(message, "text", None) if not isinstance(message, dict) else message.get("text")


def elapsed(since: float) -> float:
    return time.monotonic() - since


def tally(results: list[Any], stored: dict[str, dict[str, Any]], pseudonym_of: Any) -> dict[str, int]:
    """What went wrong for the citizens: unexpected screens or silence, answers stored differently."""
    from tests.live import comparable

    out = {"citizens": len(results), "finished": 0, "errors": 0, "answers": 0, "stored_differently": 0}
    for r in results:
        out["finished"] += bool(r.finished)
        out["errors"] += r.error is not None
        got = stored.get(pseudonym_of(r.persona.user_id), {})
        want = {q: comparable(v) for q, v in r.expected.items()}
        have = {q: comparable(v) for q, v in got.items() if q in want or v is not None}
        out["answers"] += len(want)
        out["stored_differently"] += sum(1 for q in set(want) | set(have) if want.get(q, "-") != have.get(q, "-"))
    return out
