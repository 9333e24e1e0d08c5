"""The sandbox's in-memory world: citizens, chats, messages, pending updates, limits and faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import telegram

from bot.sandbox import objects
from bot.sandbox.errors import ControlError
from bot.sandbox.files import FileStore, make_png, photo_sizes, stand_in_sticker, stand_in_voice
from bot.sandbox.formatting import MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH, entities_from_user_text
from bot.sandbox.markup import find_inline_button

#: Update types a bot gets when it names none (Telegram's default for ``allowed_updates``).
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
#: Chat events that count as the bot answering.
BOT_EVENTS = frozenset({"bot_message", "bot_edit", "bot_delete", "callback_answer"})
#: Bot events that ``wait_for_bot`` waits for.
REPLY_EVENTS = frozenset({"bot_message", "bot_edit"})
#: User events that start a new exchange (the default ``after`` of ``wait_for_bot``).
USER_EVENTS = frozenset({"user_message", "user_callback"})


@dataclass
class Limits:
    """Runtime-adjustable limits. ``None`` for a rate switches that limit off.

    Attributes:
        global_per_second: Messages per second for the whole bot (Telegram: about 30).
        per_chat_per_second: Sustained messages per second in one chat (Telegram: about 1).
        per_chat_burst: Messages one chat may take at once before the per-chat rate applies.
        callback_timeout: Seconds within which a callback query must be answered.
        webhook_timeout: Seconds the webhook may take to answer before the try counts as failed.
        webhook_retry_base: Delay before the second retry; doubles each time (the first retry
            is immediate, as on Telegram).
        webhook_retry_max: Longest delay between retries.
    """

    global_per_second: float | None = 30.0
    per_chat_per_second: float | None = 1.0
    per_chat_burst: int = 3
    callback_timeout: float = 15.0
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 1.0
    webhook_retry_max: float = 30.0

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply changes by field name; refuse unknown names."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ControlError(400, f"unknown limit(s) {sorted(unknown)}; known: {sorted(known)}")
        for name, value in changes.items():
            optional = name in ("global_per_second", "per_chat_per_second")
            if value is None and optional:
                setattr(self, name, None)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ControlError(400, f"limit {name} must be a number >= 0"
                                        + (" or null (off)" if optional else "")
                                        + f", got {value!r}")
            setattr(self, name, int(value) if name == "per_chat_burst" else float(value))

    def to_dict(self) -> dict[str, Any]:
        """The limits as JSON."""
        return asdict(self)


class TokenBucket:
    """A token bucket: ``capacity`` sends at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self.tokens = self.capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def delay(self, now: float) -> float:
        """Seconds until one token is available (0 when one is)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        """Spend one token."""
        self._refill(now)
        self.tokens -= 1


class FloodControl:
    """Telegram's flood limits: one bucket for the bot, one per chat."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._global: TokenBucket | None = None
        self._chats: dict[int, TokenBucket] = {}
        self._shape: tuple[Any, ...] = ()

    def _buckets(self, chat_id: int | None, now: float) -> list[TokenBucket]:
        shape = (self.limits.global_per_second, self.limits.per_chat_per_second,
                 self.limits.per_chat_burst)
        if shape != self._shape:  # limits changed: start afresh
            self._shape, self._global, self._chats = shape, None, {}
        buckets = []
        if self.limits.global_per_second:
            if self._global is None:
                rate = self.limits.global_per_second
                self._global = TokenBucket(rate, rate, now)
            buckets.append(self._global)
        if self.limits.per_chat_per_second and chat_id is not None:
            bucket = self._chats.get(chat_id)
            if bucket is None:
                bucket = TokenBucket(self.limits.per_chat_per_second,
                                     self.limits.per_chat_burst, now)
                self._chats[chat_id] = bucket
            buckets.append(bucket)
        return buckets

    def retry_after(self, chat_id: int | None, now: float) -> int:
        """Whole seconds to wait before a send to ``chat_id`` is allowed (0: allowed now)."""
        delay = max((b.delay(now) for b in self._buckets(chat_id, now)), default=0.0)
        return max(1, math.ceil(delay)) if delay > 0 else 0

    def take(self, chat_id: int | None, now: float) -> None:
        """Count one send."""
        for bucket in self._buckets(chat_id, now):
            bucket.take(now)

    def reset(self) -> None:
        """Forget all sends."""
        self._shape = ()


