"""Async client for the sandbox's control API: simulate citizens and inspect what the bot did."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp


class SandboxError(Exception):
    """The control API refused a request.

    Attributes:
        status: HTTP status (400 bad input, 404 unknown user/message/button, 408 no answer in
            time, 409 the user blocked the bot).
        message: What was wrong.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SentUpdate:
    """What a citizen's action created.

    Attributes:
        update_id: The update the bot gets (None if ``allowed_updates`` filters it out).
        seq: Position in the chat timeline; pass as ``after`` to ``wait_for_bot``.
        chat_id: The private chat (the citizen's id).
        message_id: The citizen's message, or the bot message whose button was pressed.
        callback_query_id: Set for a button press.
        update: The update's JSON as the bot receives it.
    """

    update_id: int | None
    seq: int
    chat_id: int
    message_id: int | None = None
    callback_query_id: str | None = None
    update: dict[str, Any] | None = None


@dataclass(frozen=True)
class BotReply:
    """What the bot did in a chat after a citizen's action.

    Attributes:
        seq: The last event's sequence number (``after`` for the next wait).
        events: Timeline entries (``bot_message``, ``bot_edit``, ``bot_delete``,
            ``callback_answer``).
        messages: Current state of every message those events touched (see ``transcript``).
    """

    seq: int
    events: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        """Texts (or captions) of the touched messages that still exist, in order."""
        return [m["text"] or m["caption"] or "" for m in self.messages if not m["deleted"]]

    @property
    def last(self) -> dict[str, Any] | None:
        """The last touched message that still exists."""
        alive = [m for m in self.messages if not m["deleted"]]
        return alive[-1] if alive else None


def _sent(result: dict[str, Any]) -> SentUpdate:
    return SentUpdate(update_id=result.get("update_id"), seq=result["seq"],
                      chat_id=result["chat_id"], message_id=result.get("message_id"),
                      callback_query_id=result.get("callback_query_id"),
                      update=result.get("update"))


