"""The `coassess` command line: one sub-command group per concern."""

from __future__ import annotations

import typer

from bot.cli import admin
from bot.cli import analysis as analysis_cmd
from bot.cli import bot as bot_cmd
from bot.cli import campaign, db, updates
from bot.cli import i18n as i18n_cmd
from bot.cli import demo as demo_cmd
from bot.cli import web as web_cmd
from bot.cli.common import plain_help

plain_help()  # --help in words (FILE, NUMBER, CAMPAIGN), not Python types

app = typer.Typer(
    name="coassess",
    help="coassess: hear the people public services usually miss. Run campaigns of short "
    "questions in a Telegram bot, in people's own languages, and see the answers by group.\n\n"
    "Each command has its own help with examples, e.g. coassess invite create --help. The "
    "walk-through for administrators is docs/administrators.md.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(campaign.app, name="campaign")
app.add_typer(db.app, name="db")
app.add_typer(updates.app, name="updates")
app.add_typer(i18n_cmd.app, name="i18n")
app.add_typer(admin.invite_app, name="invite")
app.add_typer(admin.outcome_app, name="outcome")
app.add_typer(web_cmd.app, name="web")
app.command("broadcast")(admin.broadcast)
app.command("remind")(admin.remind)
app.command("audit")(admin.audit)
app.command("run")(bot_cmd.run)
app.command("webhook")(bot_cmd.webhook)
app.command("export")(analysis_cmd.export)
app.command("report")(analysis_cmd.report)
app.command("synth")(analysis_cmd.synth)
app.command("demo")(demo_cmd.demo)
app.command("chat")(demo_cmd.chat)
app.command("sandbox")(demo_cmd.sandbox)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"coassess {version('coassess')}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    """coassess: hear the people public services usually miss."""


def main() -> None:
    app()
