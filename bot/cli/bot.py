"""`coassess run` and `coassess webhook`: the bot itself."""

from __future__ import annotations

import typer

from bot.cli.common import console, fail, run_async, settings, setup_logging
from bot.settings import ConfigurationError

PATH_DEFAULT = "/telegram/webhook"


@run_async
async def run(
    journal: str = typer.Option(None, help="Where to journal incoming updates (default: next to the "
                                "SQLite database, or COASSESS_JOURNAL_PATH)."),
) -> None:
    """Run the bot with long polling (simplest: no public address needed).

    Needs COASSESS_BOT_TOKEN. Every update is written to a journal on disk before Telegram is told it arrived, so nothing is lost if the database is briefly away or the bot is killed; it also starts while the database is away, and catches up when it is back. Updates it cannot handle are set aside: see coassess updates list. Stop with Ctrl-C (the update in hand is finished first).
    """  # noqa: E501
    from bot.runtime.runner import Runtime, poll

    s = settings()
    setup_logging(s.log_level)
    try:
        runtime = await Runtime.create(s, journal_path=journal)
    except ConfigurationError as exc:
        fail(str(exc))
        return
    try:
        await poll(runtime)
    finally:
        await runtime.close()


@run_async
async def webhook(
    host: str = typer.Option("0.0.0.0", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    path: str = typer.Option(PATH_DEFAULT, help="URL path Telegram posts updates to."),
    public_url: str = typer.Option(None, help="Your public HTTPS base address (e.g. https://bot.example.org). "
                                   "If given, the webhook is registered with Telegram on start."),
    journal: str = typer.Option(None, help="Where to journal incoming updates (one file per worker)."),
) -> None:
    """Run the bot as a webhook server (for production, several workers behind a load balancer).

    Needs COASSESS_BOT_TOKEN and COASSESS_WEBHOOK_SECRET: requests without the matching X-Telegram-Bot-Api-Secret-Token header are refused with 401. With COASSESS_REDIS_URL set, several workers share the dialog state and take one chat's updates one at a time; give each worker its own --journal file. GET /healthz says what the worker waits for and how many updates are set aside.
    """  # noqa: E501
    from bot.runtime.runner import Runtime, serve_webhook

    s = settings()
    setup_logging(s.log_level)
    secret = s.webhook_secret.get_secret_value() if s.webhook_secret else ""
    if not secret:
        fail("COASSESS_WEBHOOK_SECRET is not set. Choose a long random value (letters, digits, _ and -), "
             "for example: python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        return
    if not (1 <= len(secret) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)):
        fail("COASSESS_WEBHOOK_SECRET may hold only letters, digits, _ and - (1 to 256 of them), "
             "as Telegram requires. Generate one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        return
    if not path.startswith("/"):
        fail(f"--path must start with '/', e.g. /telegram/webhook (got {path!r})")
        return
    try:
        runtime = await Runtime.create(s, journal_path=journal)
    except ConfigurationError as exc:
        fail(str(exc))
        return
    if not public_url:
        console.print("[yellow]No --public-url: the webhook is not registered with Telegram. Give your public "
                      "HTTPS address with --public-url, or call setWebhook yourself.[/]")
    try:
        await serve_webhook(runtime, host, port, path, secret, public_url)
    finally:
        await runtime.close()