class Signal:
    """Wakes every waiter on each ``notify()``; waiters then re-check their condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake all current waiters."""
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        """The event the next ``notify()`` sets; take it before checking a condition."""
        return self._event

    async def wait(self, timeout: float | None, event: asyncio.Event | None = None) -> None:
        """Wait for the next ``notify()`` (or ``event``) or ``timeout`` seconds."""
        event = event or self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


@dataclass
class SandboxUser:
    """A simulated citizen. Their private chat with the bot has the same id."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_premium: bool | None = None
    phone_number: str | None = None
    blocked: bool = False
    deactivated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The citizen as JSON for the control API."""
        return asdict(self)


@dataclass
class PrivateChat:
    """The bot's private chat with a citizen, known to the bot once they wrote to it."""

    id: int
    user_id: int
    chat_instance: str
    reply_keyboard: dict[str, Any] | None = None


@dataclass
class StoredMessage:
    """A message of a chat in its current state, with its earlier versions."""

    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    kind: str = "text"
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    parse_mode: str | None = None
    source: str | None = None
    media: dict[str, Any] = field(default_factory=dict)
    inline_markup: dict[str, Any] | None = None
    attached_keyboard: dict[str, Any] | None = None
    reply_to: int | None = None
    protect_content: bool = False
    method: str | None = None
    edit_date: int | None = None
    edit_count: int = 0
    deleted: bool = False
    deleted_at: float | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        """What a person sees of it now (for the version history)."""
        return {
            "text": self.text, "entities": self.entities, "caption": self.caption,
            "caption_entities": self.caption_entities, "parse_mode": self.parse_mode,
            "source": self.source, "media": dict(self.media), "reply_markup": self.inline_markup,
            "time": time.time(),
        }


@dataclass
class PendingUpdate:
    """An update waiting for the bot to confirm it."""

    update_id: int
    kind: str
    body: dict[str, Any]
    queue: tuple[Any, ...]
    chat_id: int | None
    created: float


@dataclass
class ChatEvent:
    """Something that happened in a chat, in one global sequence (``seq``)."""

    seq: int
    time: float
    chat_id: int
    kind: str
    message_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON."""
        return asdict(self)


@dataclass
class CallRecord:
    """One Bot API call as the sandbox answered it."""

    seq: int
    time: float
    method: str
    chat_id: int | None
    params: dict[str, Any]
    ok: bool
    error_code: int | None
    description: str | None
    result: Any
    duration: float
    source: str = "http"
    fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The call as JSON."""
        return asdict(self)


