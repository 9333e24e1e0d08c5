"""`coassess web`: the officers' web console (serve it, make a sign-in link, open the demo)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import console, database, fail, keys, run_async, settings, setup_logging
from bot.settings import ConfigurationError, Settings

app = typer.Typer(
    help="The officers' web console: campaigns, live participation, invites, sends, results and "
    "downloads in a browser. Officers sign in with a one-time link from /admin in the chat.",
    invoke_without_command=True)

DEMO_OFFICER = 1  # the demo's administrator: a made-up Telegram id, never a real person's
DEMO_BOT = "coassess_demo_bot"


def _demo_settings(s: Settings, folder: Path) -> Settings:
    db = folder / "demo.db"
    if not db.exists():
        fail(f"there is no demo database at {db}.", "Run `make demo` (or `coassess demo`) first.")
    return s.model_copy(update={"database_url": f"sqlite+aiosqlite:///{db.resolve()}",
                                "admin_ids": frozenset({*s.admin_ids, DEMO_OFFICER}),
                                "bot_username": s.bot_username or DEMO_BOT,
                                "pseudonym_key": None, "contact_key": None, "web_secret": None})


async def _migrated(s: Settings) -> None:
    async with database(s):
        pass


async def _link(s: Settings, telegram_id: int) -> str:
    from bot.services.signin import NotAnOfficer, officer_link

    async with database(s) as db, db.session() as session:
        try:
            url = await officer_link(session, keys(s), s.web_public_url, telegram_id, s.admin_ids,
                                     s.analyst_ids)
        except NotAnOfficer as exc:
            fail(str(exc))
            raise
        await session.commit()
    return url


@app.callback()
def web(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 behind a proxy or in a "
                             "container)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    demo: bool = typer.Option(False, "--demo", help="Open the demo database (demo-output/demo.db, made "
                              "by `make demo`) and print a sign-in link for its administrator."),
    demo_folder: Path = typer.Option(Path("demo-output"), "--demo-folder", metavar="FOLDER",
                                     help="Where `coassess demo` wrote its database."),
) -> None:
    """Serve the officers' web console.

    Officers sign in with a one-time link: /admin in the chat → "Open the console", or `coassess web login-link --as TELEGRAM_ID`. Set COASSESS_WEB_PUBLIC_URL to the address officers open (https in production), COASSESS_ADMIN_IDS and COASSESS_ANALYST_IDS to who may sign in, and COASSESS_WEB_SECRET (with PostgreSQL). Sends need COASSESS_BOT_TOKEN, as the bot does.

    Examples:

      coassess web --demo

      coassess web --host 0.0.0.0 --port 8000

      coassess web login-link --as 123456789
    """  # noqa: E501
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from web.app import create_app

    s = settings()
    if demo:
        s = _demo_settings(s, demo_folder)
        s = s.model_copy(update={"web_public_url": f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}"})
    setup_logging(s.log_level)
    from bot.db import run as run_coro

    run_coro(_migrated(s))  # SQLite: made or brought up to date; PostgreSQL: checked reachable
    try:
        if demo:
            url = run_coro(_link(s, DEMO_OFFICER))
            console.print(f"[bold]The console on the demo database.[/] Open this link within ten "
                          f"minutes to sign in as its administrator:\n  {url}", highlight=False, soft_wrap=True)
            console.print("A new link: coassess web --demo again, or Ctrl-C and run it once more.")
        app_ = create_app(s, keys=keys(s))
    except ConfigurationError as exc:
        fail(str(exc))
        return
    uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=True, server_header=False)


@app.command("login-link")
@run_async
async def login_link(
    telegram_id: int = typer.Option(..., "--as", metavar="TELEGRAM_ID", show_default=False,
                                    help="The officer's Telegram user id (listed in COASSESS_ADMIN_IDS "
                                    "or COASSESS_ANALYST_IDS)"),
    demo: bool = typer.Option(False, "--demo", help="For the demo database (demo-output/demo.db)."),
) -> None:
    """Print a one-time sign-in link to the console (works once, for ten minutes).

    For the first sign-in, before anyone has the bot's /admin button, and for the offline demo.

    Example:

      coassess web login-link --as 123456789
    """
    s = settings()
    if demo:
        s = _demo_settings(s, Path("demo-output"))
    console.print(await _link(s, telegram_id), highlight=False, soft_wrap=True)
