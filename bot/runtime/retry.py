"""Retrying Bot API calls: wait what Telegram asks on 429, back off on 5xx and network errors."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage, SendVoice, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import Chat, InlineKeyboardMarkup, Message
from pydantic import ValidationError

log = logging.getLogger(__name__)


class RetryRequests(BaseRequestMiddleware):
    """Up to `attempts` tries per call; a callback answer is not retried after a long wait (too old)."""

    def __init__(self, attempts: int = 6, max_wait: float = 60.0) -> None:
        self.attempts = attempts
        self.max_wait = max_wait

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                return await _flood_as_retry_after(make_request, bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_wait:
                    raise
                if isinstance(method, AnswerCallbackQuery) and exc.retry_after > 5:
                    raise
                log.info("Telegram asked to wait %s s before %s", exc.retry_after, type(method).__name__)
                await asyncio.sleep(exc.retry_after + random.uniform(0, 0.2))
            except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as exc:
                # ClientDecodeError: a 5xx whose body is a proxy's HTML page, not Telegram's JSON
                if attempt == self.attempts or isinstance(getattr(exc, "original", None), ValidationError):
                    raise
                log.info("%s failed (%s); retrying in %.1f s", type(method).__name__,
                         exc.__class__.__name__, delay)
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")


async def _flood_as_retry_after(make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                                method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
    """A 429 is TelegramRetryAfter even without `parameters.retry_after`.

    The Bot API documents `parameters` and its `retry_after` as optional; aiogram raises a bare
    TelegramAPIError for a 429 that lacks them. The wait is then read from the description
    ("Too Many Requests: retry after 7"), or is 1 s.
    """
    try:
        return await make_request(bot, method)
    except TelegramAPIError as exc:
        if type(exc) is not TelegramAPIError or not exc.message.lower().startswith("too many requests"):
            raise
        found = re.search(r"retry after (\d+)", exc.message, re.IGNORECASE)
        raise TelegramRetryAfter(method=method, message=exc.message,
                                 retry_after=int(found.group(1)) if found else 1) from None


QUERY_TOO_OLD = "query is too old"


class ExpiredCallbackAnswer(BaseRequestMiddleware):
    """answerCallbackQuery after Telegram's answer window (or twice) is refused with 400 "query is too
    old and response timeout expired or query ID is invalid". The answer only stops the button's
    spinner, which the app has stopped by then, so the refusal is not a failure of the update: the
    call counts as done and the handler goes on with its real work (store the answer, next screen).
    """

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if not isinstance(method, AnswerCallbackQuery) or QUERY_TOO_OLD not in exc.message.lower():
                raise
            log.info("a button tap was answered too late for Telegram (query too old); going on")
            return True  # type: ignore[return-value]  # answerCallbackQuery's documented result
        except TelegramRetryAfter:
            if not isinstance(method, AnswerCallbackQuery):
                raise
            # after the wait the query would be too old anyway (RetryRequests waits only short ones)
            log.info("Telegram asked to wait before answering a button tap; left unanswered")
            return True  # type: ignore[return-value]


class CommitBeforeTelegram(BaseRequestMiddleware):
    """Commit the update's database work before talking to Telegram.

    A transaction must not stay open across network calls (and 429 waits): on SQLite it would
    hold the only write lock. This is safe because answers are idempotent and the dialog state
    is saved after rendering: a crash between the two commits replays the update in the old
    state, where it stores the same answer again and moves on.
    """

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        from bot.runtime.storage import current_session

        session = current_session.get()
        if session is not None and session.in_transaction():
            await session.commit()
        return await make_request(bot, method)


TEXT, VOICE = "text", "voice"  # what a sent message was: a screen (editable), or a screen's voice note


@dataclass
class SentScreens:
    """The messages one update sent, in order, kept while the update may be retried (see `NoSecondCopy`).

    `keep` writes each one where a restarted worker finds it (the update journal): a worker killed
    after a screen went out, before the update was done, replays the update from its journal then.
    """

    sent: list[tuple[str, int, str]] = field(default_factory=list)  # (chat id, message id, TEXT or VOICE)
    position: int = 0
    keep: Callable[[int, str, int, str], Awaitable[None]] | None = None  # (position, chat id, message id, kind)

    def again(self) -> None:
        """A new try of the same update begins."""
        self.position = 0

    def earlier(self, index: int, chat_id: str, kind: str) -> int | None:
        """The message an earlier try sent as its `index`-th, if it went to `chat_id` and was a `kind`."""
        if index < len(self.sent) and self.sent[index][0] == chat_id and self.sent[index][2] == kind:
            return self.sent[index][1]
        return None

    async def sent_now(self, position: int, chat_id: str, message_id: int, kind: str) -> None:
        if position != len(self.sent):
            return  # a message of an earlier try was not found again here: positions no longer match
        self.sent.append((chat_id, message_id, kind))
        if self.keep is not None:
            await self.keep(position, chat_id, message_id, kind)


current_screens: contextvars.ContextVar[SentScreens | None] = contextvars.ContextVar(
    "coassess_sent_screens", default=None)


class NoSecondCopy(BaseRequestMiddleware):
    """A replayed update (a failed final commit, a crash, a killed worker) edits the screen it sent
    before instead of sending a second copy: no second consent, no repeated question.

    The n-th sendMessage of a replay to the chat that got the n-th message of an earlier try becomes
    editMessageText of that message (inline keyboards only: a reply keyboard cannot be edited in); the
    n-th sendVoice (a screen's voice note) is not sent again when the earlier try's n-th message was
    one: the person has it already.
    """

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        screens = current_screens.get()
        if screens is None or not isinstance(method, SendMessage | SendVoice):
            return await make_request(bot, method)
        index = screens.position
        screens.position += 1
        chat = str(method.chat_id)
        kind = VOICE if isinstance(method, SendVoice) else TEXT
        message_id = screens.earlier(index, chat, kind)
        if message_id is not None and isinstance(method, SendVoice):
            log.info("a replayed update did not send a voice note a second time")
            return Message(message_id=message_id, date=datetime.now(UTC),  # type: ignore[return-value]
                           chat=Chat(id=int(method.chat_id), type="private"))
        if message_id is not None and isinstance(method, SendMessage) and \
                (method.reply_markup is None or isinstance(method.reply_markup, InlineKeyboardMarkup)):
            edit = EditMessageText(chat_id=method.chat_id, message_id=message_id, text=method.text,
                                   parse_mode=method.parse_mode, entities=method.entities,
                                   link_preview_options=method.link_preview_options,
                                   reply_markup=method.reply_markup)
            try:
                edited = await bot(edit)
            except TelegramBadRequest as exc:
                if "not modified" not in exc.message.lower():
                    raise
                edited = None
            log.info("a replayed update edited the screen it had sent instead of sending it again")
            if isinstance(edited, Message):
                return edited  # type: ignore[return-value]  # the session's chain passes results
            return Message(message_id=message_id, date=datetime.now(UTC), text=method.text,  # type: ignore[return-value]
                           chat=Chat(id=int(method.chat_id), type="private"))
        result = await make_request(bot, method)
        if isinstance(result, Message):
            await screens.sent_now(index, chat, result.message_id, kind)
        return result


def install(bot: Bot, **kwargs: Any) -> Bot:
    bot.session.middleware(NoSecondCopy())
    bot.session.middleware(ExpiredCallbackAnswer())
    bot.session.middleware(CommitBeforeTelegram())
    bot.session.middleware(RetryRequests(**kwargs))
    return bot
