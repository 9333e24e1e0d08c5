"""Listening: each new screen followed by its voice note, for people who would rather hear than read.

The choice is the person's (`participant.listen`), set with "🔊 Listen to the questions", the 🔊
button on every question, or /listen. A screen is spoken once; shown again (Back, resume) it is
not, unless 🔊 is tapped. The voice notes were made when the campaign was loaded
(`bot.services.spoken`); here they are only looked up and sent, after the screen is rendered.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import DialogManager, ShowMode
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Participant, Response
from bot.services import spoken
from dialogs.context import participant_of, session_of
from dialogs.filters import private_chat
from dialogs.i18n import tr
from dialogs.states import Survey

log = logging.getLogger(__name__)

SPEAKER = "🔊"
MAX_HEARD = 200  # screens remembered per dialog (a campaign has at most a few dozen)


def listening(manager: DialogManager) -> bool:
    """The person's choice; before they agree (and are kept), the choice made on this screen."""
    participant = participant_of(manager)
    if participant is None:
        return bool(manager.dialog_data.get("listen"))
    return bool(participant.listen)


def hold_next(manager: DialogManager) -> None:
    """The next screen is a resumed one: count it as heard without sending it again."""
    manager.dialog_data["quiet"] = True


def speak(manager: DialogManager, screen: str, *, again: bool = False) -> None:
    """After this update's screen is shown, send the voice note of `screen` (once per screen)."""
    d = manager.dialog_data
    if not listening(manager) or "c" not in d or not d.get("lang"):
        return
    heard: list[str] = d.setdefault("heard", [])
    if d.pop("quiet", False):
        if screen not in heard:
            heard.append(screen)
        return
    if screen in heard and not again:
        return
    if screen not in heard:
        heard.append(screen)
        del heard[:-MAX_HEARD]
    after = manager.middleware_data.get("after_update")
    chat = manager.middleware_data.get("event_chat")
    bot = manager.middleware_data.get("bot")
    if after is None or chat is None or bot is None:
        return
    queued: set[str] = manager.middleware_data.setdefault("spoken_now", set())
    if screen in queued:
        return
    queued.add(screen)
    session = session_of(manager)
    campaign_id, lang, response_id = d["c"], d["lang"], d.get("r")

    async def send() -> None:
        note = await spoken.find(session, campaign_id, lang, screen)
        if note is None:
            return
        if response_id is not None:
            response = await session.get(Response, response_id)
            if response is not None and not response.listened:
                response.listened = True
        await spoken.send(bot, session, chat.id, note)

    after.append(send)


def listen_label(manager: DialogManager, t: Any) -> str:
    """The button that turns listening on, as it reads now."""
    label = t.gettext("🔊 Listen to the questions")
    return ("✅ " + label) if listening(manager) else label


async def on_listen(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    """🔊: listening on, and the screen shown now spoken (again)."""
    participant = participant_of(manager)
    if participant is None:
        manager.dialog_data["listen"] = True
    else:
        participant.listen = True
    manager.dialog_data["again"] = True


def speak_screen(manager: DialogManager, screen: str) -> None:
    """What a getter calls for the screen it renders: spoken if new, or if 🔊 was just tapped."""
    speak(manager, screen, again=bool(manager.dialog_data.pop("again", False)))


async def speak_help(message: Message, session: AsyncSession, participant: Participant | None) -> None:
    """/help, heard: the help of the campaign the person last took part in, in the language they used."""
    if participant is None or not participant.listen or message.bot is None:
        return
    row = (await session.execute(select(Response.campaign_id, Response.language)
                                 .where(Response.participant_id == participant.id)
                                 .order_by(Response.started_at.desc()).limit(1))).first()
    if row is None:
        return
    note = await spoken.find(session, row[0], row[1], "help")
    if note is not None:
        await spoken.send(message.bot, session, message.chat.id, note)


def build_listen_router() -> Router:
    router = Router(name="listen")
    router.message.filter(private_chat)

    @router.message(Command("listen"))
    async def cmd_listen(message: Message, dialog_manager: DialogManager, participant: Participant | None,
                         lang: str) -> None:
        t = tr(participant.language if participant is not None and participant.language else lang)
        _ = t.gettext
        in_survey = dialog_manager.has_context() and dialog_manager.current_context().state.group is Survey
        if participant is None and not in_survey:
            await message.answer(_("Send /start first, then /listen to hear the questions."))
            return
        if participant is not None:
            participant.listen = not participant.listen
            on = participant.listen
        else:  # on the consent screen, not kept yet: the choice waits in the dialog
            on = dialog_manager.dialog_data["listen"] = not dialog_manager.dialog_data.get("listen", False)
        if on:
            await message.answer(_("Voice notes are on: each question will be followed by a voice note "
                                   "you can listen to. Send /listen again to turn them off."))
            if in_survey:
                # the survey screen they were on comes again, under this message, with its voice note
                dialog_manager.dialog_data["again"] = True
                await dialog_manager.show(ShowMode.SEND)
        else:
            await message.answer(_("Voice notes are off. Send /listen to turn them on again."))

    return router
