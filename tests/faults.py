"""Fault tools for tests: a TCP proxy that can cut a real server away, and bot processes to kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a real server; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._pipes -= {writer, up_writer}

    async def cut(self) -> None:
        """The server is gone: open connections reset, new ones refused."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._pipes):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._pipes.clear()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        await self.cut()


def start_bot_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`coassess <args>` in its own process, logging to a file."""
    fh = log.open("ab")
    # COASSESS_TEST_BOT_ROOT: run another checkout's bot (a before/after figure), with these tests
    root = os.environ.get("COASSESS_TEST_BOT_ROOT") or Path(__file__).resolve().parent.parent
    return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env={**os.environ, **env},
                            stdout=fh, stderr=subprocess.STDOUT, cwd=root)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop(proc: subprocess.Popen[bytes]) -> int:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


class PausableProxy(TcpProxy):
    """A TcpProxy that can also hang: connections stay open but nothing passes until `resume`.

    `held` is set when a client sends something while the proxy hangs (it waits for an answer);
    requests containing any of `hang(..., except_for=...)` do not count."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.held = asyncio.Event()
        self._not_counted: tuple[bytes, ...] = ()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, request: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if request and not self.flowing.is_set() and not any(w in data for w in self._not_counted):
                        self.held.set()
                    await self.flowing.wait()
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        self._pipes -= {writer, up_writer}

    def hang(self, except_for: tuple[bytes, ...] = ()) -> None:
        self._not_counted = except_for
        self.held.clear()
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()
