"""Assembling the dispatcher: storage, middlewares, routers, dialogs and error handlers."""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramForbiddenError
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import ErrorEvent
from aiogram_dialog import DialogManager, setup_dialogs
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent, UnknownState
from aiogram_dialog.api.entities import DIALOG_EVENT_NAME
from aiogram_dialog.api.protocols import MessageManagerProtocol

from bot.db import Database
from bot.runtime.failures import is_temporary
from bot.runtime.logs import install_privacy_filter
from bot.runtime.middleware import UpdateSessionMiddleware
from bot.runtime.storage import PseudonymousStorage, SqlStorage, current_session
from bot.services.participants import Keys
from dialogs.commands import begin, build_commands_router, build_fallback_router, help_text
from dialogs.edits import build_edits_router
from dialogs.forget import build_forget_dialog
from dialogs.i18n import best_language, tr
from dialogs.language import build_language_dialog
from dialogs.screens import OlderMessageGate, ScreenMessageManager, answer_tap
from dialogs.survey import build_survey_dialog, older_message_notice, resume_target
from locales import available, compile_catalogs

log = logging.getLogger(__name__)

@dataclass
class BotConfig:
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    dedupe: bool = True
    bot_username: str | None = None
    store_voice_audio: bool = False


def make_bot(token: str, api_url: str | None = None, timeout: float = 30.0) -> Bot:
    """An aiogram Bot that speaks HTML to Telegram, or to any Bot API server at `api_url`."""
    from bot.runtime.retry import install

    session = AiohttpSession(timeout=timeout)
    if api_url and api_url.rstrip("/") != "https://api.telegram.org":
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")), timeout=timeout)
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML,
                                                                    link_preview_is_disabled=True))
    return install(bot)


def build_dispatcher(db: Database, keys: Keys, *, inner_storage: BaseStorage | None = None,
                     events_isolation: Any = None, message_manager: MessageManagerProtocol | None = None,
                     config: BotConfig | None = None) -> Dispatcher:
    """A complete dispatcher with fresh routers and dialogs (safe to call once per test or worker)."""
    config = config or BotConfig()
    install_privacy_filter()
    compile_catalogs()
    storage = PseudonymousStorage(inner_storage or SqlStorage(db.sessions), keys.pseudonym_key)
    dp = Dispatcher(storage=storage)
    dp["db"] = db
    dp["keys"] = keys
    dp["config"] = config
    middleware = UpdateSessionMiddleware(db.sessions, keys, storage, dedupe=config.dedupe)
    # Before aiogram's FSM middleware, whose state lookup should use this update's session.
    chain = dp.update.outer_middleware._middlewares
    chain.insert(chain.index(dp.fsm), middleware)

    dp.include_router(build_commands_router())
    for extra in _extra_routers(config):
        dp.include_router(extra)
    dialogs = (build_survey_dialog(), build_language_dialog(), build_forget_dialog())
    for dialog in dialogs:
        dialog.callback_query.middleware(OlderMessageGate(older_message_notice))
    dp.include_routers(*dialogs)
    dp.include_router(build_edits_router())
    dp.include_router(build_fallback_router())
    setup_dialogs(dp, message_manager=message_manager or ScreenMessageManager(storage),
                  events_isolation=events_isolation)
    # Background dialog events skip update middlewares: give them a session too.
    dp.observers[DIALOG_EVENT_NAME].outer_middleware(middleware)

    dp.errors.register(on_stale_dialog, ExceptionTypeFilter(UnknownIntent, UnknownState, OutdatedIntent))
    dp.errors.register(on_error)
    return dp


def _extra_routers(config: BotConfig) -> list[Router]:
    """Administrator routers, when that feature is installed."""
    try:
        from dialogs.admin import build_admin_router
    except ImportError:
        return []
    return [build_admin_router(config.admin_ids)]


async def on_stale_dialog(event: ErrorEvent, dialog_manager: DialogManager) -> None:
    """An old button after a restart or a double tap: answer it and resume where the person was."""
    update = event.update
    if update.callback_query is not None:
        try:
            await answer_tap(update.callback_query)
        except Exception:  # noqa: BLE001 - too old to answer: nothing to stop spinning
            pass
    user = update.callback_query.from_user if update.callback_query else (
        update.message.from_user if update.message else None)
    chat = (update.callback_query.message.chat if update.callback_query and update.callback_query.message
            else update.message.chat if update.message else None)
    if user is None or chat is None:
        return
    db: Database = dialog_manager.middleware_data["db"]
    keys: Keys = dialog_manager.middleware_data["keys"]
    async with db.session() as session:
        token = current_session.set(session)
        try:
            from bot.services import participants

            participant = await participants.find(session, keys, user.id)
            dialog_manager.middleware_data.update(session=session, participant=participant, keys=keys)
            target = await resume_target(session, participant) if participant else None
            if target:
                await begin(dialog_manager, session, keys, user.id, chat.id, target, None, user.language_code)
            else:
                await dialog_manager.reset_stack()
                # in the person's language: their choice, else their Telegram app's (after /forget
                # there is no participant to ask)
                lang = best_language([participant.language if participant else None, user.language_code],
                                     available()) or "en"
                await event.update.bot.send_message(chat.id, help_text(tr(lang)))  # type: ignore[union-attr]
            await session.commit()
        finally:
            current_session.reset(token)


async def on_error(event: ErrorEvent, **data: Any) -> Any:
    """A fault: transient ones go back to the journal for a retry; bugs get a kind word, never a traceback."""
    exc = event.exception
    # The system's own fault (database or Redis away, Telegram 5xx with any body, a time-out; see
    # bot.runtime.failures): the update goes back to the journal, and nobody is told "sorry".
    if is_temporary(exc):
        raise exc
    if isinstance(exc, TelegramForbiddenError):
        await _mark_stopped(event, data)
        return True
    log.error("error while handling update %s: %s", event.update.update_id, exc.__class__.__name__,
              exc_info=exc)
    update = event.update
    chat_id = None
    if update.callback_query is not None:
        try:
            await answer_tap(update.callback_query)
        except Exception:  # noqa: BLE001
            pass
        if update.callback_query.message is not None:
            chat_id = update.callback_query.message.chat.id
    elif update.message is not None:
        chat_id = update.message.chat.id
    if chat_id is not None and update.bot is not None:
        t = tr(data.get("lang") or "en")
        _ = t.gettext
        try:
            await update.bot.send_message(chat_id, html.escape(_(
                "Sorry, something went wrong on our side. Your earlier answers are saved. "
                "Send /start to continue."), quote=False))
        except Exception:  # noqa: BLE001 - nothing more we can do for this update
            log.warning("could not tell the participant about an error")
    return True


async def _mark_stopped(event: ErrorEvent, data: dict[str, Any]) -> None:
    """403 from Telegram (blocked, deactivated): stop messaging this person, keep their answers."""
    from bot.services import participants

    update = event.update
    user = (update.message.from_user if update.message else
            update.callback_query.from_user if update.callback_query else None)
    db: Database | None = data.get("db")
    keys: Keys | None = data.get("keys")
    if user is None or db is None or keys is None:
        return
    async with db.session() as session:
        participant = await participants.find(session, keys, user.id)
        if participant is not None:
            await participants.stop(session, participant)
            await session.commit()
    log.info("a participant blocked the bot; marked stopped")
