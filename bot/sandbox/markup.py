"""Reply markup as the Bot API reads it: inline keyboards, reply keyboards, remove, force reply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from bot.sandbox.formatting import FormatError, check_url

MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100

# Order in which the Bot API server looks for a button's action: the first one found wins.
_INLINE_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)
_REPLY_FLAGS = ("resize_keyboard", "one_time_keyboard", "is_persistent", "selective")
_REPLY_BUTTON_FLAGS = ("request_contact", "request_location")


@dataclass(frozen=True)
class ReplyMarkup:
    """A checked ``reply_markup``.

    Attributes:
        kind: ``inline``, ``keyboard`` (reply keyboard), ``remove`` or ``force_reply``.
        data: The markup as Telegram echoes it (buttons keep only their text and one action).
    """

    kind: Literal["inline", "keyboard", "remove", "force_reply"]
    data: dict[str, Any]

    @property
    def is_empty_inline(self) -> bool:
        """An inline keyboard without buttons, which Telegram treats as no keyboard."""
        return self.kind == "inline" and not any(self.data["inline_keyboard"])

    def server_error(self) -> str | None:
        """The error Telegram's server gives after the chat checks (button text/data), if any."""
        rows = self.data.get("inline_keyboard") or self.data.get("keyboard") or []
        for row in rows:
            for button in row:
                if not button["text"].strip():
                    return "BUTTON_TEXT_INVALID"
                data = button.get("callback_data")
                if data is not None and len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                    return "BUTTON_DATA_INVALID"
        return None


def parse_reply_markup(raw: Any) -> ReplyMarkup | None:
    """Read a ``reply_markup`` parameter (object or JSON string).

    Returns:
        The checked markup, or None when there is none.

    Raises:
        FormatError: With the Bot API's description (without ``Bad Request: ``).
    """
    if raw is None or raw == "":
        return None
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise FormatError("can't parse reply keyboard markup JSON object") from None
    if not isinstance(value, dict):
        raise FormatError("can't parse reply keyboard markup JSON object")
    # A reply keyboard wins over an inline one, but the inline one is still checked.
    inline = _parse_inline(value["inline_keyboard"]) if "inline_keyboard" in value else None
    if "keyboard" in value:
        return _parse_keyboard(value)
    if inline is not None:
        return inline
    if "remove_keyboard" in value:
        _require_bool(value, "remove_keyboard", "")
        data: dict[str, Any] = {"remove_keyboard": True}
        if "selective" in value:
            data["selective"] = _require_bool(value, "selective", "")
        return ReplyMarkup("remove", data)
    if "force_reply" in value:
        _require_bool(value, "force_reply", "")
        data = {"force_reply": True}
        if "selective" in value:
            data["selective"] = _require_bool(value, "selective", "")
        if isinstance(value.get("input_field_placeholder"), str):
            data["input_field_placeholder"] = value["input_field_placeholder"]
        return ReplyMarkup("force_reply", data)
    return None


def _require_bool(obj: dict[str, Any], name: str, prefix: str) -> bool:
    if not isinstance(obj.get(name), bool):
        raise FormatError(f'{prefix}field "{name}" must be of type Boolean'
                          if not prefix else f'{prefix}Field "{name}" must be of type Boolean')
    return obj[name]


def _rows(value: Any, field: str) -> list[list[Any]]:
    if not isinstance(value, list):
        raise FormatError(f'field "{field}" must be of type Array')
    if not all(isinstance(row, list) for row in value):
        raise FormatError(f'field "{field}" must be an Array of Arrays')
    return value


def _parse_inline(value: Any) -> ReplyMarkup:
    rows = _rows(value, "inline_keyboard")
    prefix = "can't parse inline keyboard button: "
    result: list[list[dict[str, Any]]] = []
    count = 0
    for row in rows:
        out_row = []
        for button in row:
            if not isinstance(button, dict):
                raise FormatError(prefix + "InlineKeyboardButton must be an Object")
            if "text" not in button:
                raise FormatError(prefix + 'Can\'t find field "text"')
            if not isinstance(button["text"], str):
                raise FormatError(prefix + 'Field "text" must be of type String')
            out_row.append(_inline_action(button, prefix))
            count += 1
        if out_row:
            result.append(out_row)
    if count > MAX_BUTTONS:
        raise FormatError("reply markup is too long")
    return ReplyMarkup("inline", {"inline_keyboard": result})


