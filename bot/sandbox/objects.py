"""Bot API objects built with python-telegram-bot's types, an implementation independent of aiogram.

Every Update, Message, CallbackQuery, User and Chat the sandbox hands to a bot goes through
``telegram.*(...).to_dict()``, so the bot is tested against a second reading of the Bot API.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import telegram

if TYPE_CHECKING:
    from bot.sandbox.state import PrivateChat, SandboxUser, StoredMessage, World

# PTB writes these service flags as false on every message; Telegram leaves them out.
_FALSE_FLAGS = ("channel_chat_created", "delete_chat_photo", "group_chat_created",
                "supergroup_chat_created")


def as_json(obj: telegram.TelegramObject) -> dict[str, Any]:
    """Serialise a PTB object as Telegram sends it (no PTB-only false flags)."""
    return _strip(obj.to_dict())


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _strip(value) for key, value in data.items()
                if not (key in _FALSE_FLAGS and value is False)}
    if isinstance(data, list):
        return [_strip(item) for item in data]
    return data


def timestamp(seconds: float) -> dt.datetime:
    """A UTC datetime for PTB from a Unix time."""
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def user(person: SandboxUser) -> telegram.User:
    """The ``User`` of a simulated citizen."""
    return telegram.User(
        id=person.id,
        first_name=person.first_name,
        is_bot=False,
        last_name=person.last_name,
        username=person.username,
        language_code=person.language_code,
        is_premium=person.is_premium or None,
    )


def bot_user(world: World, *, full: bool = False) -> telegram.User:
    """The bot's own ``User``; ``full`` adds the getMe-only capability fields."""
    extra: dict[str, Any] = {}
    if full:
        extra = {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
    return telegram.User(id=world.bot_id, first_name=world.bot_first_name, is_bot=True,
                         username=world.bot_username, **extra)


def chat(private: PrivateChat, person: SandboxUser) -> telegram.Chat:
    """The private ``Chat`` between the bot and a citizen."""
    return telegram.Chat(
        id=private.id,
        type=telegram.Chat.PRIVATE,
        first_name=person.first_name,
        last_name=person.last_name,
        username=person.username,
    )


def entity(data: dict[str, Any]) -> telegram.MessageEntity:
    """A ``MessageEntity`` from the sandbox's entity dict."""
    mentioned = data.get("user")
    return telegram.MessageEntity(
        type=data["type"],
        offset=data["offset"],
        length=data["length"],
        url=data.get("url"),
        user=telegram.User.de_json(mentioned, None) if mentioned else None,
        language=data.get("language"),
        custom_emoji_id=data.get("custom_emoji_id"),
    )


def message(world: World, msg: StoredMessage, *, nested: bool = True) -> telegram.Message:
    """The ``Message`` for a stored message in its current state."""
    private = world.chats[msg.chat_id]
    person = world.users[private.user_id]
    sender = bot_user(world) if msg.from_bot else user(person)
    fields: dict[str, Any] = {}
    if msg.text is not None:
        fields["text"] = msg.text
        fields["entities"] = [entity(e) for e in msg.entities] or None
    if msg.caption:
        fields["caption"] = msg.caption
        fields["caption_entities"] = [entity(e) for e in msg.caption_entities] or None
    media = msg.media
    if "photo" in media:
        sizes = [world.files.get(file_id) for file_id in media["photo"]]
        fields["photo"] = [
            telegram.PhotoSize(f.file_id, f.file_unique_id, f.width or 0, f.height or 0,
                               f.file_size)
            for f in sizes if f is not None
        ]
    if "document" in media and (doc := world.files.get(media["document"])):
        fields["document"] = telegram.Document(doc.file_id, doc.file_unique_id,
                                               file_name=doc.file_name,
                                               mime_type=doc.mime_type,
                                               file_size=doc.file_size)
    if "voice" in media and (voice := world.files.get(media["voice"])):
        fields["voice"] = telegram.Voice(voice.file_id, voice.file_unique_id,
                                         voice.duration or 0, mime_type=voice.mime_type,
                                         file_size=voice.file_size)
    if "sticker" in media and (sticker := world.files.get(media["sticker"])):
        fields["sticker"] = telegram.Sticker(
            sticker.file_id, sticker.file_unique_id, sticker.width or 512,
            sticker.height or 512, is_animated=False, is_video=False,
            type=telegram.Sticker.REGULAR, emoji=sticker.extra.get("emoji"),
            set_name=sticker.extra.get("set_name"), file_size=sticker.file_size)
    if "location" in media:
        fields["location"] = telegram.Location(longitude=media["location"]["longitude"],
                                               latitude=media["location"]["latitude"])
    if "contact" in media:
        contact = media["contact"]
        fields["contact"] = telegram.Contact(
            phone_number=contact["phone_number"], first_name=contact["first_name"],
            last_name=contact.get("last_name"), user_id=contact.get("user_id"))
    if msg.inline_markup and any(msg.inline_markup["inline_keyboard"]):
        fields["reply_markup"] = telegram.InlineKeyboardMarkup.de_json(msg.inline_markup, None)
    if nested and msg.reply_to is not None:
        replied = world.messages.get(msg.reply_to)
        if replied is not None and not replied.deleted:
            fields["reply_to_message"] = message(world, replied, nested=False)
    if msg.protect_content:
        fields["has_protected_content"] = True
    return telegram.Message(
        message_id=msg.message_id,
        date=timestamp(msg.date),
        chat=chat(private, person),
        from_user=sender,
        edit_date=timestamp(msg.edit_date) if msg.edit_date else None,
        **fields,
    )


def message_json(world: World, msg: StoredMessage) -> dict[str, Any]:
    """``message(...)`` serialised."""
    return as_json(message(world, msg))
