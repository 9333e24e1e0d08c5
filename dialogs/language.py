"""/language: pick the language the bot speaks, shown in each language's own name."""

from __future__ import annotations

import html
from operator import itemgetter
from typing import Any

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Column, Select
from aiogram_dialog.widgets.text import Format

from dialogs.context import participant_of
from dialogs.i18n import language_name, tr
from dialogs.screens import stray_input
from dialogs.states import LanguagePick
from locales import available


async def get_languages(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    start = dialog_manager.start_data or {}
    codes = list(start.get("languages") or available())
    t = tr(dialog_manager.middleware_data.get("lang") or "en", start.get("fallback"))
    _ = t.gettext
    text = _("Which language would you like to use?")
    if dialog_manager.dialog_data.get("hint"):
        text += "\n\n" + _("Please answer with the buttons below.")
    return {"text": html.escape(text, quote=False),
            "languages": [(c, language_name(c)) for c in codes], "cancel": _("Cancel")}


async def on_pick(callback: CallbackQuery, widget: Any, manager: DialogManager, code: str) -> None:
    start = manager.start_data or {}
    if code not in (start.get("languages") or available()):
        return
    participant = participant_of(manager)
    if participant is not None:
        participant.language = code
    manager.middleware_data["lang"] = code
    await manager.done({"lang": code})


async def on_cancel(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await manager.done()


async def on_text(message: Any, widget: Any, manager: DialogManager) -> None:
    stray_input(manager, "use_buttons")


def build_language_dialog() -> Dialog:
    return Dialog(Window(
        Format("{text}"),
        Column(Select(Format("{item[1]}"), id="l", item_id_getter=itemgetter(0), items="languages",
                      on_click=on_pick)),
        Button(Format("{cancel}"), id="x", on_click=on_cancel),
        MessageInput(on_text),
        state=LanguagePick.pick, getter=get_languages,
    ))



