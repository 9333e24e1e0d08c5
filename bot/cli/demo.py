"""`coassess demo`, `coassess chat` and `coassess sandbox`: try the product without a bot token."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import console, run_async


@run_async
async def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Folder for the database, export and report."),
    citizens: int = typer.Option(200, help="How many simulated citizens take part."),
    seed: int = typer.Option(7, help="Change it for a different crowd."),
) -> None:
    """Run the whole product offline: a local Telegram sandbox, the real bot, ~200 simulated citizens in 6 languages, then the export and the grouped report. No token, no internet."""  # noqa: E501
    import logging

    from bot.demo import run_demo

    logging.basicConfig(level=logging.ERROR)
    result = await run_demo(out, citizens=citizens, seed=seed, console=console)
    if any(r.error for r in result.results):
        raise typer.Exit(1)


def sandbox(
    host: str = typer.Option("127.0.0.1", help="Loopback address to listen on."),
    port: int = typer.Option(8081, help="Port to listen on."),
    token: str = typer.Option("123456:TEST", help="The bot token the sandbox accepts."),
) -> None:
    """Run the local Telegram Bot API sandbox (for trying the bot with COASSESS_TELEGRAM_API_URL)."""
    from bot.sandbox import run_sandbox

    run_sandbox(host, port, token)


@run_async
async def chat(
    language: str = typer.Option(None, "--language", "-l", help="Your Telegram language, e.g. ar, so, uk."),
    campaign: Path = typer.Option(None, help="A campaign file to try (default: the example)."),
) -> None:
    """Talk to the bot yourself in the terminal, as a participant would, through the sandbox.

    The bot's messages are shown with numbered buttons. Type:

      a number      to tap that button

      any text      to answer in words

      /help, /language, /privacy, /stop, /forget   the participant's commands

      voice 5       to send a 5-second voice note

      q             to quit

    Example: coassess chat --language ar
    """
    from bot.chat import run_chat

    await run_chat(language=language, campaign_file=campaign)