class SandboxClient:
    """Control-API client for a running sandbox.

    Args:
        base_url: The sandbox's ``http://host:port``.
        session: An aiohttp session to use (else one is created and closed by ``close``).
        timeout: Request timeout in seconds (``wait_for_bot`` adds its own wait).
    """

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None
        self._timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it."""
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def _request(self, method: str, path: str, *, json: Any = None,
                       params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        if self._session is None:
            # no cap on connections: every simulated citizen may be waiting for the bot at once
            # (aiohttp's default of 100 made the 101st citizen's wait time out, not the bot)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            self._own_session = True
        async with self._session.request(
            method, f"{self.base_url}/sandbox{path}", json=json,
            params={k: str(v) for k, v in (params or {}).items() if v is not None},
            timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
        ) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                raise SandboxError(response.status, await response.text()) from None
        if not body.get("ok"):
            raise SandboxError(response.status, body.get("error") or body.get("description", ""))
        return body["result"]

    # --- citizens ----------------------------------------------------------------------------

    async def create_user(self, user_id: int | None = None, *, first_name: str | None = None,
                          last_name: str | None = None, username: str | None = None,
                          language_code: str | None = "en", is_premium: bool | None = None,
                          phone_number: str | None = None) -> dict[str, Any]:
        """Create a citizen (or update one); their private chat id equals ``id``."""
        body = {"id": user_id, "first_name": first_name, "last_name": last_name,
                "username": username, "language_code": language_code,
                "is_premium": is_premium, "phone_number": phone_number}
        return await self._request("POST", "/users",
                                   json={k: v for k, v in body.items() if v is not None})

    async def get_user(self, user_id: int) -> dict[str, Any]:
        """A citizen, with ``has_chat`` (whether they ever wrote to the bot)."""
        return await self._request("GET", f"/users/{user_id}")

    async def _send(self, user_id: int, body: dict[str, Any]) -> SentUpdate:
        body = {k: v for k, v in body.items() if v is not None}
        return _sent(await self._request("POST", f"/users/{user_id}/messages", json=body))

    async def send_text(self, user_id: int, text: str, *,
                        reply_to_message_id: int | None = None) -> SentUpdate:
        """The citizen sends text; ``/start payload`` arrives with a bot_command entity."""
        return await self._send(user_id, {"type": "text", "text": text,
                                          "reply_to_message_id": reply_to_message_id})

    async def send_command(self, user_id: int, command: str,
                           payload: str | None = None) -> SentUpdate:
        """The citizen sends ``/command [payload]`` (e.g. a deep link's ``/start <payload>``)."""
        text = f"/{command.lstrip('/')}" + (f" {payload}" if payload else "")
        return await self.send_text(user_id, text)

    async def send_voice(self, user_id: int, duration: int = 3, *, data: bytes | None = None,
                         mime_type: str = "audio/ogg") -> SentUpdate:
        """The citizen records a voice note (stand-in Ogg bytes unless ``data`` is given)."""
        return await self._send(user_id, {"type": "voice", "duration": duration,
                                          "mime_type": mime_type, "data_b64": _b64(data)})

    async def send_sticker(self, user_id: int, emoji: str = "👍",
                           set_name: str | None = None) -> SentUpdate:
        """The citizen sends a sticker."""
        return await self._send(user_id, {"type": "sticker", "emoji": emoji,
                                          "set_name": set_name})

    async def send_photo(self, user_id: int, *, width: int = 640, height: int = 480,
                         data: bytes | None = None, caption: str | None = None) -> SentUpdate:
        """The citizen sends a photo (a generated PNG unless ``data`` is given)."""
        return await self._send(user_id, {"type": "photo", "width": width, "height": height,
                                          "data_b64": _b64(data), "caption": caption})

    async def send_location(self, user_id: int, latitude: float,
                            longitude: float) -> SentUpdate:
        """The citizen shares a location."""
        return await self._send(user_id, {"type": "location", "latitude": latitude,
                                          "longitude": longitude})

    async def send_contact(self, user_id: int, phone_number: str | None = None, *,
                           first_name: str | None = None, last_name: str | None = None,
                           contact_user_id: int | None = None) -> SentUpdate:
        """The citizen shares a contact (their own unless another ``contact_user_id``)."""
        return await self._send(user_id, {"type": "contact", "phone_number": phone_number,
                                          "first_name": first_name, "last_name": last_name,
                                          "user_id": contact_user_id})

    async def press_reply_button(self, user_id: int, text: str) -> SentUpdate:
        """The citizen presses a reply-keyboard button (contact/location buttons share them)."""
        return _sent(await self._request("POST", f"/users/{user_id}/reply_button",
                                         json={"text": text}))

    async def tap(self, user_id: int, message_id: int, *, data: str | None = None,
                  text: str | None = None, row: int | None = None,
                  col: int | None = None) -> SentUpdate:
        """The citizen presses an inline button by callback data, text, or row/col."""
        body = {"message_id": message_id, "data": data, "text": text, "row": row, "col": col}
        return _sent(await self._request("POST", f"/users/{user_id}/taps",
                                         json={k: v for k, v in body.items() if v is not None}))

    async def callback(self, callback_query_id: str) -> dict[str, Any]:
        """Whether the bot answered a press (``answered``, ``answer``, ``answered_at``)."""
        return await self._request("GET", f"/callbacks/{callback_query_id}")

    async def block(self, user_id: int) -> dict[str, Any]:
        """The citizen blocks the bot (the bot gets ``my_chat_member`` → kicked)."""
        return await self._request("POST", f"/users/{user_id}/block")

    async def unblock(self, user_id: int) -> dict[str, Any]:
        """The citizen unblocks the bot."""
        return await self._request("POST", f"/users/{user_id}/unblock")

    async def deactivate(self, user_id: int) -> dict[str, Any]:
        """The citizen deletes their account (sends get 403 "user is deactivated")."""
        return await self._request("POST", f"/users/{user_id}/deactivate")

    async def commands(self, user_id: int) -> list[dict[str, str]]:
        """The command menu this citizen sees (scope and language resolved)."""
        return await self._request("GET", f"/users/{user_id}/commands")

    # --- inspection --------------------------------------------------------------------------

    async def transcript(self, chat_id: int) -> dict[str, Any]:
        """All messages of a chat (current state, versions, deleted flag), events and calls."""
        return await self._request("GET", f"/chats/{chat_id}")

    async def bot_messages(self, chat_id: int, *,
                           include_deleted: bool = False) -> list[dict[str, Any]]:
        """The bot's messages in a chat, oldest first."""
        messages = (await self.transcript(chat_id))["messages"]
        return [m for m in messages
                if m["from"] == "bot" and (include_deleted or not m["deleted"])]

    async def wait_for_bot(self, chat_id: int, *, after: int | SentUpdate | None = None,
                           timeout: float = 5.0, idle: float = 0.08) -> BotReply:
        """Wait until the bot sent or edited a message after ``after`` and was idle ``idle`` s.

        Args:
            chat_id: The chat (citizen id).
            after: A ``SentUpdate``, an event ``seq``, or None for the citizen's last action.
            timeout: Give up after this many seconds (raises ``SandboxError`` with status 408).
            idle: Quiet period that means the bot finished answering.
        """
        seq = after.seq if isinstance(after, SentUpdate) else after
        body = {"after": seq, "timeout": timeout, "idle": idle}
        result = await self._request("POST", f"/chats/{chat_id}/wait", json=body,
                                     timeout=timeout + self._timeout)
        return BotReply(seq=result["seq"], events=result["events"], messages=result["messages"])

    async def calls(self, *, method: str | None = None, chat_id: int | None = None,
                    since: int | None = None) -> list[dict[str, Any]]:
        """The Bot API call log (``time``, ``method``, ``chat_id``, ``params``, ``ok``, ...)."""
        return await self._request("GET", "/calls", params={"method": method,
                                                            "chat_id": chat_id, "since": since})

    async def push_update(self, kind: str, content: dict[str, Any]) -> dict[str, Any]:
        """Deliver a raw update of any kind (``{"update_id", "filtered", "seq", "chat_id",
        "update"}``): what the sandbox does not model, e.g. a group message or an edited message.
        Filtered out (``update_id`` None) when the bot's ``allowed_updates`` excludes ``kind``."""
        return await self._request("POST", "/updates", json={"kind": kind, "content": content})

    async def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet."""
        return await self._request("GET", "/updates")

    async def stats(self) -> dict[str, Any]:
        """Counts per method and chat, 429s served, updates, webhook deliveries."""
        return await self._request("GET", "/stats")

    # --- faults and limits -------------------------------------------------------------------

    async def fail_next(self, count: int = 1, *, method: str | None = None, status: int = 500,
                        description: str = "Internal Server Error",
                        execute: bool = False) -> dict[str, Any]:
        """The next ``count`` calls (of ``method``) answer ``status`` with ``description``."""
        return await self._request("POST", "/faults", json={
            "kind": "error", "count": count, "method": method, "status": status,
            "description": description, "execute": execute})

    async def hang_next(self, count: int = 1, *, method: str | None = None,
                        seconds: float = 5.0, execute: bool = True) -> dict[str, Any]:
        """The next calls hang ``seconds`` (then are performed, unless ``execute`` is False)."""
        return await self._request("POST", "/faults", json={
            "kind": "hang", "count": count, "method": method, "seconds": seconds,
            "execute": execute})

    async def flood_next(self, count: int = 1, *, method: str | None = None,
                         retry_after: int = 5) -> dict[str, Any]:
        """The next calls answer 429 with ``retry_after``."""
        return await self._request("POST", "/faults", json={
            "kind": "flood", "count": count, "method": method, "retry_after": retry_after})

    async def clear_faults(self) -> None:
        """Remove all pending faults."""
        await self._request("DELETE", "/faults")

    async def set_limits(self, **limits: Any) -> dict[str, Any]:
        """Change limits at runtime (see ``Limits``: ``global_per_second``, ...)."""
        return await self._request("PATCH", "/limits", json=limits)

    async def get_limits(self) -> dict[str, Any]:
        """The current limits."""
        return await self._request("GET", "/limits")

    async def reset(self) -> None:
        """Forget citizens, chats, messages, updates, logs and faults."""
        await self._request("POST", "/reset")


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None
