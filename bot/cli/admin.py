"""`coassess invite|broadcast|remind|outcome|audit`: launching a campaign and closing the loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

from bot.cli.common import (
    console,
    database,
    err_console,
    fail,
    keys,
    note_hidden,
    plural,
    run_async,
    settings,
)
from bot.settings import ConfigurationError

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.campaigns.schema import CampaignSpec
    from bot.db import Database
    from bot.models import Campaign
    from bot.services.broadcasts import Plan, Reach
    from bot.services.delivery import Summary
    from bot.services.outcomes import OutcomeSpec

# The services import aiogram (seconds of start-up): commands import them when they run, so
# that `coassess campaign check` and `--help` stay quick.

invite_app = typer.Typer(
    help="Links, QR codes and printable posters for trusted partners (a library, a mosque, a "
    "community group), so each can invite the people who trust them.", no_args_is_help=True)
outcome_app = typer.Typer(
    help="Close the loop: tell participants who asked what came of their answers ("
    "\"you said, we did\").", no_args_is_help=True)

def _people(n: int, shown: str | None = None, k: int = 10) -> str:
    """"1 person", "12 people"; with `shown`, a protected count ("<10" or "c" when hidden), a
    hidden one reads "<10 people" or "10 or more people" (what "c" means to a reader)."""
    if shown is None:
        return plural(n, "person", "people")
    if shown.isdigit():  # the published (perturbed) figure, never the exact one
        return plural(int(shown), "person", "people")
    return f"{shown} people" if shown.startswith("<") else f"{k} or more people"


CampaignArg = typer.Argument(..., metavar="CAMPAIGN", show_default=False,
                             help="The campaign's id, e.g. clinic-access (see them with: coassess "
                                  "campaign list)")
GROUP_HELP = ("as dimension=group, e.g. community=somali (the dimensions and groups of the campaign "
              "file); repeat --group for more")


# --------------------------------------------------------------------------- shared

async def _campaign(session, campaign_id: str) -> tuple[Campaign, CampaignSpec]:  # type: ignore[no-untyped-def]
    from bot.campaigns.schema import CampaignSpec
    from bot.models import Campaign

    c = await session.get(Campaign, campaign_id)
    if c is None:
        fail(f"there is no campaign '{campaign_id}'", "See the ids with: coassess campaign list")
        raise AssertionError
    return c, CampaignSpec.model_validate(c.definition)


@asynccontextmanager
async def _bot() -> AsyncIterator[Bot]:
    from bot.runtime.app import make_bot

    s = settings()
    bot = make_bot(s.require_token(), s.telegram_api_url)
    try:
        yield bot
    finally:
        await bot.session.close()


async def _username(bot: Bot | None, db: Database | None = None) -> str:
    from bot.services.invites import known_bot_username, resolve_bot_username

    s = settings()
    try:
        if db is not None:  # found once with getMe, then remembered for `campaign show`
            token = s.bot_token.get_secret_value() if s.bot_token else None
            return await known_bot_username(db, s.bot_username, token, bot)
        return await resolve_bot_username(s.bot_username, bot)
    except ConfigurationError as exc:
        fail(str(exc))
        raise


class RateColumn(ProgressColumn):
    """Messages a second, as Rich measures the progress."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} msg/s" if speed else "– msg/s", style="progress.data.speed")


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                    transient=False)


def _print_summary(summary: Summary, title: str) -> None:
    table = Table(title=title, show_header=True)
    for name in ("sent", "failed", "stopped", "skipped", "uncertain"):
        table.add_column(name, justify="right")
    table.add_row(*(str(summary.counts.get(n, 0)) for n in ("sent", "failed", "stopped", "skipped",
                                                           "uncertain")))
    console.print(table)
    if summary.counts.get("pending"):
        console.print(f"[yellow]{summary.counts['pending']} not sent yet.[/] Run the same command "
                      "again to carry on.")
    if summary.counts.get("stopped"):
        console.print("stopped: these people blocked the bot or deleted their account; they will "
                      "get no more messages.")
    if summary.counts.get("uncertain"):
        console.print("uncertain: the sender was interrupted while sending these; they were not "
                      "sent again, so nobody gets a second copy.")
    if summary.counts.get("failed"):
        console.print("failed: Telegram refused these; the reason is kept in the database "
                      "(delivery.error).")


