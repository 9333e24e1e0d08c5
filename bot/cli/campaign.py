"""`coassess campaign`: check, load, list, show, open and close campaigns."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import func, select

from bot.campaigns.check import check_file
from bot.campaigns.store import CampaignChangeRefused, campaign_state, load_campaign
from bot.cli.common import console, database, err_console, fail, run_async
from bot.models import Campaign, Response
from bot.services import audit

app = typer.Typer(help="Check, load and manage campaigns (one round of questions about one service).",
                  no_args_is_help=True)

FileArg = typer.Argument(..., help="A campaign file (YAML), e.g. examples/clinic-access.yaml",
                         show_default=False)


def _check_or_exit(file: Path):  # type: ignore[no-untyped-def]
    result = check_file(file)
    if not result.ok:
        for p in result.problems:
            err_console.print(p.render(result.name), highlight=False, markup=False, soft_wrap=True)
        n = len(result.problems)
        err_console.print(f"[bold red]{n} problem{'s' if n != 1 else ''}[/] in {result.name}. "
                          "Nothing was loaded.", highlight=False)
        raise typer.Exit(1)
    return result


@app.command("check")
def check(file: Path = FileArg) -> None:
    """List every problem in a campaign file, with its line; exit 1 if there are any."""
    result = _check_or_exit(file)
    console.print(f"[green]✓[/] {result.summary()}", highlight=False)


@app.command("load")
@run_async
async def load(file: Path = FileArg) -> None:
    """Create a campaign from a file, or update it (adding translations, options, questions)."""
    result = _check_or_exit(file)
    spec = result.spec
    assert spec is not None
    async with database() as db, db.session() as session:
        try:
            c, created = await load_campaign(session, spec)
        except CampaignChangeRefused as exc:
            await session.rollback()
            fail(str(exc))
            return
        await audit.record(session, audit.cli_actor(), "load", spec.id, version=c.version,
                           file=str(file.name), created=created)
        await session.commit()
        state = campaign_state(c)
    verb = "Created" if created else "Updated"
    console.print(f"[green]{verb}[/] campaign '{spec.id}' (version {c.version}, now {state}).")
    if state == "draft":
        console.print(f"Open it for answers with: coassess campaign open {spec.id}")


@app.command("list")
@run_async
async def list_() -> None:
    """Show every campaign with its state and number of responses."""
    async with database() as db, db.session() as session:
        counts = dict((await session.execute(
            select(Response.campaign_id, func.count()).group_by(Response.campaign_id))).all())
        done = dict((await session.execute(
            select(Response.campaign_id, func.count()).where(Response.completed_at.is_not(None))
            .group_by(Response.campaign_id))).all())
        rows = (await session.scalars(select(Campaign).order_by(Campaign.created_at))).all()
    if not rows:
        console.print("No campaigns yet. Load one with: coassess campaign load FILE")
        return
    table = Table("id", "state", "title", "languages", "responses", "completed")
    for c in rows:
        table.add_row(c.id, campaign_state(c), c.title.get(c.languages[0], ""), " ".join(c.languages),
                      str(counts.get(c.id, 0)), str(done.get(c.id, 0)))
    console.print(table)


@app.command("show")
@run_async
async def show(campaign_id: str = typer.Argument(..., help="The campaign id")) -> None:
    """Show a campaign's schedule, questions and invite links."""
    async with database() as db, db.session() as session:
        c = await session.get(Campaign, campaign_id)
        if c is None:
            fail(f"there is no campaign '{campaign_id}'", "See the ids with: coassess campaign list")
            return
        await session.refresh(c, ["questions"])
        console.print(f"[bold]{c.title.get(c.languages[0])}[/] ({c.id}, {c.mode})")
        console.print(f"State: {campaign_state(c)}; opens {c.opens or '-'}; closes {c.closes or '-'}; "
                      f"languages {', '.join(c.languages)}; version {c.version}")
        table = Table("#", "question", "type", "optional", "text")
        for i, q in enumerate(c.questions, 1):
            table.add_row(str(i), q.id, q.type, "yes" if q.optional else "",
                          q.texts.get(c.languages[0], "")[:70])
        console.print(table)


async def _set_status(campaign_id: str, status: str) -> None:
    async with database() as db, db.session() as session:
        c = await session.get(Campaign, campaign_id)
        if c is None:
            fail(f"there is no campaign '{campaign_id}'", "See the ids with: coassess campaign list")
            return
        c.status = status
        await audit.record(session, audit.cli_actor(), status == "open" and "open" or "close", c.id)
        await session.commit()
        state = campaign_state(c)
    console.print(f"Campaign '{campaign_id}' is now {state}.")
    if status == "open" and state != "open":
        console.print("[yellow]Its 'closes' date has passed: change 'closes' in the file and load it again.[/]")


@app.command("open")
@run_async
async def open_(campaign_id: str = typer.Argument(..., help="The campaign id")) -> None:
    """Open a campaign for answers now."""
    await _set_status(campaign_id, "open")


@app.command("close")
@run_async
async def close(campaign_id: str = typer.Argument(..., help="The campaign id")) -> None:
    """Close a campaign: people mid-way may finish, nobody new can start."""
    await _set_status(campaign_id, "closed")
