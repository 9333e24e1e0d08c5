"""`coassess chat`: be a participant yourself, in the terminal, through the sandbox Bot API."""

from __future__ import annotations

import asyncio
import html
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from bot.campaigns.check import check_file
from bot.demo import EXAMPLE
from bot.runtime.runner import Runtime, poll
from bot.sandbox import Limits, Sandbox
from bot.settings import Settings

USER_ID = 1001
TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "code": "cyan"}


def to_rich(text: str) -> str:
    """Telegram HTML to Rich markup: bold and italics kept, everything else shown as text."""
    out, pos = [], 0
    for m in re.finditer(r"<(/?)(\w+)[^>]*>", text):
        out.append(escape(html.unescape(text[pos:m.start()])))
        style = TAGS.get(m.group(2).lower())
        if style:
            out.append(f"[/{style}]" if m.group(1) else f"[{style}]")
        pos = m.end()
    out.append(escape(html.unescape(text[pos:])))
    return "".join(out)


def buttons_of(message: dict[str, Any] | None) -> list[tuple[str, str]]:
    markup = (message or {}).get("reply_markup") or {}
    return [(b.get("text", ""), b.get("callback_data") or b.get("url") or "")
            for row in markup.get("inline_keyboard", []) for b in row]


async def run_chat(language: str | None = None, campaign_file: Path | None = None,
                   read_line: Callable[[], Awaitable[str]] | None = None,
                   console: Console | None = None, data_dir: Path | None = None) -> list[str]:
    """Run the sandbox and the real bot, and let a person talk to it. Returns what was shown."""
    console = console or Console(emoji=False)
    shown: list[str] = []
    check = check_file(campaign_file or EXAMPLE)
    if not check.ok or check.spec is None:
        for p in check.problems:
            console.print(p.render(check.name), markup=False)
        return shown
    spec = check.spec
    folder = data_dir or Path(tempfile.mkdtemp(prefix="coassess-chat-"))
    db_url = f"sqlite+aiosqlite:///{(folder / 'chat.db').resolve()}"
    from bot.campaigns.store import load_and_open

    await load_and_open(db_url, spec)
    reader = read_line or (lambda: asyncio.to_thread(input, "> "))
    async with Sandbox(limits=Limits(global_per_second=None, per_chat_per_second=None)) as sandbox:
        settings = Settings(_env_file=None, database_url=db_url, bot_token=SecretStr(sandbox.token),
                            telegram_api_url=sandbox.api_url,
                            pseudonym_key=SecretStr("chat-pseudonym-key-not-for-production"),
                            contact_key=SecretStr("chat-contact-key-not-for-production"),
                            journal_path=str(folder / "journal.db"))
        runtime = await Runtime.create(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(poll(runtime, stop, timeout=1, signals=False))
        client = sandbox.client
        await client.create_user(USER_ID, first_name="You", language_code=language or "en")
        console.print(Panel(f"You are a participant. Type a [bold]number[/] to tap a button, or text to answer. "
                            f"Commands such as /language, /privacy, /forget work too. "
                            f"[bold]voice 5[/] sends a 5-second voice note; [bold]q[/] quits.",
                            title="coassess chat"))
        sent = await client.send_command(USER_ID, "start", spec.id)
        current: dict[str, Any] | None = None
        # the newest message with buttons: as in Telegram, its buttons still work after a reply
        # without any (to /help, say), and the numbers tap them
        tappable: dict[str, Any] | None = None
        try:
            while True:
                try:
                    reply = await client.wait_for_bot(USER_ID, after=sent, timeout=6)
                    for m in reply.messages:
                        if tappable is not None and m.get("message_id") == tappable.get("message_id"):
                            tappable = None  # edited or deleted: what it shows now counts
                        if not m.get("deleted"):
                            current = m
                            if buttons_of(m):
                                tappable = m
                    if current:
                        text = current.get("text") or current.get("caption") or ""
                        shown.append(text)
                        console.print(Panel(to_rich(text), title="bot", title_align="left"))
                        if tappable is not None and tappable is not current:
                            console.print("[dim]  the buttons of the earlier message still work:[/]")
                        for i, (label, _) in enumerate(buttons_of(tappable), 1):
                            console.print(f"  [bold cyan]{i}[/]  {escape(label)}")
                except Exception:  # noqa: BLE001 - nothing changed on screen: say so, go on
                    console.print("[dim](nothing changed)[/]")
                line = (await reader()).strip()
                if line.lower() in {"q", "quit", "exit"}:
                    break
                buttons = buttons_of(tappable)
                if line.isdigit() and 1 <= int(line) <= len(buttons) and tappable:
                    sent = await client.tap(USER_ID, tappable["message_id"], data=buttons[int(line) - 1][1])
                elif line.startswith("voice"):
                    parts = line.split()
                    seconds = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 5
                    sent = await client.send_voice(USER_ID, duration=seconds)
                elif line:
                    sent = await client.send_text(USER_ID, line)
        finally:
            stop.set()
            await task
            await runtime.close()
    return shown