def _inline_action(button: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {"text": button["text"]}
    for extra in ("style", "icon_custom_emoji_id"):
        if isinstance(button.get(extra), str):
            out[extra] = button[extra]
    for action in _INLINE_ACTIONS:
        if action not in button or button[action] is None:
            continue
        value = button[action]
        if action == "url":
            if not isinstance(value, str):
                raise FormatError(prefix + 'Field "url" must be of type String')
            if value == "":
                continue
            reason = check_url(value)
            if reason:
                raise FormatError(f"inline keyboard button URL '{value}' is invalid: {reason}")
        elif action == "callback_data":
            if not isinstance(value, str):
                raise FormatError(prefix + 'Field "callback_data" must be of type String')
            if value == "":
                continue  # an empty callback_data is no action at all
        elif action == "web_app":
            url = value.get("url", "") if isinstance(value, dict) else ""
            if not str(url).lower().startswith("https://") or check_url(str(url)):
                raise FormatError(
                    f"inline keyboard button Web App URL '{url}' is invalid: "
                    "Only HTTPS links are allowed"
                )
        elif action in ("pay", "callback_game"):
            raise FormatError("BUTTON_TYPE_INVALID")
        elif action == "copy_text":
            text = value.get("text") if isinstance(value, dict) else None
            if not isinstance(text, str) or not 1 <= len(text) <= 256:
                raise FormatError("BUTTON_COPY_TEXT_INVALID")
        elif action == "switch_inline_query_chosen_chat":
            if not isinstance(value, dict):
                raise FormatError(prefix + 'Field "switch_inline_query_chosen_chat" must be of '
                                  "type Object")
            for flag in ("allow_user_chats", "allow_bot_chats", "allow_group_chats",
                         "allow_channel_chats"):
                if flag in value and not isinstance(value[flag], bool):
                    raise FormatError(prefix + f'Field "{flag}" must be of type Boolean')
        out[action] = value
        return out
    raise FormatError(prefix + "Text buttons are unallowed in the inline keyboard")


def _parse_keyboard(value: dict[str, Any]) -> ReplyMarkup:
    rows = _rows(value["keyboard"], "keyboard")
    prefix = "can't parse keyboard button: "
    result: list[list[dict[str, Any]]] = []
    for row in rows:
        out_row = []
        for button in row:
            if isinstance(button, str):
                out_row.append({"text": button})
                continue
            if not isinstance(button, dict):
                raise FormatError(prefix + "KeyboardButton must be a String or an Object")
            if "text" not in button:
                raise FormatError(prefix + 'Can\'t find field "text"')
            if not isinstance(button["text"], str):
                raise FormatError(prefix + 'Field "text" must be of type String')
            out: dict[str, Any] = {"text": button["text"]}
            for flag in _REPLY_BUTTON_FLAGS:
                if flag in button and _require_bool(button, flag, prefix):
                    out[flag] = True
            for request in ("request_users", "request_chat"):
                if request in button:
                    spec = button[request]
                    if not isinstance(spec, dict) or "request_id" not in spec:
                        raise FormatError(prefix + 'Can\'t find field "request_id"')
                    out[request] = spec
            if "web_app" in button:
                url = button["web_app"].get("url", "") if isinstance(button["web_app"],
                                                                     dict) else ""
                if not str(url).lower().startswith("https://"):
                    raise FormatError(f"keyboard button Web App URL '{url}' is invalid: "
                                      "Only HTTPS links are allowed")
                out["web_app"] = button["web_app"]
            out_row.append(out)
        if out_row:
            result.append(out_row)
    data: dict[str, Any] = {"keyboard": result}
    for flag in _REPLY_FLAGS:
        if flag in value:
            data[flag] = _require_bool(value, flag, "")
    if isinstance(value.get("input_field_placeholder"), str):
        data["input_field_placeholder"] = value["input_field_placeholder"]
    return ReplyMarkup("keyboard", data)


def find_inline_button(
    markup: dict[str, Any] | None,
    *,
    data: str | None = None,
    text: str | None = None,
    row: int | None = None,
    col: int | None = None,
) -> dict[str, Any] | None:
    """Find a button of an inline keyboard by callback data, text or position."""
    rows = (markup or {}).get("inline_keyboard") or []
    if row is not None:
        if 0 <= row < len(rows) and 0 <= (col or 0) < len(rows[row]):
            return rows[row][col or 0]
        return None
    for buttons in rows:
        for button in buttons:
            if data is not None and button.get("callback_data") == data:
                return button
            if text is not None and button["text"] == text:
                return button
    return None
