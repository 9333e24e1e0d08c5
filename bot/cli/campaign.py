"""`coassess campaign`: check, load, list, show, open and close campaigns; import XLSForms;
hand texts to translators and take their work back."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Column, Table
from sqlalchemy import func, select

from bot.campaigns.check import check_file
from bot.campaigns.translations import TranslationError, export_translations, import_translations
from bot.campaigns.xlsform import XLSFormError, import_xlsform
from bot.campaigns.store import RETIRED, CampaignChangeRefused, campaign_state, load_campaign
from bot.cli.common import console, database, err_console, fail, note_hidden, run_async
from bot.models import Campaign, Invite, Response
from bot.services import audit

app = typer.Typer(help="Check, load and manage campaigns (one round of questions about one service).",
                  no_args_is_help=True)

translations_app = typer.Typer(
    help="Hand a campaign's texts to translators as a spreadsheet or PO files, and write their "
    "translations back into the campaign file.", no_args_is_help=True)
app.add_typer(translations_app, name="translations")

FileArg = typer.Argument(..., help="A campaign file (YAML), e.g. examples/clinic-access.yaml",
                         show_default=False)


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 question', '2 questions', '0 questions'."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def _check_or_exit(file: Path):  # type: ignore[no-untyped-def]
    result = check_file(file)
    if not result.ok:
        for p in result.problems:
            err_console.print(p.render(result.name), highlight=False, markup=False, soft_wrap=True)
        err_console.print(f"[bold red]{plural(len(result.problems), 'problem')}[/] in {result.name}. "
                          "Nothing was loaded.", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    return result


@app.command("check")
def check(file: Path = FileArg) -> None:
    """List every problem in a campaign file, with its line; exit 1 if there are any."""
    result = _check_or_exit(file)
    console.print(f"[green]✓[/] {escape(result.summary())}", highlight=False, soft_wrap=True)
    _note_interface_languages(result.spec)
    _note_dates(result.spec)
    _note_length(result.spec)


def _note_length(spec) -> None:  # type: ignore[no-untyped-def]
    """A long survey loses the people a council most needs to hear (docs/campaigns.md)."""
    if spec is not None and spec.minutes() > 5:
        console.print(f"note: about {spec.minutes()} minutes is long for people answering on a phone in a "
                      "second language: many stop half-way. Consider fewer questions, or two shorter "
                      "campaigns.", highlight=False, markup=False, soft_wrap=True)


def _note_dates(spec) -> None:  # type: ignore[no-untyped-def]
    """A 'closes' in the past is allowed (a finished campaign may be reloaded), but worth saying."""
    from bot.models import utcnow

    if spec is not None and spec.closes is not None and spec.closes <= utcnow():
        console.print(f"note: 'closes' ({spec.closes:%Y-%m-%d %H:%M} UTC) has passed: once loaded, "
                      "nobody new can start this campaign. Change 'closes' if that is not meant.",
                      highlight=False, markup=False, soft_wrap=True)


def _note_interface_languages(spec) -> None:  # type: ignore[no-untyped-def]
    """Say which campaign languages the bot's own words (consent, buttons) are not translated into,
    and the language people who choose them really see those words in (the interface's own chain:
    the person's language, the campaign's first language, then English)."""
    if spec is None:
        return
    from bot.campaigns.check import _lang_name
    from dialogs.i18n import base_language, tr

    first = spec.languages[0]
    seen_in: dict[str, list[str]] = {}
    for code in spec.languages:
        shown = base_language(tr(code, first).interface_lang)
        if shown != base_language(code):
            seen_in.setdefault(shown, []).append(code)
    for shown, missing in seen_in.items():
        names = ", ".join(f"{code} ({_lang_name(code)})" for code in missing)
        where = f"{_lang_name(shown)} ({shown})"
        if shown == base_language(first):
            where += ", the campaign's first language"
        elif base_language(first) in missing:
            where += f": the campaign's first language, {first}, has no translation of them either"
        console.print(f"note: the bot's own words (consent, buttons, help) are not translated into "
                      f"{names}: people who choose {'it' if len(missing) == 1 else 'them'} see those "
                      f"in {where}. The campaign's texts are shown in their language as written. See "
                      f"docs/languages.md to add a language.",
                      highlight=False, markup=False, soft_wrap=True)


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
    from bot.services.invites import protect_column, record_key_sums

    async with database(existing=True) as db, db.session() as session:
        # per invite link, so that each total is the one `invite list` shows beside its rows
        per_link: dict[str, list[tuple[int, int, int, int]]] = {}
        for cid, _, started, done, started_key, done_key in (await session.execute(
                select(Response.campaign_id, Response.invite_id, func.count(), func.count(Response.completed_at),
                       *record_key_sums(Response.completed_at))
                .group_by(Response.campaign_id, Response.invite_id))).all():
            per_link.setdefault(cid, []).append((started, done, int(started_key or 0), int(done_key or 0)))
        rows = (await session.scalars(select(Campaign).order_by(Campaign.created_at))).all()
    if not rows:
        console.print("No campaigns yet. Load one with: coassess campaign load FILE")
        return
    table = Table("state", "title", "languages", "responses", "completed")
    # the id is what the other commands need typed: never cut (a campaign id is at most 40
    # characters), the title wraps instead
    table.columns.insert(0, Column("id", no_wrap=True, min_width=max(len(c.id) for c in rows),
                                   overflow="fold"))
    hidden: set[int] = set()  # the min_group_size of each campaign with a hidden count
    for c in rows:
        links = per_link.get(c.id, [])
        started = protect_column([s for s, _, _, _ in links], c.min_group_size, [k for _, _, k, _ in links])[0]
        done = protect_column([d for _, d, _, _ in links], c.min_group_size, [k for _, _, _, k in links])[0]
        if not (started.isdigit() and done.isdigit()):
            hidden.add(c.min_group_size)
        table.add_row(c.id, campaign_state(c), c.title.get(c.languages[0], ""), " ".join(c.languages),
                      started, done)
    console.print(table)
    for k in sorted(hidden):
        note_hidden(k)


@app.command("show")
@run_async
async def show(campaign_id: str = typer.Argument(..., help="The campaign id")) -> None:
    """Show a campaign's schedule, questions and invite links."""
    from dialogs.i18n import short_label

    async with database(existing=True) as db, db.session() as session:
        c = await session.get(Campaign, campaign_id)
        if c is None:
            fail(f"there is no campaign '{campaign_id}'", "See the ids with: coassess campaign list")
            return
        await session.refresh(c, ["questions"])
        invites = (await session.scalars(select(Invite).where(Invite.campaign_id == c.id)
                                         .order_by(Invite.created_at, Invite.id))).all()
        reach = {iid: (n, int(key or 0)) for iid, n, key in (await session.execute(
            select(Response.invite_id, func.count(), func.sum(Response.record_key))
            .where(Response.campaign_id == c.id).group_by(Response.invite_id))).all()}
        console.print(f"[bold]{escape(c.title.get(c.languages[0]) or '')}[/] ({c.id}, {c.mode})",
                      highlight=False)
        console.print(f"State: {campaign_state(c)}; opens {c.opens or '-'}; closes {c.closes or '-'}; "
                      f"languages {', '.join(c.languages)}; version {c.version}", highlight=False)
        console.print(f"{plural(len(c.questions), 'question')}, "
                      f"{plural(len((c.definition or {}).get('groups') or []), 'group dimension')}, "
                      f"{plural(len(invites), 'invite')}", highlight=False)
        table = Table("#", Column("question", no_wrap=True, min_width=max((len(q.id) for q in c.questions),
                                                                        default=8)),
                      "type", "optional", "text")
        for i, q in enumerate(c.questions, 1):
            table.add_row(str(i), q.id, q.type, "yes" if q.optional else "",
                          short_label(q.texts.get(c.languages[0], ""), 70))
        console.print(table)
        username, why = await _bot_username(db)
        _show_invites(c, invites, reach, username, why)