def _print_reach(reach: Reach) -> None:
    """A dry run's tables (see `protect_reach`): people per language, per group of each
    dimension and per extra table, with small counts hidden as in /admin and the report."""
    for title, rows in reach.tables:
        table = Table(title=title)
        table.add_column("", no_wrap=True)
        table.add_column("people", justify="right")
        for name, shown in rows:
            table.add_row(name, shown)
        console.print(table)
    if reach.hidden:
        note_hidden(reach.k)


async def _send_with_progress(db: Database, bot: Bot, plan: Plan, campaign_id: str, what: str) -> Summary:
    from bot.services import audit as audit_log
    from bot.services.broadcasts import send_plan

    s = settings()
    actor = audit_log.cli_actor()
    with _progress() as progress:
        task = progress.add_task(what, total=plan.summary.total, completed=plan.summary.done)

        def advance(_state: str) -> None:
            progress.advance(task)

        try:
            return await send_plan(db, keys(s), bot, plan, actor, campaign_id, rate=s.broadcast_rate,
                                   per_chat_interval=s.broadcast_per_chat_interval, on_result=advance)
        except asyncio.CancelledError:
            progress.stop()
            err_console.print("Stopped. Run the same command again to carry on: nobody will get "
                              "a second copy.")
            raise


async def _print_failure_reasons(db: Database, broadcast_id: int, shown: int = 3) -> None:
    """The commonest reasons Telegram gave for refusing messages of this broadcast, with counts."""
    from sqlalchemy import func, select

    from bot.models import Delivery

    async with db.session() as session:
        rows = (await session.execute(
            select(Delivery.error, func.count()).where(Delivery.broadcast_id == broadcast_id,
                                                       Delivery.state == "failed")
            .group_by(Delivery.error).order_by(func.count().desc()).limit(shown))).all()
    for error, n in rows:
        # "TelegramBadRequest: Bad Request: chat not found" -> "Bad Request: chat not found"
        reason = (error or "no reason given").split(": ", 1)[-1][:160]
        console.print(f"Telegram refused {plural(n, 'message')}: {reason}", highlight=False,
                      markup=False)


async def _check_contact_key(db: Database) -> None:
    """Stop before sending if the contact key cannot open this database's contacts.

    Otherwise the first message would fail half-way through the run, with a traceback, and
    the person it was for would count as uncertain and never get it.
    """
    from sqlalchemy import select

    from bot.models import Contact

    async with db.session() as session:
        token = await session.scalar(select(Contact.chat_ciphertext).limit(1))
    if token is None:
        return
    try:
        keys().cipher.decrypt_chat_id(token)
    except ValueError:
        s = settings()
        where = (f"COASSESS_CONTACT_KEY or {s.keys_path()}" if s.is_sqlite
                 else "COASSESS_CONTACT_KEY")
        fail("the contact key cannot open the contacts in this database, so nobody could be "
             f"reached. Nothing was sent. The key comes from {where}, and it is not the one "
             "the participants' contacts were stored with.",
             "Use the key this database was created with (restore its .keys file or set "
             "COASSESS_CONTACT_KEY and COASSESS_PSEUDONYM_KEY as the running bot has them), and "
             "check COASSESS_DATABASE_URL points at the right database.")


async def _run_locked(db: Database, body: Callable[[], object]) -> object:
    from bot.services.delivery import DeliveryAborted
    from bot.services.lease import SenderBusy, sender_lease

    await _check_contact_key(db)
    s = settings()
    try:
        async with sender_lease(db, s.redis_url):
            return await body()  # type: ignore[misc]
    except SenderBusy as exc:
        fail(str(exc))
    except DeliveryAborted as exc:
        fail(str(exc))
    return None


# --------------------------------------------------------------------------- invites

