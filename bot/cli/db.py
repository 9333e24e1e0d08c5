"""`coassess db`: the database schema."""

from __future__ import annotations

import typer

from bot.cli.common import console, database, run_async

app = typer.Typer(help="Create or update the database schema.", no_args_is_help=True)


@app.command("upgrade")
@run_async
async def upgrade() -> None:
    """Bring the database (COASSESS_DATABASE_URL) up to the newest schema. Safe to run again.

    Example:

      coassess db upgrade
    """
    async with database():
        console.print("[green]The database schema is up to date.[/]")