async def _bot_username(db) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """COASSESS_BOT_USERNAME, else the username remembered for the token, else asked once with
    getMe (and remembered); with "" for the username, why it is not known."""
    from bot.services.invites import known_bot_username
    from bot.settings import get_settings

    try:
        s = get_settings()
    except Exception:  # noqa: BLE001 - a bad setting elsewhere must not hide the campaign
        return "", "unset"
    token = s.bot_token.get_secret_value() if s.bot_token else None
    if not s.bot_username and not token:
        return "", "unset"
    bot = None
    try:
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import PRODUCTION, TelegramAPIServer

        # one quick question, without the runtime's retries: the campaign is shown either way
        api = TelegramAPIServer.from_base(s.telegram_api_url.rstrip("/")) if s.telegram_api_url else PRODUCTION
        bot = Bot(token, session=AiohttpSession(api=api, timeout=10)) if token else None
        return await known_bot_username(db, s.bot_username, token, bot), ""
    except Exception:  # noqa: BLE001 - Telegram out of reach: the links show <bot>, as said below
        return "", "unreachable"
    finally:
        if bot is not None:
            await bot.session.close()


def _show_invites(c: Campaign, invites: list[Invite], reach: dict[int | None, tuple[int, int]], username: str,
                  why: str = "") -> None:
    from bot.services.invites import invite_link

    bot = username or "<bot>"
    # The links go below the table, one per line and never wrapped, so they can be copied whole
    # at any terminal width (a table column cut them to "https://t.me/Ea…").
    from bot.services.invites import protect_column

    table = Table(Column("invite", no_wrap=True, min_width=max((len(i.code) for i in invites), default=6)),
                  "partner", Column("preset groups", overflow="fold"), "responses")
    column = [reach.get(None, (0, 0)), *(reach.get(inv.id, (0, 0)) for inv in invites)]
    _, shown = protect_column([n for n, _ in column], c.min_group_size, [key for _, key in column])
    table.add_row("(none)", "the campaign's own link", "", shown[0])
    links = [("(none)", invite_link(bot, c.id))]
    for inv, count in zip(invites, shown[1:], strict=True):
        groups = "; ".join(f"{d}={','.join(g)}" for d, g in (inv.groups or {}).items())
        if inv.code.startswith(RETIRED):
            table.add_row(inv.code[len(RETIRED):] + " (removed)", inv.partner, groups, count)
            links.append((inv.code[len(RETIRED):], "removed from the campaign file: the link no longer "
                                                   "counts for this partner"))
        else:
            table.add_row(inv.code, inv.partner, groups, count)
            links.append((inv.code, invite_link(bot, c.id, inv.code)))
    console.print(table)
    if any(not x.isdigit() for x in shown):
        note_hidden(c.min_group_size)
    console.print("Links:", highlight=False)
    for code, link in links:
        console.print(f"  {code}: {link}", highlight=False, markup=False, soft_wrap=True)
    if not username and why == "unreachable":
        console.print("<bot> stands for your bot's username: Telegram could not be asked for it just "
                      "now. Run this again later (it is then remembered), or set COASSESS_BOT_USERNAME. "
                      "QR codes and posters: coassess invite create / coassess invite list.",
                      highlight=False, markup=False)
    elif not username:
        console.print("<bot> stands for your bot's username: set COASSESS_BOT_TOKEN (the username "
                      "is then looked up once with Telegram and remembered) or COASSESS_BOT_USERNAME "
                      "to see the full links. QR codes and posters: coassess invite create / coassess "
                      "invite list.", highlight=False, markup=False)