@invite_app.command("create")
@run_async
async def invite_create(
    campaign_id: str = CampaignArg,
    code: str = typer.Option(..., "--code", metavar="CODE", show_default=False,
                             help="A short name for this partner's link: 1 to 20 letters, digits and "
                                  "-, e.g. central-library. It ends the link, so people see it"),
    partner: str = typer.Option(..., "--partner", metavar="NAME", show_default=False,
                                help="The partner's name as people know it, e.g. \"Central Library\" "
                                     "(in quotes if it has spaces); the poster says it was shared by them"),
    group: list[str] = typer.Option([], "--group", metavar="DIMENSION=GROUP", show_default=False,
                                    help="Fill in a group for everyone who comes through this link, "
                                         + GROUP_HELP),
    out: Path = typer.Option(Path("invites"), "-o", "--output", metavar="FOLDER",
                             help="The folder to write the QR codes and the poster into (made if "
                                  "missing)"),
) -> None:
    """Make a partner's invite: its link, a QR code (PNG and SVG) and a printable A4 poster.

    Needs COASSESS_BOT_USERNAME (your bot's username) or COASSESS_BOT_TOKEN to write the link. Running it again with the same code, partner and groups (or for an invite written in the campaign file) makes the link and poster again.

    Examples:

      coassess invite create clinic-access --code library --partner "Central Library" -o posters/

      coassess invite create clinic-access --code noor --partner "Al-Noor Mosque" --group community=arabic -o posters/
    """
    from bot.campaigns.store import campaign_state
    from bot.services import audit as audit_log
    from bot.services.invites import (
        InviteError,
        find_or_create_invite,
        invite_link,
        parse_groups,
        write_invite_files,
    )

    s = settings()
    if not s.bot_username and (s.bot_token is None or not s.bot_token.get_secret_value()):
        fail("the link needs your bot's username, and neither COASSESS_BOT_USERNAME nor "
             "COASSESS_BOT_TOKEN is set.",
             "Set COASSESS_BOT_USERNAME to the username @BotFather gave your bot, without the @ "
             "(e.g. NorthStreetSurveyBot), in the .env file or the environment.")
    async with database(existing=True) as db, db.session() as session:
        c, spec = await _campaign(session, campaign_id)
        try:
            groups = parse_groups(group, spec)
            invite, created = await find_or_create_invite(session, spec, code, partner, groups)
        except InviteError as exc:
            fail(str(exc))
            return
        if s.bot_username:
            username = await _username(None)
        else:
            from bot.services.invites import keep_username, remembered_username

            token = s.bot_token.get_secret_value() if s.bot_token else None
            username = await remembered_username(db, token) or ""
            if not username:
                try:
                    async with _bot() as bot:
                        username = await _username(bot)
                except ConfigurationError as exc:
                    fail(str(exc), "Set COASSESS_BOT_USERNAME to your bot's username (without the @).")
                    return
                # found once, kept for `campaign show` and the next commands
                await keep_username(session, token, username)
        link = invite_link(username, c.id, invite.code)
        try:
            files = write_invite_files(out, spec, invite.code, invite.partner, link)
        except OSError as exc:
            fail(f"cannot write the files into {out}: {exc.strerror or exc}",
                 "Choose a folder you can write to with -o, e.g. -o posters/")
            return
        if created:
            await audit_log.record(session, audit_log.cli_actor(), "invite", c.id, code=invite.code,
                                   partner=invite.partner, groups=groups)
        await session.commit()
    if created:
        console.print(f"[green]✓[/] Invite '{invite.code}' for {invite.partner}:", highlight=False)
    else:
        console.print(f"[green]✓[/] Invite '{invite.code}' for {invite.partner} already existed; "
                      "its link and files are made again:", highlight=False)
    console.print(f"  link:   {link}", highlight=False, soft_wrap=True)
    console.print(f"  QR:     {files.png}  {files.svg}", highlight=False)
    console.print(f"  poster: {files.poster}  (open it in a browser and print on A4)", highlight=False)
    if groups:
        console.print("  People who come through it start with: "
                      + "; ".join(f"{d} = {', '.join(g)}" for d, g in groups.items()), highlight=False)
    if campaign_state(c) != "open":
        console.print(f"[yellow]The campaign is {campaign_state(c)}:[/] the link works once it is open "
                      f"(coassess campaign open {c.id}).")


