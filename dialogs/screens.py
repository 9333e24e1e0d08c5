"""Showing a dialog screen: never an edit that changes nothing, one answer per tap, old taps caught.

aiogram-dialog edits the screen after every event and compares the new text with what Telegram
gave back (plain text against our HTML, and reply markup never), so a tap that changes nothing
costs a Bot API call that fails with "message is not modified". We remember a digest of what
each recent message of the chat shows (in the chat's dialog state, under its hashed key) and
skip the edit, or the keyboard removal, when it would change nothing.
"""

from __future__ import annotations

import contextvars
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import CallbackQuery, Chat, Message
from aiogram_dialog import DialogManager
from aiogram_dialog.api.entities import NewMessage, OldMessage, ShowMode
from aiogram_dialog.api.internal import STACK_KEY
from aiogram_dialog.api.protocols import MessageNotModified
from aiogram_dialog.manager.message_manager import MessageManager

SHOWN = "coassess:shown"  # the FSM destiny of the record below
# Input a screen does not take, sent again within this many seconds of the last, gets no new copy
# of the screen: a burst of eight messages is answered once.
BURST_SECONDS = 30.0
KEEP = 5  # messages remembered per chat: the screen and a few older ones
NO_KEYBOARD = "-"

class AnsweredTaps:
    """The button taps already answered, shared by everything that may answer one: the dialog,
    a handler with a notice, and the runtime, which stops a spinner with "One moment…" when the
    tap waits too long. Telegram accepts one answer per tap and refuses a second ("query is too
    old ... or query ID is invalid"), so whoever claims a tap first answers it; the others don't.
    """

    def __init__(self, keep: int = 4096) -> None:
        self._ids: dict[str, None] = {}
        self._keep = keep

    def claim(self, callback_id: str) -> bool:
        """Mark a tap answered; False if it was already."""
        if callback_id in self._ids:
            return False
        self._ids[callback_id] = None
        while len(self._ids) > self._keep:  # the oldest first: a tap is answered within seconds
            del self._ids[next(iter(self._ids))]
        return True

    def forget(self, callback_id: str) -> None:
        """The tap's update is done: its id will not come again."""
        self._ids.pop(callback_id, None)


# The runtime sets this to its own record while it feeds an update (see bot.runtime.pump).
answered_taps: contextvars.ContextVar[AnsweredTaps | None] = contextvars.ContextVar("coassess_answered_taps",
                                                                                    default=None)
# Without a runtime's record (an update fed directly): the taps answered in this context.
_answered: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("coassess_answered", default=())


async def answer_tap(callback: CallbackQuery, text: str | None = None) -> None:
    """Answer a tap once (with a short notice shown over the chat, if given)."""
    if not _first_answer(callback.id):
        return
    await callback.answer(text[:200] if text else None)


def _first_answer(callback_id: str) -> bool:
    """Mark a tap answered; False if it was already."""
    shared = answered_taps.get()
    if shared is not None:
        return shared.claim(callback_id)
    done = _answered.get()
    if callback_id in done:
        return False
    _answered.set((*done[-15:], callback_id))
    return True


def stray_input(manager: DialogManager, hint: str) -> None:
    """Input this screen does not take: show the screen again with `hint` (in `dialog_data["hint"]`),
    once for a burst."""
    d = manager.dialog_data
    now = time.time()
    if d.get("hint") == hint and now - float(d.get("hint_at") or 0) < BURST_SECONDS:
        manager.show_mode = ShowMode.NO_UPDATE  # the screen with this hint is just above
    else:
        d["hint"] = hint
    d["hint_at"] = now


def digest(new_message: NewMessage) -> str:
    """What a message shows, in a few bytes; it ends in NO_KEYBOARD when it has no buttons."""
    markup = new_message.reply_markup
    shown = "\x00".join([new_message.text or "", str(new_message.parse_mode or ""),
                         markup.model_dump_json(exclude_none=True) if markup is not None else ""])
    buttons = bool(getattr(markup, "inline_keyboard", None))
    return hashlib.blake2b(shown.encode(), digest_size=12).hexdigest() + ("" if buttons else NO_KEYBOARD)


def _text_digest(text: str | None) -> str:
    return hashlib.blake2b((text or "").encode(), digest_size=8).hexdigest()


def _key(bot_id: int, chat_id: int) -> StorageKey:
    # the dialogs run in private chats, where the user id is the chat id
    return StorageKey(bot_id=bot_id, chat_id=chat_id, user_id=chat_id, destiny=SHOWN)