async def _set_status(campaign_id: str, status: str) -> None:
    async with database(existing=True) as db, db.session() as session:
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


@app.command("import-xlsform")
def import_xlsform_(
    form: Path = typer.Argument(..., help="An XLSForm workbook (.xlsx), e.g. from ODK or Kobo",
                                show_default=False),
    out: Path = typer.Option(..., "-o", "--output", metavar="FILE", show_default=False,
                             help="The campaign file to write (YAML), e.g. -o clinic-visit.yaml"),
    force: bool = typer.Option(False, "--force",
                               help="Replace the campaign file given with -o if it already exists "
                                    "(without it, an existing file is never overwritten)"),
    strict: bool = typer.Option(False, "--strict",
                                help="Write nothing if any row or setting could not be carried over"),
) -> None:
    """Make a campaign file from an XLSForm, listing by sheet row whatever could not be carried over.

    Example:

      coassess campaign import-xlsform clinic-visit.xlsx -o clinic-visit.yaml
    """
    if out.exists() and not force:
        fail(f"{out} already exists", "Choose another name with -o, or add --force to replace it.")
    import warnings

    try:
        # The spreadsheet reader warns, in its own words, about workbook features it skips;
        # they are said below in an officer's words instead.
        with warnings.catch_warnings(record=True) as skipped:
            warnings.simplefilter("always")
            result = import_xlsform(form, out.name)
    except XLSFormError as exc:
        for problem in exc.problems:
            err_console.print(problem, highlight=False, markup=False, soft_wrap=True)
        err_console.print("[bold red]The form was not imported.[/] Nothing was written.", highlight=False)
        raise typer.Exit(1) from None
    for said in dict.fromkeys(_reader_note(str(w.message)) for w in skipped
                              if issubclass(w.category, UserWarning) and "openpyxl" in w.filename):
        err_console.print(f"{form.name}: note: {said}", highlight=False, markup=False, soft_wrap=True)
    for finding in result.left_out:
        err_console.print(f"{form.name}: {finding.render()}", highlight=False, markup=False,
                          soft_wrap=True)
    for finding in result.notes:
        err_console.print(f"{form.name}: note: {finding.render()}", highlight=False, markup=False,
                          soft_wrap=True)
    if strict and result.left_out:
        n = len(result.left_out)
        err_console.print(f"[bold red]{plural(n, 'thing')} could not be carried over[/] "
                          "(listed above) and --strict was given. Nothing was written.", highlight=False)
        raise typer.Exit(1)
    out.write_text(result.yaml_text, encoding="utf-8")
    n_q = len(result.campaign["questions"])
    console.print(f"[green]✓[/] Wrote {out}: campaign '{result.campaign['id']}', {plural(n_q, 'question')}, "
                  f"languages {', '.join(result.campaign['languages'])}. It passes the check.",
                  highlight=False)
    if result.left_out:
        n_left = len(result.left_out)
        console.print(f"[yellow]{plural(n_left, 'thing')} from the form {'was' if n_left == 1 else 'were'} "
                      "left out or not carried over[/]: they are listed above and at the top of the file.",
                      highlight=False)
    console.print(f"Next: read it through, translate the title, then: coassess campaign load {out}",
                  highlight=False)