@invite_app.command("list")
@run_async
async def invite_list(campaign_id: str = CampaignArg) -> None:
    """Show each invite with the people who came through it: started, agreed to take part, completed.

    Example:

      coassess invite list clinic-access
    """
    from bot.services.invites import protect_column, responses_per_invite

    async with database(existing=True) as db, db.session() as session:
        _, spec = await _campaign(session, campaign_id)
        k = spec.min_group_size
        reach = await responses_per_invite(session, campaign_id)
    if not reach:
        console.print(f"No invites yet. Make one with: coassess invite create {campaign_id} "
                      "--code CODE --partner NAME")
        return
    started, agreed, completed = (protect_column([getattr(r, col) for r in reach], k, [r.keys[i] for r in reach])
                                  for i, col in enumerate(("started", "consented", "completed")))
    # the code is what other commands and the link use: never cut
    table = Table(Column("code", no_wrap=True, min_width=max(len(r.code or "–") for r in reach)),
                  "partner", Column("preset groups", overflow="fold"), "started", "agreed", "completed",
                  title=f"Invites of {campaign_id}")
    for i, r in enumerate(reach):
        preset = "; ".join(f"{d}={','.join(g)}" for d, g in r.groups.items())
        table.add_row(r.code or "–", r.partner, preset, started[1][i], agreed[1][i], completed[1][i])
    table.add_row("all", "", "", started[0], agreed[0], completed[0], style="bold")
    console.print(table)
    if any(not x.isdigit() for col in (started, agreed, completed) for x in (col[0], *col[1])):
        note_hidden(k)


# --------------------------------------------------------------------------- broadcast

@run_async
async def broadcast(
    campaign_id: str = CampaignArg,
    language: str = typer.Option(None, "--language", metavar="LANG", help="Only people who would read it in this "
                                 "language (a code from the campaign, e.g. ar)", show_default=False),
    group: list[str] = typer.Option([], "--group", metavar="DIMENSION=GROUP", help="Only people in this group, as dimension=group "
                                    "(e.g. community=somali). The same dimension twice means either; "
                                    "different dimensions must all match", show_default=False),
    only_unfinished: bool = typer.Option(False, "--only-unfinished",
                                         help="Only people who started this campaign and did not finish"),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Count who would receive it, per language and group (once it "
                                      "has been sent: those on its list not sent yet, as a real run "
                                      "would); send nothing"),
    retry_failed: bool = typer.Option(
        False, "--retry-failed",
        help="Try again for the people this invitation did not reach because Telegram was busy or "
        "had a fault at the time. Give the same options (--language, --group, --only-unfinished) "
        "as the first time. Never sent again to people it may have reached, who blocked the bot "
        "or said /stop, or who have taken part since"),
) -> None:
    """Invite participants to a campaign, each in their own language, within Telegram's limits.

    It goes to people who allow invitations and have not stopped messages or already finished this campaign. If it is interrupted (Ctrl-C, a crash), run the same command again: it carries on, and nobody gets a second copy. If some failed because Telegram was busy, run it again later with --retry-failed.

    Examples:

      coassess broadcast clinic-access --dry-run

      coassess broadcast clinic-access --group community=somali --dry-run

      coassess broadcast clinic-access

      coassess broadcast clinic-access --retry-failed
    """
    from bot.campaigns.store import campaign_state
    from bot.services import audit as audit_log
    from bot.services.broadcasts import (
        InvitationFilters,
        breakdown,
        plan_invitation,
        plan_invitation_retry,
        preview_invitation,
        protect_reach,
        protect_summary_line,
        protect_total,
    )
    from bot.services.delivery import Summary, find_broadcast
    from bot.services.invites import InviteError, parse_groups

    async with database(existing=True) as db:
        async with db.session() as session:
            c, spec = await _campaign(session, campaign_id)
            if language and language not in c.languages:
                fail(f"'{language}' is not one of the campaign's languages ({', '.join(c.languages)})")
            try:
                groups = parse_groups(group, spec)
            except InviteError as exc:
                fail(str(exc))
                return
            filters = InvitationFilters.make(language, groups, only_unfinished)
            existing = await find_broadcast(session, c.id, filters.key())
            if retry_failed and (dry_run or existing is None):
                fail("--dry-run counts a new invitation; the last run's table shows how many failed"
                     if dry_run else f"there is no invitation to '{c.id}' with these options to try again",
                     "Give the same --language, --group and --only-unfinished as the first time; "
                     "without --retry-failed it starts a new invitation")
            if dry_run:
                # who the real run would message now: once a send has started, only its own
                # list's people not sent yet
                preview = await preview_invitation(session, c, filters)
                b = breakdown(preview.recipients, c.languages, [d.id for d in spec.groups])
        if dry_run:
            # The total and the tables are protected together: small groups hidden, as in /admin
            # and the report, and no hidden row can be worked out from the total.
            reach = protect_reach(b, spec)
            console.print(f"[bold]{_people(b.total, reach.total, reach.k)}[/] would receive the "
                          f"invitation to '{c.id}' (nothing was sent).", highlight=False)
            if b.total:
                _print_reach(reach)
            if preview.started_at is not None and preview.before is not None:
                rest = ("running it carries on with those not sent yet, and nobody gets a second copy"
                        if b.total else "nothing left to send: everyone on its list has been dealt "
                        "with, so running it sends nothing")
                console.print(f"This broadcast was started on {preview.started_at:%Y-%m-%d %H:%M} UTC "
                              f"({protect_summary_line(preview.before, reach.k)}); {rest}.", highlight=False)
            if campaign_state(c) != "open":
                console.print(f"[yellow]The campaign is {campaign_state(c)}:[/] open it before sending "
                              f"(coassess campaign open {c.id}).")
            return
        if campaign_state(c) != "open":
            fail(f"campaign '{c.id}' is {campaign_state(c)}, so people who tap the invitation could "
                 "not answer.", f"Open it first: coassess campaign open {c.id}")
        async with _bot() as bot:
            username = await _username(bot, db)

            async def body() -> Summary | None:
                async with db.session() as session:
                    if retry_failed:
                        plan = await plan_invitation_retry(session, c, filters, audit_log.cli_actor(),
                                                           username)
                        if plan is None:
                            return None
                        console.print(f"Trying again for {_people(plan.retried)} whom Telegram was "
                                      "too busy, or had a fault, to reach." if plan.retried else
                                      "No invitation failed because Telegram was busy or had a "
                                      "fault: there is nobody to try again.")
                    else:
                        plan = await plan_invitation(session, c, filters, audit_log.cli_actor(), username)
                if plan.recovered:
                    console.print(f"{plan.recovered} message(s) were being sent when the last run "
                                  "stopped: they count as uncertain and are not sent again.")
                if not plan.summary.total:
                    console.print("Nobody can be invited: everyone has finished this campaign, said "
                                  "/stop, or cannot be reached. Nothing was sent.")
                    return None
                if not plan.to_send:
                    console.print("Nothing left to send for this broadcast: everyone on its list has "
                                  "been dealt with.")
                    return plan.summary
                verb = "Sending" if plan.created else "Carrying on with"
                # How many people the selection holds is protected as in the dry run; the
                # progress bar and the result table below count messages, to run the send.
                k = spec.min_group_size
                console.print(f"{verb} the invitation to "
                              f"{_people(plan.to_send, protect_total(plan.to_send, k, plan.summary.keys.get('pending')), k)} "
                              f"(at most {settings().broadcast_rate:g} messages a second).",
                              highlight=False)
                return await _send_with_progress(db, bot, plan, c.id, "invitation")

            summary = await _run_locked(db, body)
    if isinstance(summary, Summary):
        _print_summary(summary, f"Invitation to {campaign_id}")


