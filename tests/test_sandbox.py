"""The sandbox Bot API, driven over loopback HTTP by a real aiogram Bot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from aiohttp import web

from bot.sandbox import Limits, Sandbox, SandboxClient, SandboxError, peak_rate
from bot.sandbox.files import make_png
from bot.sandbox.formatting import FormatError, format_text

USER = 1001

pytestmark = pytest.mark.timeout(30)


def make_bot(sandbox: Sandbox, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.api_url))
    return Bot(token or sandbox.token, session=session)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as running:
        yield running


@pytest.fixture
async def bot(sandbox: Sandbox) -> AsyncIterator[Bot]:
    instance = make_bot(sandbox)
    yield instance
    await instance.session.close()


@pytest.fixture
async def client(sandbox: Sandbox) -> SandboxClient:
    await sandbox.client.create_user(USER, first_name="Ann", username="ann",
                                     language_code="fr")
    await sandbox.client.send_command(USER, "start")  # the citizen opens the chat
    return sandbox.client


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=text, callback_data=data) for text, data in buttons]])


async def expect_bad_request(call: Any, description: str) -> None:
    with pytest.raises(TelegramBadRequest) as caught:
        await call
    assert caught.value.message == f"Bad Request: {description}"


# --- round trip ----------------------------------------------------------------------------


async def test_get_me_and_message_round_trip(sandbox: Sandbox, bot: Bot,
                                             client: SandboxClient) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.first_name) == (
        123456, True, "coassess_sandbox_bot", "Coassess Sandbox")

    sent = await client.send_command(USER, "start", "campaign-42_x")
    updates = await bot.get_updates(timeout=0)
    last = updates[-1]
    assert last.update_id == sent.update_id
    assert last.message is not None and last.message.text == "/start campaign-42_x"
    assert last.message.entities is not None
    assert (last.message.entities[0].type, last.message.entities[0].length) == ("bot_command", 6)
    assert last.message.from_user is not None and last.message.from_user.language_code == "fr"
    assert last.message.chat.id == USER and last.message.chat.type == "private"

    message = await bot.send_message(USER, "  <b>Bonjour</b> &amp; <i>bienvenue</i> 😀  ",
                                     parse_mode="HTML", reply_markup=keyboard(("Oui", "yes")))
    assert message.text == "Bonjour & bienvenue 😀"
    assert [(e.type, e.offset, e.length) for e in message.entities or []] == [
        ("bold", 0, 7), ("italic", 10, 9)]
    assert message.reply_markup is not None
    assert message.reply_markup.inline_keyboard[0][0].callback_data == "yes"

    reply = await client.wait_for_bot(USER, after=sent)
    assert reply.texts == ["Bonjour & bienvenue 😀"]
    view = reply.last
    assert view is not None and view["parse_mode"] == "HTML" and not view["edited"]
    assert view["source"].startswith("  <b>Bonjour</b>")

    edited = await bot.edit_message_text("Merci", chat_id=USER, message_id=message.message_id)
    assert edited.text == "Merci" and edited.reply_markup is None  # no markup removes it
    assert edited.edit_date is not None
    state = (await client.bot_messages(USER))[-1]
    assert state["edited"] and state["versions"][0]["text"] == "Bonjour & bienvenue 😀"

    assert await bot.delete_message(USER, message.message_id)
    transcript = await client.transcript(USER)
    deleted = [m for m in transcript["messages"] if m["message_id"] == message.message_id]
    assert deleted[0]["deleted"] is True
    await expect_bad_request(bot.delete_message(USER, message.message_id),
                             "message to delete not found")


async def test_unknown_method_and_wrong_token(sandbox: Sandbox, bot: Bot) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sandbox.api_url}/bot{sandbox.token}/sendMesage") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404,
                                             "description": "Not Found"}
        async with http.get(f"{sandbox.api_url}/bot{sandbox.token}/GETME") as response:
            body = await response.json()
            assert body["ok"] and body["result"]["username"] == "coassess_sandbox_bot"
        async with http.get(f"{sandbox.api_url}/bot123456:WRONG/getMe") as response:
            assert response.status == 401
            assert (await response.json())["description"] == "Unauthorized"

    stranger = make_bot(sandbox, "123456:WRONG")
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()


async def test_json_and_form_bodies_are_accepted(sandbox: Sandbox, client: SandboxClient) -> None:
    url = f"{sandbox.api_url}/bot{sandbox.token}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"chat_id": USER, "text": "json", "reply_markup": markup,
                                        "unknown_but_harmless": 1}) as response:
            body = await response.json()
            assert body["ok"] and body["result"]["reply_markup"] == markup
        form = {"chat_id": str(USER), "text": "form", "reply_markup": json.dumps(markup)}
        async with http.post(url, data=form) as response:
            assert (await response.json())["result"]["text"] == "form"
        async with http.get(url, params={"chat_id": str(USER), "text": "query"}) as response:
            assert (await response.json())["result"]["text"] == "query"


# --- Telegram's errors -----------------------------------------------------------------------


async def test_text_errors(bot: Bot, client: SandboxClient) -> None:
    await expect_bad_request(bot.send_message(USER, ""), "message text is empty")
    await expect_bad_request(bot.send_message(USER, " \n "), "text must be non-empty")
    await expect_bad_request(bot.send_message(USER, "x" * 4097), "message is too long")
    # The limit counts visible text after parsing, in code points.
    assert await bot.send_message(USER, "<b>" + "😀" * 4096 + "</b>", parse_mode="HTML")
    await expect_bad_request(bot.send_message(USER, "<b>" + "x" * 4097 + "</b>",
                                              parse_mode="HTML"), "message is too long")
    await expect_bad_request(
        bot.send_message(USER, "<foo>bar</foo>", parse_mode="HTML"),
        'can\'t parse entities: Unsupported start tag "foo" at byte offset 0')
    await expect_bad_request(
        bot.send_message(USER, "<b>open", parse_mode="HTML"),
        'can\'t parse entities: Can\'t find end tag corresponding to start tag "b"')
    await expect_bad_request(
        bot.send_message(USER, "<b><i>x</b></i>", parse_mode="HTML"),
        'can\'t parse entities: Unmatched end tag at byte offset 7, expected "</i>", '
        'found "</b>"')
    with pytest.raises(TelegramBadRequest, match="can't parse entities: .*&"):
        await bot.send_message(USER, "Q&A", parse_mode="HTML")
    await expect_bad_request(
        bot.send_message(USER, "1.5", parse_mode="MarkdownV2"),
        "can't parse entities: Character '.' is reserved and must be escaped with the "
        "preceding '\\'")
    await expect_bad_request(bot.send_message(USER, "x", parse_mode="BBCode"),
                             "unsupported parse_mode")
    photo = BufferedInputFile(make_png(8, 8), "p.png")
    await expect_bad_request(bot.send_photo(USER, photo, caption="c" * 1025),
                             "message caption is too long")


async def test_keyboard_errors(bot: Bot, client: SandboxClient) -> None:
    await expect_bad_request(bot.send_message(USER, "x", reply_markup=keyboard(("A", "é" * 33))),
                             "BUTTON_DATA_INVALID")  # 66 bytes of UTF-8, 33 characters
    assert await bot.send_message(USER, "x", reply_markup=keyboard(("A", "é" * 32)))
    await expect_bad_request(
        bot.send_message(USER, "x", reply_markup=keyboard(("A", ""))),
        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    await expect_bad_request(bot.send_message(USER, "x", reply_markup=keyboard(("", "a"))),
                             "BUTTON_TEXT_INVALID")
    await expect_bad_request(bot.send_message(-5, "x", reply_markup=keyboard(("A", "é" * 40))),
                             "chat not found")  # button data is checked after the chat


async def test_edit_errors(bot: Bot, client: SandboxClient) -> None:
    message = await bot.send_message(USER, "<b>Q1</b>", parse_mode="HTML",
                                     reply_markup=keyboard(("A", "a")))
    not_modified = ("message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message")
    await expect_bad_request(
        bot.edit_message_text("<b>Q1</b>", chat_id=USER, message_id=message.message_id,
                              parse_mode="HTML", reply_markup=keyboard(("A", "a"))),
        not_modified)
    await expect_bad_request(
        bot.edit_message_reply_markup(chat_id=USER, message_id=message.message_id,
                                      reply_markup=keyboard(("A", "a"))), not_modified)
    await expect_bad_request(bot.edit_message_text("x", chat_id=USER, message_id=999_999),
                             "message to edit not found")
    await expect_bad_request(bot.edit_message_text("x", chat_id=777, message_id=1),
                             "chat not found")
    changed = await bot.edit_message_reply_markup(chat_id=USER, message_id=message.message_id,
                                                  reply_markup=keyboard(("B", "b")))
    assert isinstance(changed, Message) and changed.reply_markup is not None
    with_reply_keyboard = await bot.send_message(USER, "pick", reply_markup=ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Yes")]], one_time_keyboard=True))
    await expect_bad_request(bot.edit_message_text("y", chat_id=USER,
                                                   message_id=with_reply_keyboard.message_id),
                             "message can't be edited")
    answered = await client.press_reply_button(USER, "Yes")
    assert (await client.transcript(USER))["reply_keyboard"] is None  # one-time: hidden
    assert answered.update is not None and answered.update["message"]["text"] == "Yes"


async def test_callback_query_rules(sandbox: Sandbox, bot: Bot, client: SandboxClient) -> None:
    message = await bot.send_message(USER, "Rate us", reply_markup=InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Good", callback_data="r:5"),
                          InlineKeyboardButton(text="Site", url="https://example.org")]]))
    tap = await client.tap(USER, message.message_id, text="Good")
    assert tap.update is not None
    update = Update.model_validate(tap.update, context={"bot": bot})  # aiogram parses it
    assert update.callback_query is not None and update.callback_query.data == "r:5"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == message.message_id
    assert (await client.callback(tap.callback_query_id or ""))["answered"] is False

    assert await bot.answer_callback_query(tap.callback_query_id or "", text="Merci")
    status = await client.callback(tap.callback_query_id or "")
    assert status["answered"] and status["answer"]["text"] == "Merci"
    too_old = "query is too old and response timeout expired or query ID is invalid"
    await expect_bad_request(bot.answer_callback_query(tap.callback_query_id or ""), too_old)
    await expect_bad_request(bot.answer_callback_query("12345"), too_old)

    by_position = await client.tap(USER, message.message_id, row=0, col=0)
    await expect_bad_request(bot.answer_callback_query(by_position.callback_query_id or "",
                                                       text="x" * 201), "MESSAGE_TOO_LONG")
    await client.set_limits(callback_timeout=0.2)
    late = await client.tap(USER, message.message_id, data="r:5")
    await asyncio.sleep(0.3)
    await expect_bad_request(bot.answer_callback_query(late.callback_query_id or ""), too_old)
    with pytest.raises(SandboxError) as caught:
        await client.tap(USER, message.message_id, text="Site")  # a URL button sends nothing
    assert caught.value.status == 400


async def test_blocked_and_unknown_users(bot: Bot, client: SandboxClient) -> None:
    await bot.get_updates(offset=-1)
    pending = await bot.get_updates()
    await bot.get_updates(offset=pending[-1].update_id + 1)

    await client.block(USER)
    updates = await bot.get_updates()
    change = updates[-1].my_chat_member
    assert change is not None and change.new_chat_member.status == "kicked"
    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(USER, "still there?")
    assert caught.value.message == "Forbidden: bot was blocked by the user"
    with pytest.raises(SandboxError) as refused:
        await client.send_text(USER, "hi")
    assert refused.value.status == 409
    await client.unblock(USER)
    assert await bot.send_message(USER, "welcome back")

    await client.create_user(2002, first_name="Never wrote")
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await bot.send_message(2002, "hello")
    await expect_bad_request(bot.send_message(3003, "hello"), "chat not found")
    await client.deactivate(USER)
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(USER, "hello")


async def test_flood_limits(sandbox: Sandbox, bot: Bot, client: SandboxClient) -> None:
    for _ in range(3):  # the default per-chat burst
        await bot.send_message(USER, "burst")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "one too many")
    assert caught.value.retry_after >= 1
    # aiogram wraps Telegram's text; the original is kept at the end.
    assert caught.value.message.endswith(
        f"Too Many Requests: retry after {caught.value.retry_after}")

    await client.set_limits(per_chat_per_second=None, global_per_second=5)
    users = list(range(5001, 5007))
    for user_id in users:
        await client.create_user(user_id)
        await client.send_text(user_id, "hi")
    for user_id in users[:5]:
        await bot.send_message(user_id, "news")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(users[5], "news")

    stats = await client.stats()
    assert stats["served_429"] == 2
    news = [c for c in await client.calls(method="sendMessage") if c["params"]["text"] == "news"]
    assert [c["ok"] for c in news] == [True] * 5 + [False]
    assert peak_rate([c for c in news if c["ok"]], window=1.0) == 5


def test_peak_rate_and_formatting_rules() -> None:
    assert peak_rate([{"time": t} for t in (0.0, 0.5, 0.99, 1.0, 1.5)], window=1.0) == 3
    strict = format_text("a <b>😀x</b> [link](https://e.org)", "HTML")
    assert strict.text == "a 😀x [link](https://e.org)"
    assert strict.entities[0] == {"type": "bold", "offset": 2, "length": 3}  # UTF-16 units
    assert strict.entities[1]["type"] == "url"
    assert format_text("AT&T", "HTML", strict_ampersand=False).text == "AT&T"  # TDLib's way
    markdown = format_text("*bold* [site](https://e.org) \\. ok\\!", "MarkdownV2")
    assert markdown.text == "bold site . ok!"
    assert markdown.entities[1] == {"type": "text_link", "offset": 5, "length": 4,
                                    "url": "https://e.org/"}
    with pytest.raises(FormatError, match="Can't find end of the entity starting at byte offset"):
        format_text("_open", "Markdown")
    with pytest.raises(FormatError, match="ends after the end of the text at UTF-16 offset 9"):
        format_text("hello", None, [{"type": "bold", "offset": 4, "length": 5}])
    with pytest.raises(FormatError, match="Unsupported type specified"):
        format_text("hello", None, '[{"type": "shout", "offset": 0, "length": 1}]')


async def test_get_updates_offset_and_competing_pollers(bot: Bot,
                                                       client: SandboxClient) -> None:
    first = await client.send_text(USER, "one")
    second = await client.send_text(USER, "two")
    batch = await bot.get_updates()
    assert [u.update_id for u in batch][-2:] == [first.update_id, second.update_id]
    assert [u.update_id for u in await bot.get_updates()] == [u.update_id for u in batch]
    assert [u.update_id for u in await bot.get_updates(offset=second.update_id)] == [
        second.update_id]  # an offset confirms only what is below it
    assert await bot.get_updates(offset=second.update_id + 1) == []

    waiting = asyncio.create_task(bot.get_updates(offset=second.update_id + 1, timeout=5))
    await asyncio.sleep(0.1)
    third = await client.send_text(USER, "three")
    woken = await asyncio.wait_for(waiting, 2)
    assert [u.update_id for u in woken] == [third.update_id]

    other = make_bot_like(bot)
    first_poller = asyncio.create_task(bot.get_updates(offset=third.update_id + 1, timeout=5))
    await asyncio.sleep(0.1)
    second_poller = asyncio.create_task(other.get_updates(offset=third.update_id + 1, timeout=5))
    with pytest.raises(TelegramConflictError) as caught:
        await first_poller
    assert caught.value.message == ("Conflict: terminated by other getUpdates request; make "
                                    "sure that only one bot instance is running")
    fourth = await client.send_text(USER, "four")
    assert [u.update_id for u in await second_poller] == [fourth.update_id]
    await other.session.close()


def make_bot_like(bot: Bot) -> Bot:
    return Bot(bot.token, session=AiohttpSession(api=bot.session.api))


# --- webhook -----------------------------------------------------------------------------------


async def test_webhook_delivery_secret_and_retries(sandbox: Sandbox, bot: Bot,
                                                   client: SandboxClient) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []
    failures_left = [2]

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(),
                         request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        if failures_left[0]:
            failures_left[0] -= 1
            return web.Response(status=500)
        chat_id = received[-1][0]["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id,
                                  "text": "answered in the webhook reply"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await bot.get_updates(offset=-1)
        confirmed = await bot.get_updates()
        await bot.get_updates(offset=confirmed[-1].update_id + 1)
        await client.set_limits(webhook_retry_base=0.05)
        polling = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.1)
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret_-x")
        with pytest.raises(TelegramConflictError, match="terminated by setWebhook request"):
            await polling
        with pytest.raises(TelegramConflictError) as caught:
            await bot.get_updates()
        assert caught.value.message == (
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
            "to delete the webhook first")

        sent = await client.send_text(USER, "via webhook")
        later = await client.send_text(USER, "queued behind it")
        reply = await client.wait_for_bot(USER, after=sent, timeout=5)
        if len(reply.messages) < 2:
            await client.wait_for_bot(USER, after=reply.seq, timeout=5)
        texts = [m["text"] for m in await client.bot_messages(USER)]
        assert texts == ["answered in the webhook reply"] * 2
        # Two 500s and a retried 200 for the first update; the chat's next one waits for it.
        assert [body["update_id"] for body, _ in received] == [sent.update_id] * 3 + [
            later.update_id]
        assert {secret for _, secret in received} == {"s3cret_-x"}
        info = await bot.get_webhook_info()
        assert info.url == f"http://127.0.0.1:{port}/hook" and info.pending_update_count == 0
        assert info.last_error_message == (
            "Wrong response from the webhook: 500 Internal Server Error")
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        with pytest.raises(TelegramBadRequest, match="loopback"):
            await bot.set_webhook("https://example.org/hook")
    finally:
        await runner.cleanup()


# --- faults, files, commands ---------------------------------------------------------------------


async def test_injected_faults(sandbox: Sandbox, bot: Bot, client: SandboxClient) -> None:
    await client.set_limits(per_chat_per_second=None)
    await client.fail_next(1, method="sendMessage")
    with pytest.raises(TelegramServerError):
        await bot.send_message(USER, "lost")
    await client.flood_next(1, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.get_me()
    assert caught.value.retry_after == 7

    await client.hang_next(1, method="sendMessage", seconds=0.4)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(USER, "slow", request_timeout=0.1)  # type: ignore[arg-type]
    for _ in range(100):  # the hung call is logged once the sandbox has performed it
        if len(await client.calls(method="sendMessage")) == 2:
            break
        await asyncio.sleep(0.05)
    await bot.send_message(USER, "slow")  # the client's retry
    texts = [m["text"] for m in await client.bot_messages(USER)]
    assert texts.count("slow") == 2 and "lost" not in texts  # the hang still delivered one
    calls = await client.calls(method="sendMessage")
    assert [c["fault"] for c in calls[-3:]] == ["error", "hang", None]
    assert sandbox.state.stats()["calls_by_method"]["sendMessage"] == 3


async def test_files_round_trip(bot: Bot, client: SandboxClient) -> None:
    await client.set_limits(per_chat_per_second=None)  # many sends in a row to one chat
    png = make_png(400, 300)
    photo = await bot.send_photo(USER, BufferedInputFile(png, "chart.png"),
                                 caption="<i>Results</i>", parse_mode="HTML")
    assert photo.photo is not None and (photo.photo[-1].width, photo.photo[-1].height) == (400,
                                                                                            300)
    assert photo.caption == "Results"
    file = await bot.get_file(photo.photo[-1].file_id)
    assert file.file_path is not None and file.file_path.startswith("photos/")
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == png

    await expect_bad_request(bot.send_document(USER, photo.photo[-1].file_id),
                             "can't use file of type Photo as Document")
    await expect_bad_request(bot.send_photo(USER, BufferedInputFile(b"not an image", "x.png")),
                             "IMAGE_PROCESS_FAILED")
    await expect_bad_request(bot.send_photo(USER, "no-such-file-id"),
                             "wrong file identifier/HTTP URL specified")
    document = await bot.send_document(USER, BufferedInputFile(b"a,b\n1,2\n", "report.csv"))
    assert document.document is not None and document.document.file_name == "report.csv"
    again = await bot.send_document(USER, document.document.file_id)
    assert again.document is not None
    swapped = await bot.edit_message_media(
        InputMediaPhoto(media=photo.photo[-1].file_id, caption="chart"), chat_id=USER,
        message_id=again.message_id)
    assert isinstance(swapped, Message) and swapped.photo and swapped.caption == "chart"
    assert swapped.document is None

    # aiogram-dialog's BgManager loads the chat and the member before a background start.
    chat = await bot.get_chat(USER)
    assert (chat.id, chat.type, chat.first_name, chat.username) == (USER, "private", "Ann", "ann")
    member = await bot.get_chat_member(USER, USER)
    assert member.status == "member" and member.user.id == USER

    voice = await client.send_voice(USER, duration=4)
    updates = await bot.get_updates()
    message = next(u.message for u in updates if u.update_id == voice.update_id)
    assert message is not None and message.voice is not None and message.voice.duration == 4
    voice_file = await bot.get_file(message.voice.file_id)
    assert voice_file.file_path is not None and voice_file.file_path.endswith(".oga")
    await client.send_sticker(USER, "🎉")
    await client.send_location(USER, 51.5, -0.12)
    await client.send_contact(USER, "+441234567890")
    await client.send_photo(USER, caption="my street")
    kinds = [u.message for u in (await bot.get_updates())[-4:]]
    assert kinds[0] is not None and kinds[0].sticker is not None and kinds[0].sticker.emoji == "🎉"
    assert kinds[1] is not None and kinds[1].location is not None
    assert kinds[2] is not None and kinds[2].contact is not None
    assert kinds[2].contact.user_id == USER
    assert kinds[3] is not None and kinds[3].photo and kinds[3].caption == "my street"


async def test_commands_by_scope_and_language(bot: Bot, client: SandboxClient) -> None:
    assert await bot.set_my_commands([BotCommand(command="start", description="Start")])
    assert await bot.set_my_commands([BotCommand(command="start", description="Commencer"),
                                      BotCommand(command="aide", description="Aide")],
                                     language_code="fr")
    assert [c.description for c in await bot.get_my_commands(language_code="fr")] == [
        "Commencer", "Aide"]
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert [c["command"] for c in await client.commands(USER)] == ["start", "aide"]
    assert await bot.set_my_commands([BotCommand(command="stop", description="Stop")],
                                     scope=BotCommandScopeChat(chat_id=USER))
    assert [c["command"] for c in await client.commands(USER)] == ["stop"]
    assert await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=USER))
    await expect_bad_request(
        bot.set_my_commands([BotCommand(command="bad command", description="x")]),
        "BOT_COMMAND_INVALID")
    await expect_bad_request(bot.set_my_commands([BotCommand(command="ok", description="")]),
                             "command description must be non-empty")
    await expect_bad_request(bot.get_my_commands(language_code="fra"),
                             "invalid language code specified")


# --- a real dispatcher against the sandbox -----------------------------------------------------


async def test_dispatcher_polls_answers_and_edits(sandbox: Sandbox, bot: Bot,
                                                  client: SandboxClient) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(f"Survey {command.args}: how was the service?",
                             reply_markup=keyboard(("👍", "good"), ("👎", "bad")))

    @router.callback_query(F.data.in_({"good", "bad"}))
    async def rated(query: CallbackQuery) -> None:
        await query.answer("Thanks!")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"You said: {query.data}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    await bot.get_updates(offset=-1)
    stale = await bot.get_updates()
    await bot.get_updates(offset=stale[-1].update_id + 1)
    polling = asyncio.create_task(dispatcher.start_polling(
        bot, handle_signals=False, close_bot_session=False, polling_timeout=1))
    try:
        sent = await client.send_command(USER, "start", "c7")
        question = await client.wait_for_bot(USER, after=sent, timeout=5)
        assert question.texts == ["Survey c7: how was the service?"]
        assert question.last is not None
        tap = await client.tap(USER, question.last["message_id"], data="bad")
        edited = await client.wait_for_bot(USER, after=tap, timeout=5)
        assert edited.texts == ["You said: bad"]
        assert edited.last is not None and edited.last["reply_markup"] is None
        assert (await client.callback(tap.callback_query_id or ""))["answer"]["text"] == "Thanks!"
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)


async def test_reset_and_limits_object(sandbox: Sandbox, client: SandboxClient) -> None:
    assert (await client.get_limits())["global_per_second"] == Limits().global_per_second
    await client.set_limits(per_chat_burst=10)
    with pytest.raises(SandboxError) as caught:
        await client.set_limits(no_such_limit=1)
    assert caught.value.status == 400
    await client.reset()
    assert (await client.get_limits())["per_chat_burst"] == 3
    with pytest.raises(SandboxError) as missing:
        await client.get_user(USER)
    assert missing.value.status == 404


async def test_raw_updates_for_what_the_sandbox_does_not_model(bot: Bot, client: SandboxClient) -> None:
    """Group messages, edited messages, inline taps: pushed as given, filtered by allowed_updates."""
    group = {"id": -100555, "type": "supergroup", "title": "Neighbours"}
    sender = {"id": 4242, "is_bot": False, "first_name": "Ann"}
    pushed = await client.push_update("message", {"message_id": 1, "date": 1, "chat": group, "from": sender,
                                                  "text": "hello"})
    assert pushed["chat_id"] == group["id"] and not pushed["filtered"]
    updates = await bot.get_updates(allowed_updates=["message", "callback_query"])
    assert updates[-1].message is not None and updates[-1].message.chat.type == "supergroup"
    assert updates[-1].update_id == pushed["update_id"]
    edited = await client.push_update("edited_message", {"message_id": 1, "date": 1, "edit_date": 2,
                                                         "chat": group, "from": sender, "text": "hi"})
    assert edited["filtered"] and edited["update_id"] is None  # the bot did not ask for it
    inline = await client.push_update("callback_query", {"id": "q1", "from": sender, "chat_instance": "c",
                                                         "inline_message_id": "AAA", "data": "x"})
    got = await bot.get_updates(offset=pushed["update_id"] + 1)
    assert [u.update_id for u in got] == [inline["update_id"]]
    assert got[0].callback_query is not None and got[0].callback_query.message is None
    with pytest.raises(SandboxError):
        await client.push_update("update_id", {})
