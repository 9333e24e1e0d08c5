"""An edited message (Telegram's `edited_message`): it replaces the text answer it gave, or is ignored.

When a typed answer is stored, the chat's dialog state remembers which message gave it (message
ids count messages within one chat; they say nothing about the person). If that message is
edited while the response is unfinished, the new words replace the stored ones.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Router
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Message

from bot.campaigns.flow import InvalidAnswer, is_visible
from bot.models import Participant, Response
from bot.services import responses as svc
from dialogs.context import load_campaign
from dialogs.filters import private_chat

log = logging.getLogger(__name__)

SAID = "coassess:said"  # the FSM destiny of the record
KEEP = 20  # typed answers remembered per chat


def _key(bot_id: int, message: Message) -> StorageKey | None:
    if message.from_user is None:
        return None
    return StorageKey(bot_id=bot_id, chat_id=message.chat.id, user_id=message.from_user.id, destiny=SAID)


async def remember(data: dict[str, Any], message: Message, campaign_id: str, response_id: int,
                   question_id: str) -> None:
    """Note that `message` gave the typed answer to `question_id` (data: the update's middleware data)."""
    storage, bot = data.get("coassess_storage"), data.get("bot")
    key = _key(bot.id, message) if storage is not None and bot is not None else None
    if key is None:
        return
    said = dict((await storage.get_data(key)).get("m") or {})
    said.pop(str(message.message_id), None)
    said[str(message.message_id)] = [campaign_id, response_id, question_id]
    await storage.set_data(key, {"m": dict(list(said.items())[-KEEP:])})


def build_edits_router() -> Router:
    router = Router(name="edited-answers")

    @router.edited_message(private_chat)
    async def on_edited(message: Message, participant: Participant | None, **data: Any) -> None:
        storage, bot, session = data.get("coassess_storage"), data.get("bot"), data.get("session")
        key = _key(bot.id, message) if storage is not None and bot is not None else None
        if key is None or participant is None or session is None or message.text is None:
            return
        entry = ((await storage.get_data(key)).get("m") or {}).get(str(message.message_id))
        if not entry:
            return  # not an answer (a command, or a message before the survey): nothing to change
        campaign_id, response_id, question_id = entry
        response = await session.get(Response, response_id)
        cc = await load_campaign(session, campaign_id)
        if (response is None or cc is None or response.participant_id != participant.id
                or response.completed_at is not None):
            return  # finished answers stay as they were given
        question = next((q for q in cc.spec.questions if q.id == question_id), None)
        answers = await svc.answers_of(session, response_id)
        stored = answers.get(question_id)
        if question is None or not stored or "text" not in stored or not is_visible(cc.spec, question, answers):
            return
        try:
            await svc.record_answer(session, response_id, question, {**stored, "text": message.text})
        except (InvalidAnswer, ValueError):
            log.info("an edited answer to %s did not fit the question; the earlier one is kept", question_id)

    return router