# --------------------------------------------------------------------------- reminders

@run_async
async def remind(campaign_id: str = typer.Argument(None, metavar="CAMPAIGN", show_default=False,
                                                   help="One campaign's id; every open campaign if "
                                                        "left out")) -> None:
    """Send the one reminder to people who started but did not finish.

    A reminder goes once the campaign's delay (reminder_after_hours) has passed, only while the campaign is open, and never twice to anyone. The running bot does this by itself every minute; use this when it is not running. Needs COASSESS_BOT_TOKEN.

    Examples:

      coassess remind clinic-access

      coassess remind
    """
    from bot.campaigns.store import campaign_state
    from bot.services import audit as audit_log
    from bot.services.delivery import DeliveryAborted
    from bot.services.lease import SenderBusy
    from bot.services.scheduler import send_due_reminders

    async with database(existing=True) as db:
        if campaign_id:
            async with db.session() as session:
                c, _ = await _campaign(session, campaign_id)
            if c.reminder_after_hours is None:
                fail(f"campaign '{campaign_id}' sends no reminders: it has no reminder_after_hours",
                     "Add for example 'reminder_after_hours: 48' to the campaign file and load it again.")
            if campaign_state(c) != "open":
                fail(f"campaign '{campaign_id}' is {campaign_state(c)}: reminders go only while it is open")
        await _check_contact_key(db)
        async with _bot() as bot:
            username = await _username(bot, db)
            s = settings()
            with _progress() as progress:
                tasks: dict[str, int] = {}
                current: list[str] = []

                def on_plan(cid: str, n: int) -> None:
                    if n:
                        tasks[cid] = progress.add_task(f"reminders {cid}", total=n)
                    current[:] = [cid]

                def on_result(_state: str) -> None:
                    progress.advance(tasks[current[0]])

                try:
                    run = await send_due_reminders(db, keys(s), bot, campaign_id=campaign_id, settings=s,
                                                   actor=audit_log.cli_actor(), bot_username=username,
                                                   on_plan=on_plan, on_result=on_result)
                except DeliveryAborted as exc:
                    fail(str(exc))
                    return
    if run.busy:
        fail(str(SenderBusy()))
    if not run.summaries:
        console.print("No reminders are due right now.")
    for cid, summary in run.summaries.items():
        _print_summary(summary, f"Reminders for {cid}")
    await _note_scheduler(campaign_id)


