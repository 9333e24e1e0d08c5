"""Participant commands outside the dialogs: /start, /language, /privacy, /forget, /stop, /help.

Also the safety nets: a message or tap when no dialog is active resumes an unfinished survey,
and a tap the dialogs do not know (old, forged or foreign) is answered and ignored.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram_dialog import DialogManager, ShowMode, StartMode
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.store import is_open
from bot.models import Campaign, Participant, Response
from bot.services import participants as people
from bot.services.participants import Keys
from dialogs.context import load_campaign
from dialogs.filters import DataStartsWith, has_message, private_chat
from dialogs.i18n import Tr, best_language, short_label, tr
from dialogs.screens import answer_tap
from dialogs.states import Forget, LanguagePick, Survey
from dialogs.survey import resume_target
from locales import available

log = logging.getLogger(__name__)
PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
START_CAMPAIGN = "start:"


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def parse_payload(payload: str | None) -> tuple[str | None, str | None]:
    """`<campaign>` or `<campaign>_<invite code>` (campaign ids never contain `_`)."""
    if not payload or not PAYLOAD.match(payload):
        return None, None
    campaign, _, invite = payload.partition("_")
    return campaign, invite or None


def start_payload(campaign_id: str, invite_code: str | None = None) -> str:
    return f"{campaign_id}_{invite_code}" if invite_code else campaign_id


async def open_campaigns(session: AsyncSession) -> list[Campaign]:
    rows = (await session.scalars(select(Campaign).order_by(Campaign.created_at))).all()
    return [c for c in rows if is_open(c)]


def _lang(data: dict[str, Any], participant: Participant | None) -> str:
    if participant is not None and participant.language:
        return participant.language
    return best_language([data.get("lang")], available()) or "en"


async def _offer_open(message: Message, session: AsyncSession, t: Tr, reason: str | None) -> None:
    _ = t.gettext
    campaigns = await open_campaigns(session)
    lines = [reason] if reason else []
    if campaigns:
        lines.append(_("These surveys are open now. Tap one to start:"))
        buttons = [[InlineKeyboardButton(
            text=short_label(c.title.get(t.lang) or c.title.get(c.languages[0]) or c.id, 60),
            callback_data=f"{START_CAMPAIGN}{c.id}")] for c in campaigns[:10]]
        markup: InlineKeyboardMarkup | None = InlineKeyboardMarkup(inline_keyboard=buttons)
    else:
        lines.append(_("There is no survey open right now. Thank you for your interest."))
        markup = None
    await message.answer("\n\n".join(_e(x) for x in lines), reply_markup=markup)


async def begin(manager: DialogManager, session: AsyncSession, keys: Keys, user_id: int, chat_id: int,
                campaign_id: str, invite: str | None, tg_lang: str | None) -> None:
    # someone new is kept only once they agree (the consent screen's "yes" creates them)
    manager.middleware_data["participant"] = await people.find(session, keys, user_id)
    await manager.start(Survey.consent, data={"campaign": campaign_id, "invite": invite, "tg_lang": tg_lang},
                        mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


def build_commands_router() -> Router:
    router = Router(name="participant-commands")
    router.message.filter(private_chat)

    @router.message(CommandStart())
    async def cmd_start(message: Message, command: CommandObject, dialog_manager: DialogManager,
                        session: AsyncSession, keys: Keys, participant: Participant | None,
                        lang: str) -> None:
        user = message.from_user
        if user is None:
            return
        t = tr(_lang({"lang": lang}, participant))
        _ = t.gettext
        campaign_id, invite = parse_payload(command.args)
        if command.args and campaign_id is None:
            await _offer_open(message, session, t, _("That link does not work."))
            return
        if campaign_id is None:
            if participant is not None:
                target = await resume_target(session, participant)
                if target:
                    await begin(dialog_manager, session, keys, user.id, message.chat.id, target, None,
                                user.language_code)
                    return
            campaigns = await open_campaigns(session)
            if len(campaigns) == 1:
                await begin(dialog_manager, session, keys, user.id, message.chat.id, campaigns[0].id, None,
                            user.language_code)
                return
            await _offer_open(message, session, t, None)
            return
        cc = await load_campaign(session, campaign_id)
        if cc is None:
            await _offer_open(message, session, t, _("We could not find that survey."))
            return
        started = None
        if participant is not None:
            started = await session.scalar(select(Response).where(
                Response.campaign_id == campaign_id, Response.participant_id == participant.id,
                Response.consent_version.is_not(None)))
        if started is None and not is_open(cc.campaign):
            state = "scheduled" if cc.campaign.opens and cc.campaign.status != "closed" else "closed"
            reason = (_("This survey is not open yet. Please come back later.") if state == "scheduled"
                      else _("This survey is closed now. Thank you for your interest."))
            await _offer_open(message, session, t, reason)
            return
        await begin(dialog_manager, session, keys, user.id, message.chat.id, campaign_id, invite,
                    user.language_code)

    # has_message: a tap on an inline-mode message has none (and no dialog manager); unknown_tap takes it
    @router.callback_query(DataStartsWith(START_CAMPAIGN), has_message)
    async def on_start_campaign(callback: CallbackQuery, dialog_manager: DialogManager,
                                session: AsyncSession, keys: Keys) -> None:
        await answer_tap(callback)
        campaign_id = (callback.data or "")[len(START_CAMPAIGN):]
        cc = await load_campaign(session, campaign_id)
        if cc is None or not is_open(cc.campaign) or callback.message is None:
            return
        await begin(dialog_manager, session, keys, callback.from_user.id, callback.message.chat.id,
                    campaign_id, None, callback.from_user.language_code)

    @router.message(Command("language"))
    async def cmd_language(message: Message, dialog_manager: DialogManager, session: AsyncSession,
                           participant: Participant | None) -> None:
        campaign_id = None
        try:
            ctx = dialog_manager.current_context()
            campaign_id = (ctx.dialog_data or {}).get("c")
        except Exception:  # noqa: BLE001 - no dialog open
            campaign_id = None
        languages = available()
        fallback = None
        if campaign_id:
            cc = await load_campaign(session, campaign_id)
            if cc:
                languages = list(cc.spec.languages)
                fallback = languages[0]  # as the survey does, when the catalogs lack theirs
        await dialog_manager.start(LanguagePick.pick, data={"languages": languages, "fallback": fallback},
                                   show_mode=ShowMode.SEND)

    @router.message(Command("privacy"))
    async def cmd_privacy(message: Message, session: AsyncSession, participant: Participant | None,
                          lang: str) -> None:
        for text in privacy_texts(tr(_lang({"lang": lang}, participant))):
            await message.answer(text)

    @router.message(Command("forget"))
    async def cmd_forget(message: Message, dialog_manager: DialogManager) -> None:
        # on top of the survey, if one is open: Cancel goes back to it as it was
        if dialog_manager.has_context() and dialog_manager.current_context().state == Forget.confirm:
            await dialog_manager.reset_stack()
        await dialog_manager.start(Forget.confirm, show_mode=ShowMode.SEND)

    @router.message(Command("stop"))
    async def cmd_stop(message: Message, session: AsyncSession, participant: Participant | None,
                       lang: str) -> None:
        t = tr(_lang({"lang": lang}, participant))
        _ = t.gettext
        if participant is not None:
            await people.stop(session, participant)
        await message.answer(_e(_("You will get no more messages from us. Your answers are kept. "
                                  "To erase them, send /forget.")))

    @router.my_chat_member()
    async def on_blocked(event: ChatMemberUpdated, session: AsyncSession,
                         participant: Participant | None) -> None:
        """Someone blocked the bot: no more messages to them (their answers are kept).

        Only in the private chat: in a group, "kicked" means the bot was removed from that group,
        and `from` is whoever removed it, not someone who stopped taking part.
        """
        if event.chat.type != "private":
            return
        if participant is not None and event.new_chat_member.status == "kicked":
            await people.stop(session, participant)

    @router.message(Command("help"))
    async def cmd_help(message: Message, participant: Participant | None, lang: str,
                       session: AsyncSession) -> None:
        await message.answer(help_text(tr(_lang({"lang": lang}, participant))))
        from dialogs.listen import speak_help

        await speak_help(message, session, participant)

    return router


def privacy_texts(t: Tr) -> list[str]:
    """/privacy, in two short messages: what is kept at each stage; who sees it and how to erase it."""
    _ = t.gettext
    kept = [
        _("Before you agree to take part, we keep nothing about you, only which step of this chat "
          "you are at, under a code."),
        _("After you agree, we keep:"),
        _("Your answers, your language and the groups you chose. They are stored under a code, "
          "not your name, phone number or Telegram name."),
        _("We keep a locked code for your chat, only to send you the messages you agreed to."),
    ]
    seen = [
        _("The survey team can see each person's answers, but not their name or phone number. "
          "Reports show only groups, never a small group on its own, and may quote what people wrote."),
        _("Send /forget to erase everything we keep about you, or /stop to get no more messages."),
    ]
    return [f"<b>{_e(_('What we keep'))}</b>\n" + "\n".join(_e(x) for x in kept),
            f"<b>{_e(_('Who sees your answers'))}</b>\n{_e(seen[0])}\n\n{_e(seen[1])}"]


def help_text(t: Tr) -> str:
    _ = t.gettext
    commands = dict(command_descriptions(t))
    lines = [_("This bot asks short questions, so that the people who run services can learn from "
                "your answers.")]
    # each line starts with its command: isolated, it stays "/start" at the start of a right-to-left line
    lines += [f"{t.isolate('/' + name)} — {commands[name]}" for name in ("start", "language", "listen",
                                                                          "privacy", "stop", "forget")]
    return "\n".join(_e(x) for x in lines)


def command_descriptions(t: Tr) -> list[tuple[str, str]]:
    """The commands for setMyCommands, in one language."""
    _ = t.gettext
    return [
        ("start", _("start or continue a survey")),
        ("language", _("change the language")),
        ("listen", _("hear each question as a voice note, or stop")),
        ("privacy", _("what we keep and who sees it")),
        ("stop", _("no more messages from us")),
        ("forget", _("erase everything we keep about you")),
        ("help", _("what this bot does")),
    ]


def command_menu(t: Tr) -> list[tuple[str, str]]:
    """`command_descriptions` fitted to setMyCommands' limits: description 1-256 characters (an empty
    translation falls back to English), command 1-32 of a-z, 0-9 and _."""
    english = dict(command_descriptions(tr("en")))
    menu = []
    for command, description in command_descriptions(t):
        text = " ".join(description.split()) or english[command]
        menu.append((command, text[:256]))
    return menu


async def resume_or_help(message: Message, dialog_manager: DialogManager, session: AsyncSession, keys: Keys,
                         participant: Participant | None, lang: str) -> None:
    """A message with nothing open to take it: back to an unfinished survey, else what the bot does."""
    if participant is not None and message.from_user is not None:
        target = await resume_target(session, participant)
        if target:
            await begin(dialog_manager, session, keys, message.from_user.id, message.chat.id, target,
                        None, message.from_user.language_code)
            return
    await message.answer(help_text(tr(_lang({"lang": lang}, participant))))


def build_fallback_router() -> Router:
    """Last in line: messages with no dialog open, and taps nobody handled."""
    router = Router(name="fallback")

    @router.message(private_chat)
    async def no_dialog(message: Message, dialog_manager: DialogManager, session: AsyncSession,
                        keys: Keys, participant: Participant | None, lang: str) -> None:
        await resume_or_help(message, dialog_manager, session, keys, participant, lang)

    @router.callback_query()
    async def unknown_tap(callback: CallbackQuery) -> None:
        # A forged or foreign tap: stop the spinner, store nothing.
        await answer_tap(callback)
        log.info("ignored a button tap the bot does not know")

    return router