@dataclass
class CallbackRecord:
    """A button press and what the bot answered."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    created_at: float
    answered: bool = False
    answered_at: float | None = None
    answer: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The press as JSON."""
        return asdict(self)


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` matching Bot API calls.

    Attributes:
        kind: ``error`` (answer ``status``), ``hang`` (wait ``seconds``), ``flood`` (429).
        method: Only calls of this method (any case); None matches every method.
        execute: Perform the call anyway (``error``: before answering the error; ``hang``:
            after the wait), which is how a client's retry makes a duplicate.
    """

    id: int
    kind: Literal["error", "hang", "flood"]
    remaining: int
    method: str | None = None
    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int = 5
    seconds: float = 5.0
    execute: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fault as JSON."""
        return asdict(self)


@dataclass
class WebhookConfig:
    """The webhook set by the bot."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    has_custom_certificate: bool = False
    last_error_date: int | None = None
    last_error_message: str | None = None


def peak_rate(calls: Iterable[Mapping[str, Any] | CallRecord], window: float = 1.0) -> int:
    """The largest number of ``calls`` that fall within any ``window`` seconds.

    Args:
        calls: Call records (objects or the control API's dicts, which carry ``time``).
        window: Window length in seconds.
    """
    times = sorted(c.time if isinstance(c, CallRecord) else float(c["time"]) for c in calls)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class World:
    """Everything the sandbox knows, mutated by Bot API calls and simulated citizens.

    Args:
        token: The bot token; its numeric prefix is the bot's user id.
        limits: Flood, callback and webhook limits (defaults: Telegram's).
        bot_first_name: The bot's display name in getMe.
        bot_username: The bot's username in getMe.
        strict_html: Refuse a bare ``&`` in HTML text (see ``formatting.format_text``).
    """

    def __init__(
        self,
        token: str,
        *,
        limits: Limits | None = None,
        bot_first_name: str = "Coassess Sandbox",
        bot_username: str = "coassess_sandbox_bot",
        strict_html: bool = True,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        self.strict_html = strict_html
        self.limits = limits or Limits()
        self._initial_limits = self.limits.to_dict()
        self.flood = FloodControl(self.limits)
        self.files = FileStore()
        self.changed = Signal()
        self.updates_arrived = Signal()
        # Counters survive reset() so that a running poller's offset stays meaningful.
        self._next_update_id = 1
        self._next_message_id = 1
        self._seq = 0
        self._next_fault_id = 1
        self._clear()

    def _clear(self) -> None:
        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[int, PrivateChat] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.pending: list[PendingUpdate] = []
        self.allowed_updates: list[str] | None = None
        self.webhook: WebhookConfig | None = None
        self.callbacks: dict[str, CallbackRecord] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.bot_texts: dict[tuple[str, str], str] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.events: list[ChatEvent] = []
        # the same events per chat, so a waiter scans its own chat's timeline only
        self.chat_events: dict[int, list[ChatEvent]] = {}
        self.calls: list[CallRecord] = []
        self.faults: list[Fault] = []
        self.counters: dict[str, Counter[Any]] = {
            "calls_by_method": Counter(), "calls_by_chat": Counter(),
            "errors_by_code": Counter(), "updates": Counter(), "webhook": Counter(),
        }
        self.served_429 = 0
        self._activity: dict[int, list[float]] = {}

    def reset(self) -> None:
        """Forget citizens, chats, messages, updates, logs and faults; restore the limits."""
        self._clear()
        self.limits.update(self._initial_limits)
        self.flood.reset()
        self.changed.notify()

    # --- sequence numbers ----------------------------------------------------------------

    def next_message_id(self) -> int:
        """The next message id: one sequence for all of a bot's private chats, as on Telegram."""
        value = self._next_message_id
        self._next_message_id += 1
        return value

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # --- citizens and chats --------------------------------------------------------------

    def upsert_user(self, user_id: int | None = None, **changes: Any) -> SandboxUser:
        """Create a citizen (or update the given fields of an existing one)."""
        allowed = {"first_name", "last_name", "username", "language_code", "is_premium",
                   "phone_number"}
        unknown = set(changes) - allowed
        if unknown:
            raise ControlError(400, f"unknown user field(s) {sorted(unknown)}")
        if user_id is None:
            user_id = max([*self.users, 100000000]) + 1
        if not isinstance(user_id, int) or user_id <= 0 or user_id == self.bot_id:
            raise ControlError(400, f"user id must be a positive integer other than the bot's, "
                                    f"got {user_id!r}")
        person = self.users.get(user_id)
        if person is None:
            person = SandboxUser(id=user_id, first_name=changes.pop("first_name", None)
                                 or f"Citizen {user_id}")
            self.users[user_id] = person
        for name, value in changes.items():
            if value is not None:
                setattr(person, name, value)
        return person

    def user(self, user_id: int) -> SandboxUser:
        """The citizen with this id; refuse unknown ids."""
        person = self.users.get(user_id)
        if person is None:
            raise ControlError(404, f"no user {user_id}; create it first with create_user")
        return person

    def user_json(self, user_id: int) -> dict[str, Any] | None:
        """The Bot API ``User`` of a known citizen (for text_mention entities)."""
        person = self.users.get(user_id)
        return objects.as_json(objects.user(person)) if person else None

    def _open_chat(self, person: SandboxUser) -> PrivateChat:
        private = self.chats.get(person.id)
        if private is None:
            private = PrivateChat(id=person.id, user_id=person.id,
                                  chat_instance=str(secrets.randbits(63) - 2**62))
            self.chats[person.id] = private
        return private

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """A message of this chat that was not deleted, or None."""
        msg = self.messages.get(message_id)
        if msg is None or msg.chat_id != chat_id or msg.deleted:
            return None
        return msg

    def store(self, msg: StoredMessage) -> None:
        """Add a new message."""
        self.messages[msg.message_id] = msg

    # --- events, activity and calls --------------------------------------------------------

    def record_event(self, chat_id: int, kind: str, message_id: int | None = None,
                     **detail: Any) -> ChatEvent:
        """Append to the chat timeline and wake waiters."""
        event = ChatEvent(self._next_seq(), time.time(), chat_id, kind, message_id, detail)
        self.events.append(event)
        self.chat_events.setdefault(chat_id, []).append(event)
        self.changed.notify()
        return event

    def begin_activity(self, chat_id: int | None) -> None:
        """A Bot API call about ``chat_id`` started."""
        if chat_id is not None:
            entry = self._activity.setdefault(chat_id, [0, 0.0])
            entry[0] += 1
            entry[1] = time.monotonic()

    def end_activity(self, chat_id: int | None) -> None:
        """A Bot API call about ``chat_id`` finished."""
        if chat_id is not None and chat_id in self._activity:
            entry = self._activity[chat_id]
            entry[0] = max(0, entry[0] - 1)
            entry[1] = time.monotonic()
            self.changed.notify()

    def idle_for(self, chat_id: int) -> float:
        """Seconds since the bot last touched this chat (0 while a call is in flight)."""
        in_flight, last = self._activity.get(chat_id, [0, 0.0])
        return 0.0 if in_flight else time.monotonic() - last

    def record_call(self, record: CallRecord) -> None:
        """Log a Bot API call and count it."""
        self.calls.append(record)
        self.counters["calls_by_method"][record.method] += 1
        if record.chat_id is not None:
            self.counters["calls_by_chat"][record.chat_id] += 1
        if not record.ok:
            self.counters["errors_by_code"][record.error_code] += 1
            if record.error_code == 429:
                self.served_429 += 1
        self.changed.notify()

    def new_call_seq(self) -> int:
        """A sequence number for a call record."""
        return self._next_seq()

    # --- updates ---------------------------------------------------------------------------

    def accepts(self, kind: str) -> bool:
        """Whether the bot asked for updates of this kind (``allowed_updates``)."""
        if not self.allowed_updates:
            return kind not in NOT_BY_DEFAULT
        return kind in self.allowed_updates

    def enqueue(self, kind: str, content: dict[str, Any], queue: tuple[Any, ...],
                chat_id: int | None) -> PendingUpdate | None:
        """Create an update if the bot accepts its kind; None when it was filtered out."""
        if not self.accepts(kind):
            self.counters["updates"]["filtered"] += 1
            return None
        update = PendingUpdate(self._next_update_id, kind,
                               {"update_id": self._next_update_id, kind: content}, queue,
                               chat_id, time.time())
        self._next_update_id += 1
        self.pending.append(update)
        self.counters["updates"][kind] += 1
        self.updates_arrived.notify()
        self.changed.notify()
        return update

    def confirm_below(self, offset: int) -> None:
        """Forget updates with ids below ``offset`` (getUpdates' confirmation)."""
        self.pending = [u for u in self.pending if u.update_id >= offset]

    def keep_last(self, count: int) -> None:
        """Forget all but the last ``count`` updates (a negative getUpdates offset)."""
        self.pending = self.pending[-count:] if count else []

    def drop(self, update: PendingUpdate) -> None:
        """Forget one update (delivered to the webhook)."""
        if update in self.pending:
            self.pending.remove(update)
            self.changed.notify()

    # --- citizens acting -------------------------------------------------------------------

    def _active_user(self, user_id: int) -> SandboxUser:
        person = self.user(user_id)
        if person.blocked:
            raise ControlError(409, f"user {user_id} has blocked the bot; unblock first")
        if person.deactivated:
            raise ControlError(409, f"user {user_id} is deactivated")
        return person

    def user_sends(self, user_id: int, content: Mapping[str, Any]) -> dict[str, Any]:
        """A citizen sends a message to the bot; returns the created update's summary.

        ``content["type"]`` is one of text, voice, sticker, photo, location, contact.
        """
        person = self._active_user(user_id)
        kind = content.get("type", "text")
        msg = StoredMessage(message_id=0, chat_id=person.id, from_bot=False,
                            date=int(time.time()), kind=kind)
        if kind == "text":
            text = str(content.get("text", "")).strip(" \n")
            if not text:
                raise ControlError(400, "MESSAGE_EMPTY: a person cannot send a blank text")
            if len(text) > MAX_TEXT_LENGTH:
                raise ControlError(400, f"text has {len(text)} characters; Telegram's apps "
                                        f"split at {MAX_TEXT_LENGTH}")
            msg.text = text
            msg.entities = content.get("entities") or entities_from_user_text(text)
        elif kind == "voice":
            duration = int(content.get("duration", 3))
            data = content.get("data") or stand_in_voice(duration)
            stored = self.files.add("voice", data, mime_type=content.get("mime_type")
                                    or "audio/ogg", duration=duration)
            msg.media["voice"] = stored.file_id
        elif kind == "sticker":
            stored = self.files.add("sticker", stand_in_sticker(), width=512, height=512,
                                    extra={"emoji": content.get("emoji") or "👍",
                                           "set_name": content.get("set_name")
                                           or "CoassessSandbox"})
            msg.media["sticker"] = stored.file_id
        elif kind == "photo":
            width = int(content.get("width", 640))
            height = int(content.get("height", 480))
            data = content.get("data") or make_png(width, height)
            msg.media["photo"] = self.store_photo(data, width, height)
            caption = str(content.get("caption") or "").strip(" \n")
            if len(caption) > MAX_CAPTION_LENGTH:
                raise ControlError(400, f"caption has {len(caption)} characters; the limit is "
                                        f"{MAX_CAPTION_LENGTH}")
            if caption:
                msg.caption = caption
                msg.caption_entities = entities_from_user_text(caption)
        elif kind == "location":
            latitude, longitude = float(content["latitude"]), float(content["longitude"])
            if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
                raise ControlError(400, "Invalid location specified")
            msg.media["location"] = {"latitude": latitude, "longitude": longitude}
        elif kind == "contact":
            phone = str(content.get("phone_number") or person.phone_number or "")
            if not phone:
                raise ControlError(400, "contact needs phone_number (or the user's own)")
            msg.media["contact"] = {
                "phone_number": phone,
                "first_name": content.get("first_name") or person.first_name,
                "last_name": content.get("last_name", person.last_name),
                "user_id": content.get("user_id", person.id),
            }
        else:
            raise ControlError(400, f"unknown message type {kind!r}; use text, voice, sticker, "
                                    "photo, location or contact")
        reply_to = content.get("reply_to_message_id")
        if reply_to is not None:
            if self.message(person.id, int(reply_to)) is None:
                raise ControlError(404, f"message {reply_to} not found in chat {person.id}")
            msg.reply_to = int(reply_to)
        private = self._open_chat(person)
        msg.message_id = self.next_message_id()
        self.store(msg)
        keyboard = private.reply_keyboard
        if keyboard and keyboard.get("one_time_keyboard"):
            private.reply_keyboard = None  # a one-time keyboard hides after it is used
        event = self.record_event(person.id, "user_message", msg.message_id, type=kind)
        update = self.enqueue("message", objects.message_json(self, msg), ("message", person.id),
                              person.id)
        return {"update_id": update.update_id if update else None, "seq": event.seq,
                "chat_id": person.id, "message_id": msg.message_id,
                "update": update.body if update else None}

    def store_photo(self, data: bytes, width: int, height: int) -> list[str]:
        """Store a photo in the sizes Telegram lists; returns their file_ids."""
        ids = []
        for size_width, size_height in photo_sizes(width, height):
            stored = self.files.add("photo", data, width=size_width, height=size_height,
                                    mime_type="image/jpeg")
            ids.append(stored.file_id)
        return ids

    def user_taps(self, user_id: int, message_id: int, *, data: str | None = None,
                  text: str | None = None, row: int | None = None,
                  col: int | None = None) -> dict[str, Any]:
        """A citizen presses an inline button of a bot message; returns the press's summary."""
        person = self._active_user(user_id)
        msg = self.message(person.id, message_id)
        if msg is None or not msg.from_bot:
            raise ControlError(404, f"no bot message {message_id} in chat {person.id}")
        if data is None and text is None and row is None:
            raise ControlError(400, "name the button by data, text or row/col")
        button = find_inline_button(msg.inline_markup, data=data, text=text, row=row, col=col)
        if button is None:
            shown = [[b["text"] for b in r] for r in (msg.inline_markup or {}).get(
                "inline_keyboard", [])]
            raise ControlError(404, f"message {message_id} has no such button "
                                    f"(data={data!r}, text={text!r}, row={row}, col={col}); "
                                    f"buttons: {shown}")
        if "callback_data" not in button:
            raise ControlError(400, f"button {button['text']!r} is not a callback button "
                                    f"({sorted(set(button) - {'text'})}); Telegram sends the "
                                    "bot nothing for it")
        query_id = str(secrets.randbits(63))
        record = CallbackRecord(query_id, person.id, person.id, message_id,
                                button["callback_data"], time.monotonic(), time.time())
        self.callbacks[query_id] = record
        query = telegram.CallbackQuery(
            id=query_id,
            from_user=objects.user(person),
            chat_instance=self.chats[person.id].chat_instance,
            message=objects.message(self, msg),
            data=button["callback_data"],
        )
        event = self.record_event(person.id, "user_callback", message_id,
                                  data=button["callback_data"], callback_query_id=query_id)
        update = self.enqueue("callback_query", objects.as_json(query),
                              ("callback_query", person.id), person.id)
        return {"update_id": update.update_id if update else None, "seq": event.seq,
                "chat_id": person.id, "message_id": message_id, "callback_query_id": query_id,
                "update": update.body if update else None}

    def press_reply_button(self, user_id: int, text: str) -> dict[str, Any]:
        """A citizen presses a button of the reply keyboard the bot shows them."""
        person = self._active_user(user_id)
        private = self.chats.get(person.id)
        keyboard = private.reply_keyboard if private else None
        if not keyboard:
            raise ControlError(404, f"the bot shows user {user_id} no reply keyboard")
        for row in keyboard["keyboard"]:
            for button in row:
                if button["text"] != text:
                    continue
                if button.get("request_contact"):
                    return self.user_sends(user_id, {
                        "type": "contact",
                        "phone_number": person.phone_number or f"+1555{person.id % 10**7:07d}",
                    })
                if button.get("request_location"):
                    return self.user_sends(user_id, {"type": "location", "latitude": 51.5072,
                                                     "longitude": -0.1276})
                return self.user_sends(user_id, {"type": "text", "text": text})
        shown = [[b["text"] for b in r] for r in keyboard["keyboard"]]
        raise ControlError(404, f"no reply button {text!r}; buttons: {shown}")

    def set_blocked(self, user_id: int, blocked: bool) -> dict[str, Any]:
        """A citizen blocks or unblocks the bot; the bot gets ``my_chat_member``."""
        person = self.user(user_id)
        if person.blocked == blocked:
            return {"user": person.to_dict(), "update_id": None}
        person.blocked = blocked
        update = None
        if person.id in self.chats:
            me = objects.bot_user(self)
            member = telegram.ChatMemberMember(user=me)
            banned = telegram.ChatMemberBanned(user=me, until_date=objects.timestamp(0))
            change = telegram.ChatMemberUpdated(
                chat=objects.chat(self.chats[person.id], person),
                from_user=objects.user(person),
                date=dt.datetime.now(dt.UTC),
                old_chat_member=banned if not blocked else member,
                new_chat_member=banned if blocked else member,
            )
            self.record_event(person.id, "user_block" if blocked else "user_unblock")
            update = self.enqueue("my_chat_member", objects.as_json(change),
                                  ("my_chat_member", person.id), person.id)
        return {"user": person.to_dict(), "update_id": update.update_id if update else None}

    # --- faults ----------------------------------------------------------------------------

    def add_fault(self, kind: str, count: int = 1, **options: Any) -> Fault:
        """Make the next ``count`` matching calls fail (see ``Fault``)."""
        if kind not in ("error", "hang", "flood"):
            raise ControlError(400, f"fault kind must be error, hang or flood, got {kind!r}")
        allowed = {"method", "status", "description", "retry_after", "seconds", "execute"}
        unknown = set(options) - allowed
        if unknown:
            raise ControlError(400, f"unknown fault option(s) {sorted(unknown)}")
        options = {k: v for k, v in options.items() if v is not None}
        if kind == "hang":
            options.setdefault("execute", True)
        if "method" in options:
            options["method"] = str(options["method"]).lower()
        fault = Fault(self._next_fault_id, kind, int(count), **options)  # type: ignore[arg-type]
        self._next_fault_id += 1
        self.faults.append(fault)
        return fault

    def take_fault(self, method: str) -> Fault | None:
        """The first fault matching this call, counted down (None: answer normally)."""
        for fault in self.faults:
            if fault.method is None or fault.method == method.lower():
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- views -------------------------------------------------------------------------------

    def message_view(self, msg: StoredMessage) -> dict[str, Any]:
        """A message as the control API shows it: current state, history and Bot API JSON."""
        view = {
            "message_id": msg.message_id, "chat_id": msg.chat_id,
            "from": "bot" if msg.from_bot else "user", "date": msg.date, "kind": msg.kind,
            "text": msg.text, "entities": msg.entities, "caption": msg.caption,
            "caption_entities": msg.caption_entities, "parse_mode": msg.parse_mode,
            "source": msg.source, "reply_markup": msg.inline_markup,
            "keyboard": msg.attached_keyboard, "reply_to_message_id": msg.reply_to,
            "media": msg.media, "method": msg.method, "edited": msg.edit_count > 0,
            "edit_count": msg.edit_count, "edit_date": msg.edit_date, "deleted": msg.deleted,
            "deleted_at": msg.deleted_at, "versions": msg.versions,
        }
        view["message"] = objects.message_json(self, msg) if msg.chat_id in self.chats else None
        return view

    def transcript(self, chat_id: int) -> dict[str, Any]:
        """Every message of a chat (bot's and citizen's, deleted ones marked) and its events."""
        private = self.chats.get(chat_id)
        if private is None:
            self.user(chat_id)
        messages = [self.message_view(m) for m in self.messages.values() if m.chat_id == chat_id]
        return {
            "chat_id": chat_id,
            "reply_keyboard": private.reply_keyboard if private else None,
            "messages": messages,
            "events": [e.to_dict() for e in self.events if e.chat_id == chat_id],
            "calls": [c.to_dict() for c in self.calls if c.chat_id == chat_id],
        }

    def stats(self) -> dict[str, Any]:
        """Counts per method, per chat, 429s served, updates and webhook deliveries."""
        return {
            "calls_by_method": dict(self.counters["calls_by_method"]),
            "calls_by_chat": {str(k): v for k, v in self.counters["calls_by_chat"].items()},
            "errors_by_code": {str(k): v for k, v in self.counters["errors_by_code"].items()},
            "served_429": self.served_429,
            "updates": dict(self.counters["updates"]),
            "pending_updates": len(self.pending),
            "webhook": dict(self.counters["webhook"]),
            "users": len(self.users),
            "messages": len(self.messages),
        }