async def _note_scheduler(campaign_id: str | None) -> None:
    """When the next reminders fall due, and that the running bot sends them by itself."""
    from bot.services.broadcasts import protect_total
    from bot.services.scheduler import upcoming_reminders

    async with database(existing=True) as db:
        upcoming = await upcoming_reminders(db, campaign_id)
    for u in upcoming:
        if u.people and u.first_due is not None:
            shown = protect_total(u.people, u.min_group_size, u.key)
            console.print(f"{u.campaign_id}: reminders for {_people(u.people, shown, u.min_group_size)} "
                          f"fall due later, the first at {u.first_due:%Y-%m-%d %H:%M} UTC.",
                          highlight=False)
        if u.last_sent_by_scheduler is not None:
            console.print(f"{u.campaign_id}: the running bot's scheduler last sent reminders at "
                          f"{u.last_sent_by_scheduler:%Y-%m-%d %H:%M} UTC (coassess audit --campaign "
                          f"{u.campaign_id}).", highlight=False)
    console.print("The running bot (coassess run) sends reminders by itself as they fall due, "
                  "checking every minute: while it runs, this command is not needed, and nobody "
                  "gets a reminder twice either way.", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- outcomes

@outcome_app.command("send")
@run_async
async def outcome_send(
    campaign_id: str = CampaignArg,
    file: Path = typer.Argument(..., metavar="FILE", show_default=False,
                                help="The outcome file (YAML), e.g. examples/outcome-clinic-access.yaml"),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Check the file and count who would receive it, per language, "
                                      "group and text; send nothing and store nothing"),
) -> None:
    """Send a "you said, we did" message to the participants who asked to hear back.

    Each reads it in their own language; a variant can speak to a group. The file is checked first, and nothing is sent until it is right. Sending the same file again carries on where it stopped. Needs COASSESS_BOT_TOKEN (not for --dry-run). The file format is in docs/administrators.md.

    Examples:

      coassess outcome send clinic-access examples/outcome-clinic-access.yaml --dry-run

      coassess outcome send clinic-access examples/outcome-clinic-access.yaml
    """
    from bot.services import audit as audit_log
    from bot.services.broadcasts import plan_outcome, protect_total
    from bot.services.delivery import Summary
    from bot.services.outcomes import OutcomeChangeRefused, check_outcome_file, store_outcome

    async with database(existing=True) as db:
        async with db.session() as session:
            c, spec = await _campaign(session, campaign_id)
        check = check_outcome_file(file, spec)
        if not check.ok:
            for p in check.problems:
                err_console.print(p.render(check.name), highlight=False, markup=False, soft_wrap=True)
            err_console.print(f"[bold red]{plural(len(check.problems), 'problem')}[/] in {check.name}. "
                              "Nothing was sent.", highlight=False)
            raise typer.Exit(1)
        assert check.spec is not None
        if dry_run:
            await _outcome_dry_run(db, c, spec, check.spec, check.name)
            return
        try:
            settings().require_token()
        except ConfigurationError as exc:
            fail(str(exc), "To check the file and count who would receive it without sending, add "
                           "--dry-run.")
        async with _bot() as bot:

            async def body() -> Summary | None:
                async with db.session() as session:
                    try:
                        outcome, _ = await store_outcome(session, c.id, check.spec)
                    except OutcomeChangeRefused as exc:
                        fail(str(exc))
                        raise
                    plan = await plan_outcome(session, c, outcome, audit_log.cli_actor())
                if not plan.summary.total:
                    console.print("Nobody has asked to hear back (or everyone who did has said /stop "
                                  "since). Nothing was sent.")
                    return None
                if not plan.to_send:
                    console.print("Nothing left to send: everyone who asked to hear back has been "
                                  "dealt with for this outcome.")
                    return plan.summary
                k = spec.min_group_size  # protected as in the dry run (see `broadcast`)
                console.print(f"Sending '{outcome.key}' to "
                              f"{_people(plan.to_send, protect_total(plan.to_send, k, plan.summary.keys.get('pending')), k)} who asked "
                              "to hear back.", highlight=False)
                sent = await _send_with_progress(db, bot, plan, c.id, "outcome")
                await _print_failure_reasons(db, plan.broadcast_id)
                return sent

            summary = await _run_locked(db, body)
    if isinstance(summary, Summary):
        _print_summary(summary, f"Outcome for {campaign_id}")


