"""The sandbox's Bot API methods, with Telegram's checks in the order Telegram makes them.

Each method first reads its parameters (markup, text parsing), then checks the chat and
message, then what Telegram's server checks (blank or long text, button data), then flood
limits and whether the citizen blocked the bot, and only then changes the world.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import telegram

from bot.sandbox import objects
from bot.sandbox.errors import (
    INTERNAL,
    NOT_FOUND,
    QUERY_TOO_OLD,
    BotApiError,
    bad_request,
    conflict,
    forbidden,
    too_many_requests,
)
from bot.sandbox.files import MAX_DOWNLOAD_BYTES, StoredFile, image_size, make_png
from bot.sandbox.formatting import (
    MAX_CAPTION_LENGTH,
    MAX_RAW_TEXT_BYTES,
    MAX_TEXT_LENGTH,
    FormatError,
    FormattedText,
    format_text,
)
from bot.sandbox.markup import ReplyMarkup, parse_reply_markup
from bot.sandbox.params import Params, Upload
from bot.sandbox.state import (
    CallRecord,
    Fault,
    PrivateChat,
    StoredMessage,
    WebhookConfig,
    World,
)
from bot.sandbox.webhook import WebhookDeliverer

log = logging.getLogger(__name__)

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
})
# Real Bot API methods the sandbox does not model: refused clearly instead of "Not Found".
UNMODELLED = frozenset(m.lower() for m in (
    "logOut", "close", "forwardMessage", "forwardMessages", "copyMessage", "copyMessages",
    "sendAudio", "sendVideo", "sendAnimation", "sendVideoNote", "sendPaidMedia",
    "sendMediaGroup", "sendLocation", "sendVenue", "sendContact", "sendPoll", "sendChecklist",
    "sendDice", "setMessageReaction", "getUserProfilePhotos", "banChatMember",
    "unbanChatMember", "restrictChatMember", "promoteChatMember", "getChatAdministrators",
    "getChatMemberCount", "leaveChat", "pinChatMessage", "unpinChatMessage",
    "unpinAllChatMessages", "editMessageLiveLocation", "stopMessageLiveLocation", "stopPoll",
    "sendSticker", "answerInlineQuery", "sendInvoice", "answerWebAppQuery",
    "setMyDefaultAdministratorRights", "getMyDefaultAdministratorRights", "sendMessageDraft",
))
# Methods a webhook's answer may not call (Telegram ignores them there).
_NOT_FROM_WEBHOOK_REPLY = frozenset({"setwebhook", "deletewebhook", "close", "logout"})
def _is_voice(data: bytes) -> bool:
    """OGG with Opus inside, MP3 (a frame sync or an ID3 tag) or M4A: what Telegram plays as a voice note."""
    if data.startswith(b"OggS"):
        return b"OpusHead" in data[:200]
    return data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2") \
        or data[4:8] == b"ftyp"


_KIND_NAMES = {"photo": "Photo", "document": "Document", "voice": "Voice", "sticker": "Sticker"}
_LOOPBACK_HOSTS = ("localhost",)


@dataclass
class Answer:
    """A successful result, with the optional ``description`` some methods add."""

    result: Any
    description: str | None = None


Handler = Callable[[Params], Answer | Any | Awaitable[Answer | Any]]


class BotApi:
    """Bot API methods over a ``World``.

    Args:
        world: The sandbox state.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.webhook = WebhookDeliverer(world, self)
        self._poll: asyncio.Future[str] | None = None
        self._methods: dict[str, tuple[str, Handler]] = {}
        for name, handler in {
            "getMe": self.get_me, "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook, "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info, "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "editMessageCaption": self.edit_message_caption,
            "editMessageMedia": self.edit_message_media, "getChat": self.get_chat,
            "getChatMember": self.get_chat_member,
            "deleteMessage": self.delete_message, "deleteMessages": self.delete_messages,
            "answerCallbackQuery": self.answer_callback_query, "sendPhoto": self.send_photo,
            "sendDocument": self.send_document, "sendVoice": self.send_voice, "getFile": self.get_file,
            "sendChatAction": self.send_chat_action, "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands, "deleteMyCommands": self.delete_my_commands,
            "setMyDescription": self._set_text("description"),
            "getMyDescription": self._get_text("description"),
            "setMyShortDescription": self._set_text("short_description"),
            "getMyShortDescription": self._get_text("short_description"),
            "setMyName": self._set_text("name"), "getMyName": self._get_text("name"),
            "setChatMenuButton": self.set_chat_menu_button,
            "getChatMenuButton": self.get_chat_menu_button,
        }.items():
            self._methods[name.lower()] = (name, handler)

    # --- dispatch ------------------------------------------------------------------------

    async def handle(self, method: str, params: Params, *,
                     source: str = "http") -> tuple[int, dict[str, Any]]:
        """Run one Bot API call with faults, logging and activity tracking.

        Returns:
            The HTTP status and the JSON body Telegram would answer with.
        """
        entry = self._methods.get(method.lower())
        name = entry[0] if entry else method
        chat_id = self._chat_of(params)
        started = time.monotonic()
        fault: Fault | None = None
        self.world.begin_activity(chat_id)
        try:
            if entry is None:
                if method.lower() in UNMODELLED:
                    raise bad_request(f"method {method} is not modelled by the coassess sandbox")
                raise NOT_FOUND
            fault = self.world.take_fault(name)
            answer = await (self._with_fault(fault, entry[1], params) if fault
                            else self._run(entry[1], params))
            status, body = 200, {"ok": True, "result": answer.result}
            if answer.description:
                body["description"] = answer.description
        except BotApiError as error:
            status, body = error.error_code, error.to_json()
        except Exception:
            log.exception("sandbox failed on %s", name)
            status, body = 500, INTERNAL.to_json()
        finally:
            self.world.end_activity(chat_id)
        self.world.record_call(CallRecord(
            seq=self.world.new_call_seq(), time=time.time(), method=name, chat_id=chat_id,
            params=params.for_log(), ok=body["ok"], error_code=body.get("error_code"),
            description=body.get("description") if not body["ok"] else None,
            result=_summarise(body.get("result")), duration=time.monotonic() - started,
            source=source, fault=fault.kind if fault else None,
        ))
        return status, body

    async def _run(self, handler: Handler, params: Params) -> Answer:
        result = handler(params)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, Answer) else Answer(result)

    async def _with_fault(self, fault: Fault, handler: Handler, params: Params) -> Answer:
        if fault.kind == "flood":
            raise too_many_requests(fault.retry_after)
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            if fault.execute:
                return await self._run(handler, params)
            raise BotApiError(502, "Bad Gateway")
        if fault.execute:
            try:
                await self._run(handler, params)
            except BotApiError:
                pass
        raise BotApiError(fault.status, fault.description)

    def _chat_of(self, params: Params) -> int | None:
        """The chat a call is about (for activity tracking and the call log)."""
        value = params.raw("chat_id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        query = self.world.callbacks.get(params.str("callback_query_id") or "")
        return query.chat_id if query else None

    # --- shared checks -----------------------------------------------------------------

    def _chat(self, params: Params) -> PrivateChat:
        value = params.raw("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        chat_id = self._chat_of(Params({"chat_id": value}))
        chat = self.world.chats.get(chat_id) if chat_id is not None else None
        if chat is None:
            if chat_id in self.world.users:
                # The citizen exists but never wrote to the bot.
                raise forbidden("bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        return chat

    def _deliverable(self, chat: PrivateChat) -> None:
        person = self.world.users[chat.user_id]
        if person.deactivated:
            raise forbidden("user is deactivated")
        if person.blocked:
            raise forbidden("bot was blocked by the user")

    def _flood(self, chat_id: int) -> None:
        now = time.monotonic()
        wait = self.world.flood.retry_after(chat_id, now)
        if wait:
            raise too_many_requests(wait)
        self.world.flood.take(chat_id, now)

    def _markup(self, params: Params, *, inline_only: bool = False) -> ReplyMarkup | None:
        try:
            markup = parse_reply_markup(params.raw("reply_markup"))
        except FormatError as error:
            raise bad_request(str(error)) from None
        if inline_only and markup is not None and markup.kind != "inline":
            raise bad_request("inline keyboard expected")
        return markup

    def _format(self, raw: str, params: Params, mode_field: str,
                entities_field: str) -> FormattedText:
        try:
            return format_text(raw, params.str(mode_field), params.raw(entities_field),
                               strict_ampersand=self.world.strict_html,
                               find_user=self.world.user_json)
        except FormatError as error:
            raise bad_request(str(error)) from None

    def _server_markup_check(self, markup: ReplyMarkup | None) -> None:
        error = markup.server_error() if markup else None
        if error:
            raise bad_request(error)

    def _reply_to(self, params: Params, chat: PrivateChat) -> int | None:
        allow = params.bool("allow_sending_without_reply")
        message_id = params.int("reply_to_message_id")
        if params.has("reply_parameters"):
            reply = params.json("reply_parameters", "can't parse reply parameters JSON object")
            if not isinstance(reply, dict):
                raise bad_request("can't parse reply parameters JSON object")
            if "message_id" not in reply:
                raise bad_request('can\'t find field "message_id"')
            message_id = int(reply["message_id"])
            allow = bool(reply.get("allow_sending_without_reply", allow))
        if not message_id:
            return None
        if self.world.message(chat.id, message_id) is None:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return message_id

    def _keep(self, chat: PrivateChat, msg: StoredMessage, markup: ReplyMarkup | None) -> None:
        """Attach the markup to a new bot message and store it."""
        if markup is not None:
            if markup.kind == "inline":
                msg.inline_markup = None if markup.is_empty_inline else markup.data
            else:
                msg.attached_keyboard = {"type": markup.kind, **markup.data}
                if markup.kind == "keyboard":
                    chat.reply_keyboard = markup.data
                elif markup.kind == "remove":
                    chat.reply_keyboard = None
        self.world.store(msg)
        self.world.record_event(chat.id, "bot_message", msg.message_id, method=msg.method)

    def _new_message(self, chat: PrivateChat, params: Params, method: str,
                     reply_to: int | None, kind: str) -> StoredMessage:
        return StoredMessage(
            message_id=self.world.next_message_id(), chat_id=chat.id, from_bot=True,
            date=int(time.time()), kind=kind, reply_to=reply_to, method=method,
            protect_content=params.bool("protect_content"),
        )

    # --- identity ------------------------------------------------------------------------

    def get_me(self, params: Params) -> dict[str, Any]:
        """getMe."""
        return objects.as_json(objects.bot_user(self.world, full=True))

    # --- updates -------------------------------------------------------------------------

    def _allowed_updates(self, params: Params) -> list[str] | None:
        if not params.has("allowed_updates"):
            return None
        value = params.json("allowed_updates", "can't parse allowed_updates JSON object")
        if not isinstance(value, list):
            raise bad_request("can't parse allowed_updates JSON object")
        return [str(v).lower() for v in value]

    def terminate_poll(self, reason: str) -> None:
        """End a waiting getUpdates with 409 (another poller, or a webhook being set)."""
        if self._poll is not None and not self._poll.done():
            self._poll.set_result(reason)

    async def get_updates(self, params: Params) -> list[dict[str, Any]]:
        """getUpdates: offset confirms, long polling with timeout, one poller at a time."""
        world = self.world
        if world.webhook is not None:
            raise conflict("can't use getUpdates method while webhook is active; use "
                           "deleteWebhook to delete the webhook first")
        offset = params.int("offset", 0) or 0
        limit = min(max(params.int("limit", 100) or 100, 1), 100)
        timeout = min(max(params.int("timeout", 0) or 0, 0), 50)
        allowed = self._allowed_updates(params)
        self.terminate_poll("terminated by other getUpdates request; make sure that only one "
                            "bot instance is running")
        if offset > 0:
            world.confirm_below(offset)
        elif offset < 0:
            world.keep_last(-offset)
        if allowed is not None:
            world.allowed_updates = allowed
        loop = asyncio.get_running_loop()
        ticket: asyncio.Future[str] = loop.create_future()
        self._poll = ticket
        deadline = loop.time() + timeout
        try:
            while True:
                if ticket.done():
                    raise conflict(ticket.result())
                event = world.updates_arrived.current()
                batch = world.pending[:limit]
                remaining = deadline - loop.time()
                if batch or remaining <= 0:
                    return [update.body for update in batch]
                waiter = asyncio.ensure_future(event.wait())
                await asyncio.wait([waiter, ticket], timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        finally:
            if self._poll is ticket:
                self._poll = None

    def set_webhook(self, params: Params) -> Answer:
        """setWebhook: deliveries to a loopback URL with the secret header."""
        world = self.world
        url = params.str("url") or ""
        allowed = self._allowed_updates(params)
        if not url:
            return self.delete_webhook(params)
        parts = urlsplit(url if "://" in url else "https://" + url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("invalid webhook URL specified")
        if not _is_loopback(parts.hostname):
            raise bad_request("bad webhook: the coassess sandbox delivers only to loopback "
                              "addresses (127.0.0.1, ::1, localhost)")
        secret = params.str("secret_token") or None
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = min(max(params.int("max_connections", 40) or 40, 1), 100)
        if params.bool("drop_pending_updates"):
            world.pending.clear()
        old = world.webhook
        same = (old is not None and old.url == url and old.secret_token == secret
                and old.max_connections == max_connections
                and (allowed is None or allowed == world.allowed_updates))
        self.terminate_poll("terminated by setWebhook request")
        world.webhook = WebhookConfig(
            url=url, secret_token=secret, max_connections=max_connections,
            ip_address=parts.hostname if parts.hostname != "localhost" else "127.0.0.1",
            has_custom_certificate=params.upload("certificate") is not None,
        )
        if old is not None and old.url == url:
            world.webhook.last_error_date = old.last_error_date
            world.webhook.last_error_message = old.last_error_message
        if allowed is not None:
            world.allowed_updates = allowed
        self.webhook.restart()
        return Answer(True, "Webhook is already set" if same else "Webhook was set")

    def delete_webhook(self, params: Params) -> Answer:
        """deleteWebhook."""
        if params.bool("drop_pending_updates"):
            self.world.pending.clear()
        if self.world.webhook is None:
            return Answer(True, "Webhook is already deleted")
        self.world.webhook = None
        self.webhook.restart()
        return Answer(True, "Webhook was deleted")

    def get_webhook_info(self, params: Params) -> dict[str, Any]:
        """getWebhookInfo: url, pending_update_count, last error."""
        config = self.world.webhook
        pending = len(self.world.pending)
        if config is None:
            info = telegram.WebhookInfo(url="", has_custom_certificate=False,
                                        pending_update_count=pending)
        else:
            info = telegram.WebhookInfo(
                url=config.url, has_custom_certificate=config.has_custom_certificate,
                pending_update_count=pending,
                last_error_date=(objects.timestamp(config.last_error_date)
                                 if config.last_error_date else None),
                last_error_message=config.last_error_message,
                max_connections=config.max_connections,
                allowed_updates=self.world.allowed_updates or None,
                ip_address=config.ip_address,
            )
        return objects.as_json(info)

    # --- sending -------------------------------------------------------------------------

    def send_message(self, params: Params) -> dict[str, Any]:
        """sendMessage."""
        markup = self._markup(params)
        raw = params.str("text")
        if not raw:
            raise bad_request("message text is empty")
        if len(raw.encode("utf-8")) > MAX_RAW_TEXT_BYTES:
            raise bad_request("text is too long")
        formatted = self._format(raw, params, "parse_mode", "entities")
        chat = self._chat(params)
        reply_to = self._reply_to(params, chat)
        if formatted.is_blank():
            raise bad_request("text must be non-empty")
        if formatted.length() > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        self._server_markup_check(markup)
        self._flood(chat.id)
        self._deliverable(chat)
        msg = self._new_message(chat, params, "sendMessage", reply_to, "text")
        msg.text, msg.entities = formatted.text, formatted.entities
        msg.parse_mode, msg.source = params.str("parse_mode"), raw
        self._keep(chat, msg, markup)
        return objects.message_json(self.world, msg)

    def _caption(self, params: Params) -> tuple[FormattedText | None, str | None]:
        raw = params.str("caption")
        if not raw:
            return None, None
        return self._format(raw, params, "parse_mode", "caption_entities"), raw

    def _send_media(self, params: Params, kind: str, method: str) -> dict[str, Any]:
        markup = self._markup(params)
        caption, raw_caption = self._caption(params)
        stored = self._input_file(kind, params.raw(kind), params.upload(kind))
        chat = self._chat(params)
        reply_to = self._reply_to(params, chat)
        if caption is not None and caption.length() > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        self._server_markup_check(markup)
        self._flood(chat.id)
        self._deliverable(chat)
        msg = self._new_message(chat, params, method, reply_to, kind)
        msg.media[kind] = stored if kind == "photo" else stored[0]
        if caption is not None and not caption.is_blank():
            msg.caption, msg.caption_entities = caption.text, caption.entities
            msg.parse_mode, msg.source = params.str("parse_mode"), raw_caption
        self._keep(chat, msg, markup)
        return objects.message_json(self.world, msg)

    def send_photo(self, params: Params) -> dict[str, Any]:
        """sendPhoto: upload, file_id or URL."""
        return self._send_media(params, "photo", "sendPhoto")

    def send_document(self, params: Params) -> dict[str, Any]:
        """sendDocument: upload, file_id or URL."""
        return self._send_media(params, "document", "sendDocument")

    def send_voice(self, params: Params) -> dict[str, Any]:
        """sendVoice: an OGG/Opus (or MP3, M4A) upload, or the file_id of one sent before."""
        upload = params.upload("voice")
        if upload is not None and not _is_voice(upload.data):
            raise bad_request("VOICE_MESSAGES_FORBIDDEN: the file is not OGG/Opus, MP3 or M4A")
        result = self._send_media(params, "voice", "sendVoice")
        stored = self.world.files.get(result["voice"]["file_id"])
        if stored is not None and upload is not None:
            # the sender states the length, as Telegram takes it; later sends by file_id keep it
            stored.duration = params.int("duration") or 0
            result["voice"]["duration"] = stored.duration
        return result

    def _input_file(self, kind: str, value: Any, upload: Upload | None) -> list[str]:
        """Read an InputFile (upload, file_id or URL); returns the file_id(s) for the message."""
        files = self.world.files
        missing = bad_request(f"there is no {kind} in the request")
        if upload is not None:
            if kind == "photo":
                size = image_size(upload.data)
                if size is None:
                    raise bad_request("IMAGE_PROCESS_FAILED")
                if max(size) > 20 * min(size):
                    raise bad_request("PHOTO_INVALID_DIMENSIONS")
                return self.world.store_photo(upload.data, *size)
            mime = upload.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(upload.filename or "")[0] or mime
            stored = files.add(kind, upload.data, file_name=upload.filename, mime_type=mime)
            return [stored.file_id]
        if not isinstance(value, str) or not value or value.startswith("attach://"):
            raise missing
        if "." in value or "://" in value:
            scheme = value.split("://", 1)[0].lower() if "://" in value else "http"
            if scheme not in ("http", "https"):
                raise bad_request("invalid file HTTP URL specified: Unsupported URL protocol")
            # No network: a URL stands for a small stand-in file.
            name = urlsplit(value if "://" in value else "http://" + value).path.rsplit("/", 1)[-1]
            if kind == "photo":
                return self.world.store_photo(make_png(800, 600), 800, 600)
            stored = files.add(kind, b"\0", file_name=name or None,
                               mime_type=mimetypes.guess_type(name)[0], source_url=value)
            return [stored.file_id]
        stored_file = files.get(value)
        if stored_file is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored_file.kind != kind:
            raise bad_request(f"can't use file of type {_KIND_NAMES.get(stored_file.kind)} as "
                              f"{_KIND_NAMES[kind]}")
        return [stored_file.file_id]

    def get_chat(self, params: Params) -> dict[str, Any]:
        """getChat for a private chat (aiogram-dialog's BgManager loads chats with it)."""
        chat = self._chat(params)
        person = self.world.users[chat.user_id]
        info = telegram.ChatFullInfo(
            id=chat.id, type=telegram.Chat.PRIVATE, first_name=person.first_name,
            last_name=person.last_name, username=person.username,
            accent_color_id=chat.id % 7, max_reaction_count=11,
            accepted_gift_types=telegram.AcceptedGiftTypes(True, True, True, True, False),
        )
        return objects.as_json(info)

    def get_chat_member(self, params: Params) -> dict[str, Any]:
        """getChatMember in a private chat: the citizen, or the bot (kicked once blocked)."""
        chat = self._chat(params)
        user_id = params.int("user_id")
        if not user_id:
            raise bad_request("invalid user_id specified")
        person = self.world.users[chat.user_id]
        if user_id == person.id:
            member: telegram.ChatMember = telegram.ChatMemberMember(user=objects.user(person))
        elif user_id == self.world.bot_id:
            me = objects.bot_user(self.world)
            member = (telegram.ChatMemberBanned(user=me, until_date=objects.timestamp(0))
                      if person.blocked else telegram.ChatMemberMember(user=me))
        else:
            raise bad_request("user not found")
        return objects.as_json(member)

    def get_file(self, params: Params) -> dict[str, Any]:
        """getFile: a download path under ``/file/bot<token>/``."""
        stored: StoredFile | None = self.world.files.get(params.str("file_id") or "")
        if stored is None:
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        if stored.file_size > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        path = self.world.files.assign_path(stored)
        return objects.as_json(telegram.File(stored.file_id, stored.file_unique_id,
                                             file_size=stored.file_size, file_path=path))

    def send_chat_action(self, params: Params) -> bool:
        """sendChatAction."""
        chat = self._chat(params)
        if (params.str("action") or "") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._deliverable(chat)
        return True

    # --- editing and deleting ------------------------------------------------------------

    def _edit_target(self, params: Params) -> tuple[PrivateChat, StoredMessage]:
        if params.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._chat(params)
        message_id = params.int("message_id")
        if not message_id:
            raise bad_request("message identifier is not specified")
        msg = self.world.message(chat.id, message_id)
        if msg is None:
            raise bad_request("message to edit not found")
        # A message sent with a reply keyboard (or remove/force reply) can't be edited either.
        if not msg.from_bot or msg.attached_keyboard is not None:
            raise bad_request("message can't be edited")
        return chat, msg

    def _apply_edit(self, chat: PrivateChat, msg: StoredMessage, **changes: Any) -> dict[str, Any]:
        msg.versions.append(msg.snapshot())
        for name, value in changes.items():
            setattr(msg, name, value)
        msg.edit_date = int(time.time())
        msg.edit_count += 1
        self.world.record_event(chat.id, "bot_edit", msg.message_id,
                                fields=sorted(changes))
        return objects.message_json(self.world, msg)

    @staticmethod
    def _inline(markup: ReplyMarkup | None) -> dict[str, Any] | None:
        return None if markup is None or markup.is_empty_inline else markup.data

    def edit_message_text(self, params: Params) -> dict[str, Any]:
        """editMessageText. Without reply_markup the inline keyboard is removed, as on Telegram."""
        markup = self._markup(params, inline_only=True)
        raw = params.str("text")
        if not raw:
            raise bad_request("message text is empty")
        formatted = self._format(raw, params, "parse_mode", "entities")
        chat, msg = self._edit_target(params)
        if msg.text is None:
            raise bad_request("there is no text in the message to edit")
        if formatted.is_blank():
            raise bad_request("text must be non-empty")
        if formatted.length() > MAX_TEXT_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        inline = self._inline(markup)
        if (msg.text, msg.entities, msg.inline_markup) == (formatted.text, formatted.entities,
                                                           inline):
            raise bad_request(NOT_MODIFIED)
        self._server_markup_check(markup)
        self._flood(chat.id)
        return self._apply_edit(chat, msg, text=formatted.text, entities=formatted.entities,
                                inline_markup=inline, parse_mode=params.str("parse_mode"),
                                source=raw)

    def edit_message_caption(self, params: Params) -> dict[str, Any]:
        """editMessageCaption (an empty caption removes it)."""
        markup = self._markup(params, inline_only=True)
        caption, raw = self._caption(params)
        chat, msg = self._edit_target(params)
        if not {"photo", "document", "voice"} & set(msg.media):
            raise bad_request("there is no caption in the message to edit")
        if caption is not None and caption.length() > MAX_CAPTION_LENGTH:
            raise bad_request("MEDIA_CAPTION_TOO_LONG")
        text = caption.text if caption and not caption.is_blank() else None
        entities = caption.entities if text else []
        inline = self._inline(markup)
        if (msg.caption, msg.caption_entities, msg.inline_markup) == (text, entities, inline):
            raise bad_request(NOT_MODIFIED)
        self._server_markup_check(markup)
        self._flood(chat.id)
        return self._apply_edit(chat, msg, caption=text, caption_entities=entities,
                                inline_markup=inline, parse_mode=params.str("parse_mode"),
                                source=raw)

    def edit_message_media(self, params: Params) -> dict[str, Any]:
        """editMessageMedia: a photo or document replaces a text, photo or document message."""
        markup = self._markup(params, inline_only=True)
        media = params.json("media", "can't parse InputMedia JSON object")
        if not isinstance(media, dict):
            raise bad_request("can't parse InputMedia JSON object")
        kind = media.get("type")
        if kind is None:
            raise bad_request('can\'t parse InputMedia: Can\'t find field "type"')
        if kind not in ("photo", "document"):
            raise bad_request(f"can't parse InputMedia: type \"{kind}\" is not modelled by the "
                              "coassess sandbox")
        value = media.get("media")
        upload = (params.files.get(value[len("attach://"):])
                  if isinstance(value, str) and value.startswith("attach://") else None)
        caption_params = Params({"caption": media.get("caption"),
                                 "parse_mode": media.get("parse_mode"),
                                 "caption_entities": media.get("caption_entities")})
        caption, raw_caption = self._caption(caption_params)
        stored = self._input_file(kind, value, upload)
        chat, msg = self._edit_target(params)
        if msg.kind not in ("text", "photo", "document"):
            raise bad_request("message media can't be edited")
        if caption is not None and caption.length() > MAX_CAPTION_LENGTH:
            raise bad_request("MEDIA_CAPTION_TOO_LONG")
        text = caption.text if caption and not caption.is_blank() else None
        entities = caption.entities if caption and text else []
        new_media = {kind: stored if kind == "photo" else stored[0]}
        inline = self._inline(markup)
        if (msg.media, msg.caption, msg.caption_entities, msg.inline_markup) == (
                new_media, text, entities, inline):
            raise bad_request(NOT_MODIFIED)
        self._server_markup_check(markup)
        self._flood(chat.id)
        return self._apply_edit(
            chat, msg, kind=kind, text=None, entities=[], media=new_media, caption=text,
            caption_entities=entities, inline_markup=inline,
            parse_mode=caption_params.str("parse_mode"), source=raw_caption)

    def edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        """editMessageReplyMarkup (no reply_markup removes the keyboard)."""
        markup = self._markup(params, inline_only=True)
        chat, msg = self._edit_target(params)
        inline = self._inline(markup)
        if msg.inline_markup == inline:
            raise bad_request(NOT_MODIFIED)
        self._server_markup_check(markup)
        self._flood(chat.id)
        return self._apply_edit(chat, msg, inline_markup=inline)

    def _delete(self, chat: PrivateChat, msg: StoredMessage) -> None:
        msg.deleted = True
        msg.deleted_at = time.time()
        self.world.record_event(chat.id, "bot_delete", msg.message_id,
                                own=msg.from_bot)

    def delete_message(self, params: Params) -> bool:
        """deleteMessage: any message of the bot's private chat, under 48 hours old."""
        chat = self._chat(params)
        message_id = params.int("message_id")
        if not message_id:
            raise bad_request("message identifier is not specified")
        msg = self.world.message(chat.id, message_id)
        if msg is None:
            raise bad_request("message to delete not found")
        if time.time() - msg.date > 48 * 3600:
            raise bad_request("message can't be deleted")
        self._delete(chat, msg)
        return True

    def delete_messages(self, params: Params) -> bool:
        """deleteMessages: 1-100 ids; missing ones are skipped."""
        chat = self._chat(params)
        ids = params.json("message_ids", "can't parse message identifiers JSON object")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("too many message identifiers specified" if isinstance(ids, list)
                              and ids else "message identifiers are empty")
        for message_id in ids:
            msg = self.world.message(chat.id, int(message_id))
            if msg is not None:
                self._delete(chat, msg)
        return True

    def answer_callback_query(self, params: Params) -> bool:
        """answerCallbackQuery: once, within the callback timeout."""
        record = self.world.callbacks.get(params.str("callback_query_id") or "")
        if (record is None or record.answered
                or time.monotonic() - record.created > self.world.limits.callback_timeout):
            raise bad_request(QUERY_TOO_OLD)
        text = params.str("text")
        if text and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")  # the query stays open
        record.answered = True
        record.answered_at = time.time()
        record.answer = {"text": text, "show_alert": params.bool("show_alert"),
                         "url": params.str("url"), "cache_time": params.int("cache_time", 0)}
        self.world.record_event(record.chat_id, "callback_answer", record.message_id,
                                callback_query_id=record.id, text=text)
        return True

    # --- commands and bot texts ------------------------------------------------------------

    def _scope(self, params: Params) -> str:
        scope = params.json("scope", "can't parse BotCommandScope JSON object")
        if scope is None:
            return "default"
        prefix = "can't parse BotCommandScope: "
        if not isinstance(scope, dict):
            raise bad_request(prefix + "expected an Object")
        kind = scope.get("type")
        if kind in ("default", "all_private_chats", "all_group_chats",
                    "all_chat_administrators"):
            return str(kind)
        if kind in ("chat", "chat_administrators", "chat_member"):
            if scope.get("chat_id") in (None, ""):
                raise bad_request(prefix + 'Can\'t find field "chat_id"')
            chat = self._chat(Params({"chat_id": scope["chat_id"]}))
            if kind == "chat_member":
                user_id = scope.get("user_id")
                if not isinstance(user_id, int) or user_id <= 0:
                    raise bad_request(prefix + 'Field "user_id" must be a positive Number')
                return f"chat_member:{chat.id}:{user_id}"
            if kind == "chat_administrators":
                raise bad_request("can't use chat_administrators scope in private chats")
            return f"chat:{chat.id}"
        raise bad_request(prefix + "Unsupported type specified")

    def _language(self, params: Params) -> str:
        code = params.str("language_code") or ""
        if code and not re.fullmatch(r"[a-z]{2}", code):
            raise bad_request("invalid language code specified")
        return code

    def set_my_commands(self, params: Params) -> bool:
        """setMyCommands for a scope and language."""
        commands = params.json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        checked = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand: expected an Object")
            for name in ("command", "description"):
                if not isinstance(item.get(name), str):
                    raise bad_request(f'can\'t parse BotCommand: Field "{name}" must be of type '
                                      "String")
            command = item["command"].strip().removeprefix("/")
            description = item["description"].strip()
            if not command:
                raise bad_request("command must be non-empty")
            if len(command) > 32:
                raise bad_request("command length must not exceed 32")
            if not description:
                raise bad_request("command description must be non-empty")
            if len(description) > 256:
                raise bad_request("command description length must not exceed 256")
            if not re.fullmatch(r"[a-z0-9_]+", command):
                raise bad_request("BOT_COMMAND_INVALID")
            checked.append({"command": command, "description": description})
        if len(checked) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        key = (self._scope(params), self._language(params))
        if checked:
            self.world.commands[key] = checked
        else:
            self.world.commands.pop(key, None)
        return True

    def get_my_commands(self, params: Params) -> list[dict[str, str]]:
        """getMyCommands: the list for exactly this scope and language."""
        return list(self.world.commands.get((self._scope(params), self._language(params)), []))

    def delete_my_commands(self, params: Params) -> bool:
        """deleteMyCommands for exactly this scope and language."""
        self.world.commands.pop((self._scope(params), self._language(params)), None)
        return True

    def visible_commands(self, user_id: int) -> list[dict[str, str]]:
        """The command menu a citizen sees, resolved through scopes as Telegram does."""
        person = self.world.user(user_id)
        language = (person.language_code or "")[:2]
        for scope in (f"chat_member:{user_id}:{user_id}", f"chat:{user_id}",
                      "all_private_chats", "default"):
            for code in (language, ""):
                if (scope, code) in self.world.commands:
                    return self.world.commands[(scope, code)]
        return []

    def _set_text(self, field: str) -> Handler:
        limits = {"name": 64, "description": 512, "short_description": 120}

        def handler(params: Params) -> bool:
            value = params.str(field) or ""
            if len(value) > limits[field]:
                raise bad_request(f"bot {field.replace('_', ' ')} is too long")
            key = (field, self._language(params))
            if value:
                self.world.bot_texts[key] = value
            else:
                self.world.bot_texts.pop(key, None)
            return True

        return handler

    def _get_text(self, field: str) -> Handler:
        def handler(params: Params) -> dict[str, str]:
            language = self._language(params)
            value = self.world.bot_texts.get((field, language))
            if value is None:
                value = self.world.bot_texts.get((field, ""), self.world.bot_first_name
                                                 if field == "name" else "")
            return {field: value}

        return handler

    def set_chat_menu_button(self, params: Params) -> bool:
        """setChatMenuButton (default or one private chat)."""
        chat_id = self._chat(params).id if params.has("chat_id") else None
        button = params.json("menu_button", "can't parse menu button JSON object")
        if button is not None and (not isinstance(button, dict) or button.get("type") not in (
                "commands", "web_app", "default")):
            raise bad_request("can't parse menu button JSON object")
        self.world.menu_buttons[chat_id] = button or {"type": "default"}
        return True

    def get_chat_menu_button(self, params: Params) -> dict[str, Any]:
        """getChatMenuButton."""
        chat_id = self._chat(params).id if params.has("chat_id") else None
        return self.world.menu_buttons.get(chat_id) or self.world.menu_buttons.get(None) or {
            "type": "commands"}

    # --- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop webhook deliveries and end a waiting poll."""
        self.terminate_poll("terminated by other getUpdates request; make sure that only one "
                            "bot instance is running")
        await self.webhook.close()

    def reset(self) -> None:
        """Reset the world and stop webhook deliveries."""
        self.world.reset()
        self.webhook.restart()

    def webhook_reply_allowed(self, method: str) -> bool:
        """Whether a webhook's answer may call ``method`` (Telegram skips some)."""
        key = method.lower()
        return key not in _NOT_FROM_WEBHOOK_REPLY and not key.startswith("get")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _summarise(result: Any) -> Any:
    """A short form of a result for the call log."""
    if isinstance(result, dict) and "message_id" in result:
        return {"message_id": result["message_id"]}
    if isinstance(result, list):
        return {"count": len(result)}
    if isinstance(result, (bool, int, str)) or result is None:
        return result
    return type(result).__name__