# What the spreadsheet reader (openpyxl) skips, in words for whoever made the form.
_READER_NOTES = (
    ("data validation", "the workbook's drop-down lists (data validation) are ignored; they do not "
                        "change the questions"),
    ("conditional formatting", "colour rules (conditional formatting) in the workbook are ignored"),
    ("drawingml", "pictures, shapes and drawings in the workbook are ignored"),
    ("chart", "charts in the workbook are ignored"),
    ("default style", "the workbook has no styles; that does not change the questions"),
    ("marked as a date", "a cell is marked as a date but holds no valid date: it is read as an "
                         "error; check the dates in the form"),
)


def _reader_note(message: str) -> str:
    lowered = message.lower()
    for key, note in _READER_NOTES:
        if key in lowered:
            return note
    return (f"part of the workbook could not be read and was left out ({message.rstrip('.')}); "
            "check the result below")


def _translation_failed(exc: TranslationError, what: str) -> None:
    for problem in exc.problems:
        err_console.print(problem, highlight=False, markup=False, soft_wrap=True)
    err_console.print(f"[bold red]{what}[/] Nothing was written.", highlight=False)
    raise typer.Exit(1) from None


@translations_app.command("export")
def translations_export(
    file: Path = FileArg,
    to: str = typer.Option("xlsx", "--to", help="xlsx: one spreadsheet; po: a folder with <lang>.po "
                                                "per language"),
    out: Path = typer.Option(..., "-o", "--output", help="The .xlsx file, or the folder for .po files",
                             show_default=False),
    force: bool = typer.Option(False, "--force", help="Replace files that exist"),
) -> None:
    """Write every campaign text, one row or entry per text, for translators."""
    if to not in {"xlsx", "po"}:
        fail(f"--to {to} is not a format I can write", "Use --to xlsx or --to po.")
    if not force:
        if to == "xlsx" and out.exists():
            fail(f"{out} already exists (it may hold translators' work)",
                 "Choose another name with -o, or add --force to replace it.")
        if to == "po" and out.is_dir() and any(out.glob("*.po")):
            fail(f"{out} already holds .po files (they may hold translators' work)",
                 "Choose another folder with -o, or add --force to replace them.")
    try:
        written = export_translations(file, to, out)
    except TranslationError as exc:
        _translation_failed(exc, "The translations were not exported.")
        return
    for path in written:
        console.print(f"[green]✓[/] Wrote {path}", highlight=False)
    console.print(f"When translators send it back: coassess campaign translations import {file} "
                  f"{out}", highlight=False)


@translations_app.command("import")
def translations_import(
    file: Path = FileArg,
    translations: Path = typer.Argument(..., help="The .xlsx file, a .po file, or a folder of .po files",
                                        show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing"),
) -> None:
    """Write translators' work back into the campaign file, keeping its comments and layout."""
    try:
        report = import_translations(file, translations, write=not dry_run)
    except TranslationError as exc:
        _translation_failed(exc, "The translations were not imported.")
        return
    for warning in report.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    if not report.changed:
        console.print(f"No text changed: {file} already has these translations.", highlight=False)
        return
    counts = ", ".join(f"{lang} {n}" for lang, n in sorted(report.counts().items()))
    verb = "Would update" if dry_run else "Updated"
    console.print(f"[green]✓[/] {verb} {plural(len(report.changed), 'text')} in {file} ({counts}).",
                  highlight=False)
    if dry_run:
        for key, lang, origin in report.changed:
            console.print(f"  {key} [{lang}] from {origin}", highlight=False, markup=False)
        return
    result = check_file(file)
    if result.ok:
        console.print(f"[green]✓[/] {result.summary()}", highlight=False)
    else:
        n = len(result.problems)
        console.print(f"[yellow]{plural(n, 'problem')} {'remains' if n == 1 else 'remain'}[/] (for example missing "
                      f"translations). See them with: coassess campaign check {file}", highlight=False)