async def _outcome_dry_run(db: Database, c: Campaign, spec: CampaignSpec, outcome: OutcomeSpec,
                           name: str) -> None:
    """Count who would receive an outcome, with the same tables as `broadcast --dry-run`."""
    from bot.services.broadcasts import breakdown, protect_reach, protect_summary_line
    from bot.services.outcomes import preview_outcome

    async with db.session() as session:
        preview = await preview_outcome(session, c, outcome)
        await session.rollback()  # read only: nothing of a dry run is kept
    b = breakdown(preview.recipients, c.languages, [d.id for d in spec.groups])
    reach = protect_reach(b, spec, [("by text", preview.texts)] if outcome.variants else [],
                          {"by text": preview.text_keys})
    console.print(f"[green]✓[/] {name}: no problems.", highlight=False)
    console.print(f"[bold]{_people(b.total, reach.total, reach.k)}[/] would receive '{outcome.key}' "
                  "(nothing was sent or stored).", highlight=False)
    if b.total:
        _print_reach(reach)
    elif preview.started_at is None:
        console.print("Nobody has asked to hear back yet (or everyone who did has said /stop since).")
    if preview.started_at is not None and preview.started_summary is not None:
        rest = ("sending it again carries on with the people of that first run not sent yet"
                if b.total else "nothing left to send: everyone of that first run has been dealt with")
        console.print(f"'{outcome.key}' was first sent on {preview.started_at:%Y-%m-%d %H:%M} UTC "
                      f"({protect_summary_line(preview.started_summary, reach.k)}); {rest}.",
                      highlight=False)
    if preview.refused:
        fail(f"sending this file would be refused: {preview.refused}")


# --------------------------------------------------------------------------- audit

@run_async
async def audit(
    campaign: str = typer.Option(None, "--campaign", metavar="CAMPAIGN", show_default=False,
                                 help="Only this campaign's actions (its id, e.g. clinic-access)"),
    limit: int = typer.Option(200, "--limit", metavar="NUMBER",
                              help="How many of the latest actions to show"),
) -> None:
    """List administrative actions (load, open, close, invites, broadcasts, outcomes): who, what, when.

    Who is 'cli:<user>' for the command line, 'scheduler' for the bot's clock, or an administrator's pseudonym (admin:...) for actions taken in the chat.

    Examples:

      coassess audit --campaign clinic-access

      coassess audit --limit 20
    """
    from bot.models import Campaign
    from bot.services import audit as audit_log

    if limit < 1:
        fail(f"--limit {limit}: give how many actions to show, 1 or more (e.g. --limit 20)")
    async with database(existing=True) as db, db.session() as session:
        if campaign and await session.get(Campaign, campaign) is None:
            fail(f"there is no campaign '{campaign}'", "See the ids with: coassess campaign list")
        events = await audit_log.events(session, campaign, limit)
    if not events:
        console.print("No administrative actions recorded yet.")
        return
    table = Table("when (UTC)", "who", "action", "campaign", "details", title="Audit log")
    for e in events:
        details = json.dumps(e.details or {}, ensure_ascii=False, sort_keys=True)
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.campaign_id or "",
                      details if len(details) < 160 else details[:157] + "...")
    console.print(table)
