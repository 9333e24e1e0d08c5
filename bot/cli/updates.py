"""`coassess updates`: the updates a bot set aside because they could not be handled."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from bot.cli.common import console, fail, keys, plural, settings

app = typer.Typer(help="Updates set aside because they could not be handled: list, replay or drop them.",
                  no_args_is_help=True)

JournalOpt = typer.Option(None, "--journal", metavar="FILE", help="The worker's journal file (default: as `coassess run` "
                          "uses it: COASSESS_JOURNAL_PATH, or next to the SQLite database).")
IdsArg = typer.Argument(None, metavar="UPDATE_ID", help="Which updates (default: all set aside).",
                        show_default=False)


def _journal(path: str | None):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from bot.runtime.journal import Journal, JournalError

    s = settings()
    file = Path(path) if path else s.journal_file()
    if not file.exists():
        fail(f"there is no journal at {file}.", "Give the worker's file with --journal (one file per worker).")
    try:
        return Journal(file, keys(s).cipher)
    except JournalError as exc:
        fail(str(exc))
        raise


@app.command("list")
def list_(journal: str = JournalOpt) -> None:
    """List the updates set aside (what they were, when they came, why they failed).

    An update is set aside after three tries that failed by its own fault (Telegram sent something
    the bot cannot read, or handling it fails every time); the person's later messages go on
    without it. Outages (database, Redis, Telegram away) never set updates aside.

    Example:

      coassess updates list --journal /var/lib/coassess/journal-1.db
    """
    j = _journal(journal)
    try:
        rows = j.aside()
    finally:
        j.close()
    if not rows:
        console.print("No updates are set aside.")
        return
    table = Table("update", "kind", "received (UTC)", "tries", "why")
    for r in rows:
        when = dt.datetime.fromtimestamp(r.received, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(r.update_id), r.kind, when, str(r.attempts), r.reason)
    console.print(table)
    console.print(f"{plural(len(rows), 'update')} set aside. Replay them (after a fix) with "
                  "`coassess updates replay`, or give them up with `coassess updates drop`.", highlight=False)


@app.command("replay")
def replay(update_ids: list[int] = IdsArg, journal: str = JournalOpt) -> None:
    """Put set-aside updates back in line: a running bot takes them within seconds, or on its next start.

    Example:

      coassess updates replay 512034 512035 --journal journal-1.db
    """
    j = _journal(journal)
    try:
        n = j.replay(update_ids or None)
    finally:
        j.close()
    console.print(f"{plural(n, 'update')} put back in line.", highlight=False)


@app.command("drop")
def drop(update_ids: list[int] = IdsArg, journal: str = JournalOpt) -> None:
    """Give up set-aside updates: their content is erased from the journal.

    Example:

      coassess updates drop --journal journal-1.db
    """
    j = _journal(journal)
    try:
        n = j.drop(update_ids or None)
    finally:
        j.close()
    console.print(f"{plural(n, 'update')} dropped.", highlight=False)
