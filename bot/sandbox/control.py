"""The control API under ``/sandbox/``: simulate citizens, inspect chats, inject faults."""

from __future__ import annotations

import asyncio
import bisect
import base64
import binascii
from typing import Any

from aiohttp import web

from bot.sandbox.botapi import BotApi
from bot.sandbox.errors import ControlError
from bot.sandbox.state import BOT_EVENTS, REPLY_EVENTS, USER_EVENTS, World

API_KEY: web.AppKey[BotApi] = web.AppKey("sandbox_api", BotApi)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError(400, "the control API takes a JSON object body") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the control API takes a JSON object body")
    return body


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be an integer, got {value!r}") from None


def _bytes(body: dict[str, Any]) -> bytes | None:
    encoded = body.get("data_b64")
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError(400, "data_b64 must be base64") from None


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn ControlError into ``{"ok": false, "error": ...}`` with its status."""
    try:
        return await handler(request)
    except ControlError as error:
        return web.json_response({"ok": False, "error": error.message}, status=error.status)
    except (KeyError, TypeError, ValueError) as error:
        # A malformed control request (missing or mistyped field), not a sandbox failure.
        return web.json_response({"ok": False, "error": f"malformed request: {error!r}"},
                                 status=400)


def _world(request: web.Request) -> World:
    return request.app[API_KEY].world


async def health(request: web.Request) -> web.Response:
    """GET /sandbox/health."""
    world = _world(request)
    return _ok({"bot_username": world.bot_username, "bot_id": world.bot_id})


async def create_user(request: web.Request) -> web.Response:
    """POST /sandbox/users: create or update a citizen."""
    body = await _body(request)
    user_id = body.pop("id", None)
    person = _world(request).upsert_user(None if user_id is None else _int(user_id, "id"), **body)
    return _ok(person.to_dict())


async def get_user(request: web.Request) -> web.Response:
    """GET /sandbox/users/{user_id}."""
    world = _world(request)
    person = world.user(_int(request.match_info["user_id"], "user_id"))
    return _ok({**person.to_dict(), "has_chat": person.id in world.chats})


async def send_message(request: web.Request) -> web.Response:
    """POST /sandbox/users/{user_id}/messages: text, voice, sticker, photo, location, contact."""
    body = await _body(request)
    data = _bytes(body)
    if data is not None:
        body["data"] = data
    user_id = _int(request.match_info["user_id"], "user_id")
    return _ok(_world(request).user_sends(user_id, body))


async def tap(request: web.Request) -> web.Response:
    """POST /sandbox/users/{user_id}/taps: press an inline button."""
    body = await _body(request)
    if "message_id" not in body:
        raise ControlError(400, "message_id is required")
    result = _world(request).user_taps(
        _int(request.match_info["user_id"], "user_id"), _int(body["message_id"], "message_id"),
        data=body.get("data"), text=body.get("text"),
        row=None if body.get("row") is None else _int(body["row"], "row"),
        col=None if body.get("col") is None else _int(body["col"], "col"),
    )
    return _ok(result)


async def reply_button(request: web.Request) -> web.Response:
    """POST /sandbox/users/{user_id}/reply_button: press a reply-keyboard button."""
    body = await _body(request)
    result = _world(request).press_reply_button(_int(request.match_info["user_id"], "user_id"),
                                                str(body.get("text", "")))
    return _ok(result)


async def block(request: web.Request) -> web.Response:
    """POST /sandbox/users/{user_id}/block."""
    return _ok(_world(request).set_blocked(_int(request.match_info["user_id"], "user_id"), True))


async def unblock(request: web.Request) -> web.Response:
    """POST /sandbox/users/{user_id}/unblock."""
    return _ok(_world(request).set_blocked(_int(request.match_info["user_id"], "user_id"), False))


async def deactivate(request: web.Request) -> web.Response:
    """POST /sandbox/users/{user_id}/deactivate: the account is deleted."""
    person = _world(request).user(_int(request.match_info["user_id"], "user_id"))
    person.deactivated = True
    return _ok(person.to_dict())


async def user_commands(request: web.Request) -> web.Response:
    """GET /sandbox/users/{user_id}/commands: the command menu this citizen sees."""
    api = request.app[API_KEY]
    return _ok(api.visible_commands(_int(request.match_info["user_id"], "user_id")))


async def callback(request: web.Request) -> web.Response:
    """GET /sandbox/callbacks/{query_id}: whether and how the bot answered a press."""
    record = _world(request).callbacks.get(request.match_info["query_id"])
    if record is None:
        raise ControlError(404, f"no callback query {request.match_info['query_id']}")
    return _ok(record.to_dict())


async def transcript(request: web.Request) -> web.Response:
    """GET /sandbox/chats/{chat_id}: messages (current state and history), events, calls."""
    return _ok(_world(request).transcript(_int(request.match_info["chat_id"], "chat_id")))


async def wait(request: web.Request) -> web.Response:
    """POST /sandbox/chats/{chat_id}/wait: until the bot answered and went quiet."""
    body = await _body(request)
    world = _world(request)
    chat_id = _int(request.match_info["chat_id"], "chat_id")
    after = body.get("after")
    timeout = float(body.get("timeout", 5.0))
    idle = float(body.get("idle", 0.08))
    result = await wait_for_bot(world, chat_id, None if after is None else _int(after, "after"),
                                timeout, idle)
    return _ok(result)


async def wait_for_bot(world: World, chat_id: int, after: int | None, timeout: float,
                       idle: float) -> dict[str, Any]:
    """Wait until the bot sent or edited a message in the chat after ``after`` and went idle.

    Args:
        world: The sandbox state.
        chat_id: The private chat (the citizen's id).
        after: Event sequence number to look after; None means the citizen's last action.
        timeout: Seconds to wait at most.
        idle: Seconds without Bot API calls about the chat that count as "done".

    Raises:
        ControlError: 408 when the bot did not answer in time.
    """
    timeline = world.chat_events.get(chat_id, [])
    if after is None:
        after = max((e.seq for e in timeline if e.kind in USER_EVENTS), default=0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = world.changed.current()
        timeline = world.chat_events.get(chat_id, [])
        start = bisect.bisect_right([e.seq for e in timeline[-64:]], after) + max(0, len(timeline) - 64) \
            if timeline and timeline[max(0, len(timeline) - 64)].seq <= after else 0
        events = [e for e in timeline[start:] if e.seq > after and e.kind in BOT_EVENTS]
        remaining = deadline - loop.time()
        pause = remaining
        if any(e.kind in REPLY_EVENTS for e in events):
            quiet = world.idle_for(chat_id)
            if quiet >= idle:
                message_ids = list(dict.fromkeys(e.message_id for e in events if e.message_id))
                return {
                    "seq": max(e.seq for e in events),
                    "events": [e.to_dict() for e in events],
                    "messages": [world.message_view(world.messages[m]) for m in message_ids],
                }
            pause = min(remaining, idle - quiet)
        if remaining <= 0:
            seen = [e.kind for e in events]
            raise ControlError(408, f"the bot did not answer in chat {chat_id} within {timeout}s "
                                    f"(bot events after seq {after}: {seen})")
        await world.changed.wait(max(pause, 0.005), event)


async def calls(request: web.Request) -> web.Response:
    """GET /sandbox/calls?method=&chat_id=&since=: the Bot API call log."""
    world = _world(request)
    query = request.query
    method = query.get("method", "").lower()
    chat_id = _int(query["chat_id"], "chat_id") if "chat_id" in query else None
    since = _int(query.get("since", 0), "since")
    result = [c.to_dict() for c in world.calls
              if c.seq > since and (not method or c.method.lower() == method)
              and (chat_id is None or c.chat_id == chat_id)]
    return _ok(result)


async def updates(request: web.Request) -> web.Response:
    """GET /sandbox/updates: updates the bot has not confirmed yet."""
    return _ok([u.body for u in _world(request).pending])


def _chat_of_raw(content: dict[str, Any]) -> int | None:
    for holder in (content, content.get("message")):
        if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
            chat_id = holder["chat"].get("id")
            if isinstance(chat_id, int):
                return chat_id
    sender = content.get("from")
    return sender.get("id") if isinstance(sender, dict) and isinstance(sender.get("id"), int) else None


async def push_update(request: web.Request) -> web.Response:
    """POST /sandbox/updates: a raw update the sandbox does not model (group messages, channel
    posts, edited messages, inline taps...), delivered as given, if ``allowed_updates`` lets it."""
    body = await _body(request)
    kind, content = body.get("kind"), body.get("content")
    if not isinstance(kind, str) or not kind.isidentifier() or kind == "update_id":
        raise ControlError(400, "kind must name an Update field, e.g. \"message\" or \"edited_message\"")
    if not isinstance(content, dict):
        raise ControlError(400, "content must be the update's object (a JSON object)")
    world = _world(request)
    chat_id = _chat_of_raw(content)
    seq = world.record_event(chat_id, "user_update", None, update_kind=kind).seq if chat_id is not None else None
    update = world.enqueue(kind, content, (kind, chat_id), chat_id)
    return _ok({"update_id": update.update_id if update else None, "filtered": update is None,
                "seq": seq, "chat_id": chat_id, "update": update.body if update else None})


async def add_fault(request: web.Request) -> web.Response:
    """POST /sandbox/faults: fail, hang or flood the next N calls."""
    body = await _body(request)
    kind = body.pop("kind", "error")
    count = _int(body.pop("count", 1), "count")
    return _ok(_world(request).add_fault(kind, count, **body).to_dict())


async def list_faults(request: web.Request) -> web.Response:
    """GET /sandbox/faults."""
    return _ok([f.to_dict() for f in _world(request).faults])


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE /sandbox/faults."""
    _world(request).faults.clear()
    return _ok(True)


async def limits(request: web.Request) -> web.Response:
    """GET or PATCH /sandbox/limits."""
    world = _world(request)
    if request.method != "GET":
        world.limits.update(await _body(request))
    return _ok(world.limits.to_dict())


async def stats(request: web.Request) -> web.Response:
    """GET /sandbox/stats."""
    return _ok(_world(request).stats())


async def reset(request: web.Request) -> web.Response:
    """POST /sandbox/reset: forget everything (update ids keep counting)."""
    request.app[API_KEY].reset()
    return _ok(True)


def add_routes(app: web.Application) -> None:
    """Register the control API on ``app``."""
    app.router.add_get("/sandbox/health", health)
    app.router.add_post("/sandbox/users", create_user)
    app.router.add_get("/sandbox/users/{user_id}", get_user)
    app.router.add_post("/sandbox/users/{user_id}/messages", send_message)
    app.router.add_post("/sandbox/users/{user_id}/taps", tap)
    app.router.add_post("/sandbox/users/{user_id}/reply_button", reply_button)
    app.router.add_post("/sandbox/users/{user_id}/block", block)
    app.router.add_post("/sandbox/users/{user_id}/unblock", unblock)
    app.router.add_post("/sandbox/users/{user_id}/deactivate", deactivate)
    app.router.add_get("/sandbox/users/{user_id}/commands", user_commands)
    app.router.add_get("/sandbox/callbacks/{query_id}", callback)
    app.router.add_get("/sandbox/chats/{chat_id}", transcript)
    app.router.add_post("/sandbox/chats/{chat_id}/wait", wait)
    app.router.add_get("/sandbox/calls", calls)
    app.router.add_get("/sandbox/updates", updates)
    app.router.add_post("/sandbox/updates", push_update)
    app.router.add_post("/sandbox/faults", add_fault)
    app.router.add_get("/sandbox/faults", list_faults)
    app.router.add_delete("/sandbox/faults", clear_faults)
    app.router.add_get("/sandbox/limits", limits)
    app.router.add_patch("/sandbox/limits", limits)
    app.router.add_post("/sandbox/limits", limits)
    app.router.add_get("/sandbox/stats", stats)
    app.router.add_post("/sandbox/reset", reset)
