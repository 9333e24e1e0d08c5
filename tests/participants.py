"""A simulated participant for dialog tests: aiogram-dialog's BotClient plus a recording bot."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiogram import Dispatcher
from aiogram.methods import AnswerCallbackQuery, SendMessage, TelegramMethod
from aiogram.types import Chat, Message, Update, User, Voice
from aiogram_dialog.test_tools import BotClient, MockMessageManager
from aiogram_dialog.test_tools.bot_client import FakeBot
from aiogram_dialog.test_tools.keyboard import InlineButtonDataLocator, InlineButtonTextLocator


class RecordingBot(FakeBot):
    """Answers every Bot API call locally and remembers it (plain sends outside dialogs too)."""

    def __init__(self) -> None:
        self.calls: list[TelegramMethod[Any]] = []
        self._next_id = 10_000

    async def __call__(self, method: TelegramMethod[Any], request_timeout: int | None = None) -> Any:
        self.calls.append(method)
        if isinstance(method, SendMessage):
            self._next_id += 1
            return Message(message_id=self._next_id, date=datetime.now(),
                           chat=Chat(id=int(method.chat_id), type="private"), text=method.text,
                           reply_markup=method.reply_markup)
        if isinstance(method, AnswerCallbackQuery):
            return True
        return True

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        return [str(m.text) for m in self.calls if isinstance(m, SendMessage)
                and (chat_id is None or int(m.chat_id) == chat_id)]


class Person:
    """One participant talking to a dispatcher through the dialog test tools."""

    def __init__(self, dp: Dispatcher, mm: MockMessageManager, bot: RecordingBot, user_id: int,
                 language_code: str | None = None, first_name: str = "Amina") -> None:
        self.client = BotClient(dp, user_id=user_id, chat_id=user_id, bot=bot)
        self.client.user = User(id=user_id, is_bot=False, first_name=first_name,
                                last_name="Testperson", username=f"user{user_id}",
                                language_code=language_code)
        self.mm = mm
        self.bot = bot
        self.user_id = user_id

    @property
    def message(self) -> Message:
        """The newest dialog message shown to this person."""
        mine = [m for m in self.mm.sent_messages if m.chat.id == self.user_id and (m.text or m.caption)]
        assert mine, "no dialog message shown yet"
        return mine[-1]

    @property
    def text(self) -> str:
        return self.message.text or ""

    def buttons(self) -> list[str]:
        markup = self.message.reply_markup
        return [b.text for row in markup.inline_keyboard for b in row] if markup else []

    def button_data(self) -> list[str]:
        markup = self.message.reply_markup
        return [b.callback_data or "" for row in markup.inline_keyboard for b in row] if markup else []

    async def send(self, text: str) -> None:
        await self.client.send(text)

    async def tap(self, label: str) -> str:
        """Tap the button whose label matches exactly (a regex-escaped full match)."""
        return await self.client.click(self.message, InlineButtonTextLocator(re.escape(label)))

    async def tap_item(self, widget: str, item: str) -> str:
        """Tap by callback data `<widget>:<item>` (language-independent)."""
        return await self.client.click(self.message, InlineButtonDataLocator(
            r".*\x1d" + re.escape(f"{widget}:{item}")))

    async def tap_button(self, widget: str) -> str:
        return await self.client.click(self.message, InlineButtonDataLocator(r".*\x1d" + re.escape(widget)))

    async def raw_callback(self, data: str) -> str:
        from aiogram.types import InlineKeyboardButton

        cb = self.client._new_callback(self.message, InlineKeyboardButton(text="x", callback_data=data))
        await self.client.dp.feed_update(self.client.bot, Update(
            update_id=self.client._new_update_id(), callback_query=cb))
        return cb.id

    async def send_update(self, **message_fields: Any) -> None:
        msg = Message(message_id=self.client._new_message_id(), date=datetime.now(),
                      chat=self.client.chat, from_user=self.client.user, **message_fields)
        await self.client.dp.feed_update(self.client.bot, Update(
            update_id=self.client._new_update_id(), message=msg))

    async def to_first_question(self) -> None:
        """Start the example campaign, agree, answer the groups, pass the welcome screen."""
        await self.send("/start clinic-access")
        await self.tap_button("y")
        for item in ("0.prefer_not_to_say", "1.over64", "2.yes"):
            await self.tap_item("g", item)
        await self.tap_button("c")
        assert "2/8" in self.text

    async def send_voice(self, duration: int = 7) -> None:
        await self.send_update(voice=Voice(file_id=f"voice-{self.user_id}-{duration}",
                                           file_unique_id=f"u{self.user_id}{duration}", duration=duration))
