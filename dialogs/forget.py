"""/forget: after a confirmation, erase everything about the participant."""

from __future__ import annotations

import html
from typing import Any

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, ShowMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Row
from aiogram_dialog.widgets.text import Format

from bot.services import participants
from dialogs.context import participant_of, session_of
from dialogs.i18n import tr
from dialogs.screens import stray_input
from dialogs.states import Forget


async def get_confirm(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    t = tr(dialog_manager.middleware_data.get("lang") or "en")
    _ = t.gettext
    d = dialog_manager.dialog_data
    if d.get("erased"):
        return {"text": html.escape(_("Done. Everything we kept about you has been erased."), quote=False),
                "ask": False, "erase": "", "cancel": ""}
    if d.get("cancelled"):
        return {"text": html.escape(_("Nothing was erased."), quote=False), "ask": False, "erase": "",
                "cancel": ""}
    text = "\n\n".join([
        _("This erases all your answers, the groups you chose, and the way we can message you."),
        _("It cannot be undone. Do you want to erase everything?"),
        *([_("Please answer with the buttons below.")] if d.get("hint") else []),
    ])
    return {"text": html.escape(text, quote=False), "ask": True, "erase": _("Erase everything"),
            "cancel": _("Cancel")}


async def on_erase(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    participant = participant_of(manager)
    storage = manager.middleware_data.get("coassess_storage")
    if participant is not None:
        await participants.forget(session_of(manager), participant.id)
        manager.middleware_data["participant"] = None
    manager.dialog_data["erased"] = True
    user = manager.middleware_data.get("event_from_user")
    chat = manager.middleware_data.get("event_chat")
    after = manager.middleware_data.get("after_update")
    if storage is not None and user is not None and chat is not None and after is not None:
        # the dialog state goes too, once this update's dialog has saved it
        async def drop_state() -> None:
            await storage.forget(chat.id, user.id)

        after.append(drop_state)


async def on_cancel(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    if len(manager.current_stack().intents) > 1:
        # back to the survey underneath, on the question it showed, with its buttons
        await manager.done({"forget": "cancelled"})
        return
    manager.dialog_data["cancelled"] = True


async def on_text(message: Any, widget: Any, manager: DialogManager) -> None:
    d = manager.dialog_data
    if d.get("cancelled") or d.get("erased"):
        # the question was answered: this screen has nothing more to say; the message goes where
        # it would have gone with no dialog open
        from dialogs.commands import resume_or_help

        await manager.done(show_mode=ShowMode.NO_UPDATE)
        data = manager.middleware_data
        await resume_or_help(message, manager, data["session"], data["keys"], participant_of(manager),
                             data.get("lang") or "en")
        return
    stray_input(manager, "use_buttons")


def build_forget_dialog() -> Dialog:
    return Dialog(Window(
        Format("{text}"),
        Row(Button(Format("{erase}"), id="y", on_click=on_erase),
            Button(Format("{cancel}"), id="n", on_click=on_cancel), when="ask"),
        MessageInput(on_text),
        state=Forget.confirm, getter=get_confirm,
    ))


