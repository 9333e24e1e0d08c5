"""Webhook delivery as Telegram does it: one update at a time per queue, retries with backoff.

Queues are keyed as Telegram keys them: a chat's messages, its ``my_chat_member`` updates and a
user's button presses are separate queues. Within a queue updates go one at a time, in order;
different queues go in parallel up to ``max_connections``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.sandbox.params import Params, Upload
from bot.sandbox.state import PendingUpdate, WebhookConfig, World

if TYPE_CHECKING:
    from bot.sandbox.botapi import BotApi

log = logging.getLogger(__name__)


class WebhookDeliverer:
    """Posts pending updates to the bot's webhook until each is answered with 2xx.

    Args:
        world: The sandbox state (pending updates, webhook config, limits).
        api: Runs a Bot API call a webhook returns in its answer.
    """

    def __init__(self, world: World, api: BotApi) -> None:
        self.world = world
        self.api = api
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[tuple[Any, ...], asyncio.Task[None]] = {}
        self._retry_at: dict[tuple[Any, ...], float] = {}
        self._failures: dict[int, int] = {}

    def restart(self) -> None:
        """Apply a changed (or removed) webhook: end requests in flight, keep their updates."""
        for task in self._in_flight.values():
            task.cancel()
        self._in_flight.clear()
        self._retry_at.clear()
        self._failures.clear()
        if self.world.webhook is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self.world.changed.notify()

    async def close(self) -> None:
        """Stop delivering and close the HTTP session."""
        tasks = [*self._in_flight.values(), *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._in_flight.clear()
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        try:
            while self.world.webhook is not None:
                event = self.world.changed.current()
                next_due = self._dispatch()
                timeout = None if next_due is None else max(0.0, next_due - time.monotonic())
                await self.world.changed.wait(timeout, event)
        finally:
            self._task = None

    def _dispatch(self) -> float | None:
        """Start deliveries for every queue that is ready; return when the next retry is due."""
        config = self.world.webhook
        if config is None:
            return None
        now = time.monotonic()
        next_due: float | None = None
        seen: set[tuple[Any, ...]] = set()
        for update in list(self.world.pending):
            queue = update.queue
            if queue in seen:
                continue  # only the oldest update of a queue may go
            seen.add(queue)
            if queue in self._in_flight:
                continue
            due = self._retry_at.get(queue, 0.0)
            if due > now:
                next_due = due if next_due is None else min(next_due, due)
                continue
            if len(self._in_flight) >= config.max_connections:
                break
            self._in_flight[queue] = asyncio.get_running_loop().create_task(
                self._deliver(config, update))
        return next_due

    async def _deliver(self, config: WebhookConfig, update: PendingUpdate) -> None:
        queue = update.queue
        task = asyncio.current_task()
        error: str | None = None
        retry_after: float | None = None
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            headers = {"Content-Type": "application/json"}
            if config.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = config.secret_token
            timeout = aiohttp.ClientTimeout(total=self.world.limits.webhook_timeout)
            async with self._session.post(config.url, data=json.dumps(update.body).encode(),
                                          headers=headers, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    fields, files = await _read_reply(response)
                    self.world.drop(update)
                    self._retry_at.pop(queue, None)
                    self._failures.pop(update.update_id, None)
                    self.world.counters["webhook"]["delivered"] += 1
                    await self._run_reply(fields, files)
                    return
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
                header = response.headers.get("Retry-After", "")
                if header.isdigit():
                    retry_after = min(float(header), 3600.0)
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientConnectorError:
            error = "Connection refused"
        except aiohttp.ClientError:
            error = "Connection reset by peer"
        finally:
            if self._in_flight.get(queue) is task:
                del self._in_flight[queue]
            self.world.changed.notify()
        if error is not None and self.world.webhook is config:
            self._record_failure(config, update, error, retry_after)

    def _record_failure(self, config: WebhookConfig, update: PendingUpdate, error: str,
                        retry_after: float | None) -> None:
        config.last_error_date = int(time.time())
        config.last_error_message = error
        self.world.counters["webhook"]["failed"] += 1
        failures = self._failures.get(update.update_id, 0) + 1
        self._failures[update.update_id] = failures
        limits = self.world.limits
        # Telegram retries at once after the first failure, then backs off exponentially.
        delay = 0.0 if failures == 1 else min(limits.webhook_retry_base * 2 ** (failures - 2),
                                              limits.webhook_retry_max)
        if retry_after is not None:
            delay = retry_after
        self._retry_at[update.queue] = time.monotonic() + delay
        log.debug("webhook delivery of update %s failed (%s); retry in %.2fs",
                  update.update_id, error, delay)

    async def _run_reply(self, fields: dict[str, Any], files: dict[str, Any]) -> None:
        """Run the Bot API call a webhook put in its answer (its result goes nowhere)."""
        method = fields.pop("method", None)
        if not isinstance(method, str) or not self.api.webhook_reply_allowed(method):
            return
        await self.api.handle(method, Params(fields, files), source="webhook_reply")


async def _read_reply(response: aiohttp.ClientResponse) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a webhook's answer: JSON or multipart form with an optional ``method``."""
    fields: dict[str, Any] = {}
    files: dict[str, Any] = {}
    if response.content_type.startswith("multipart/"):
        reader = aiohttp.MultipartReader.from_response(response)
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            data = await part.read(decode=True)
            if part.filename:
                files[part.name] = Upload(part.filename, part.headers.get("Content-Type"),
                                          bytes(data))
            else:
                fields[part.name] = bytes(data).decode("utf-8", "replace")
        return fields, files
    body = await response.read()
    with contextlib.suppress(ValueError):
        parsed = json.loads(body or b"{}")
        if isinstance(parsed, dict):
            fields = parsed
    return fields, files