class ScreenMessageManager(MessageManager):
    """aiogram-dialog's message manager that knows what the chat's recent messages show."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage

    async def _shown(self, bot: Bot, chat: Chat) -> dict[str, str]:
        return dict((await self.storage.get_data(_key(bot.id, chat.id))).get("m") or {})

    async def _remember(self, bot: Bot, chat: Chat, message_id: int, what: str,
                        text: str | None = None, unknown: bool = False) -> None:
        """`what` the message shows now; `text`: its text as Telegram gave it back, if it is the
        screen (`unknown`: it is, but its text is not known, so no tap on it is judged outdated)."""
        record = await self.storage.get_data(_key(bot.id, chat.id))
        shown = dict(record.get("m") or {})
        shown.pop(str(message_id), None)
        shown[str(message_id)] = what
        screen = ([message_id, _text_digest(text)] if text is not None else None if unknown
                  else record.get("on"))
        await self.storage.set_data(_key(bot.id, chat.id), {"m": dict(list(shown.items())[-KEEP:]), "on": screen})

    async def answer_callback(self, bot: Bot, callback_query: CallbackQuery) -> None:
        if not _first_answer(callback_query.id):
            return
        await super().answer_callback(bot, callback_query)

    async def show_message(self, bot: Bot, new_message: NewMessage,
                           old_message: OldMessage | None) -> OldMessage:
        what = digest(new_message)
        editing = old_message is not None and new_message.show_mode not in (
            ShowMode.SEND, ShowMode.DELETE_AND_SEND, ShowMode.NO_UPDATE)
        if editing and old_message is not None and not new_message.media and not old_message.media_id:
            shown = await self._shown(bot, old_message.chat)
            if shown.get(str(old_message.message_id)) == what:
                return old_message  # the message shows this already
        try:
            result = await super().show_message(bot, new_message, old_message)
        except MessageNotModified:
            # shown already (an update retried after its first try's edit went out): what the
            # message shows is known, its text as Telegram keeps it is not
            if old_message is not None:
                await self._remember(bot, new_message.chat, old_message.message_id, what, unknown=True)
            raise
        await self._remember(bot, new_message.chat, result.message_id, what,
                             result.text if isinstance(result.text, str) else None)
        return result

    async def remove_inline_kbd(self, bot: Bot, old_message: OldMessage | None) -> Message | None:
        if old_message is None:
            return None
        shown = await self._shown(bot, old_message.chat)
        if shown.get(str(old_message.message_id), "").endswith(NO_KEYBOARD):
            return None  # nothing to take away
        result = await super().remove_inline_kbd(bot, old_message)
        await self._remember(bot, old_message.chat, old_message.message_id, NO_KEYBOARD)
        return result


Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class OlderMessageGate(BaseMiddleware):
    """A tap on an older message of the dialog (not the screen it shows now) changes nothing.

    The person gets `notice(data)` over the chat; the screen they are on stays as it is. A tap on
    a plain button (Skip, Continue, Done, Yes...) made while the message still showed an earlier
    screen (the second tap of a double tap: Telegram sends the message as the person saw it) is
    answered quietly: it would act on the next screen, unseen. (A choice's button carries its
    question's position; the survey itself tells such a tap apart.)
    """

    def __init__(self, notice: Callable[[dict[str, Any]], str | None]) -> None:
        self.notice = notice

    async def __call__(self, handler: Handler, event: Any, data: dict[str, Any]) -> Any:
        stack = data.get(STACK_KEY)
        message = getattr(event, "message", None)
        if (isinstance(event, CallbackQuery) and stack is not None and stack.last_message_id
                and message is not None and message.message_id != stack.last_message_id):
            await answer_tap(event, self.notice(data))
            return None
        if isinstance(event, CallbackQuery) and message is not None and await self._gone(event, data):
            await answer_tap(event)
            return None
        return await handler(event, data)

    @staticmethod
    async def _gone(callback: CallbackQuery, data: dict[str, Any]) -> bool:
        """A plain button tapped on an earlier screen of this message (known only where the screens
        are recorded)."""
        storage, bot, message = data.get("coassess_storage"), data.get("bot"), callback.message
        widget = (callback.data or "").partition("\x1d")[2]
        if storage is None or bot is None or not widget or ":" in widget or not isinstance(message, Message):
            return False
        screen = (await storage.get_data(_key(bot.id, message.chat.id))).get("on")
        return (bool(screen) and screen[0] == message.message_id and screen[1] is not None
                and screen[1] != _text_digest(message.text or message.caption))
