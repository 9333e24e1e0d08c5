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


@app.command("tallies")
@run_async
async def tallies(
    repair: bool = typer.Option(False, "--repair", help="Write a full recount over the tallies that differ."),
) -> None:
    """Check the running tallies the console's live participation is read from against a full
    recount of every response, campaign by campaign. Database triggers keep them exact; a
    difference means something changed the data with the triggers missing (a restore of some
    tables only, a hand-made migration). Shows counts only, never anyone's data.

    Examples:

      coassess db tallies
      coassess db tallies --repair
    """
    from sqlalchemy import select

    from bot.models import Campaign
    from bot.services.participation import check_tallies, repair_tallies

    wrong = 0
    async with database() as db, db.session() as session:
        for cid in (await session.scalars(select(Campaign.id).order_by(Campaign.id))).all():
            problems = await check_tallies(session, cid)
            if not problems:
                continue
            wrong += 1
            for p in problems:
                console.print(f"{cid}: {p}", markup=False, highlight=False)
            if repair:
                await session.commit()  # the check's reading ends: the repair starts afresh
                await repair_tallies(session, cid)
                await session.commit()
                console.print(f"{cid}: tallies rebuilt from a full recount.", markup=False, highlight=False)
    if not wrong:
        console.print("[green]The tallies of every campaign agree with a full recount.[/]")
    elif not repair:
        console.print(f"The tallies of {wrong} campaign(s) differ from a full recount. Rebuild them "
                      "with: coassess db tallies --repair", markup=False, highlight=False)
        raise typer.Exit(1)
