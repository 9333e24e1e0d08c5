"""Sends: the invitation, the reminder and "you said, we did": dry run with protected totals,
a confirmation with the number, the send in the background with live progress, retry."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import campaign_state
from bot.models import Broadcast, Campaign, utcnow
from bot.services.broadcasts import (
    InvitationFilters,
    breakdown,
    invitation_recipients,
    load_candidates,
    outcome_wanted,
    plan_invitation,
    plan_invitation_retry,
    plan_outcome,
    plan_reminders,
    protect_reach,
    protect_summary_line,
    protect_total,
    reminder_due,
    send_plan,
)
from bot.services.delivery import DeliveryAborted, find_broadcast, summarise
from bot.services.lease import SenderBusy, sender_lease
from bot.services.outcomes import (
    OutcomeChangeRefused,
    OutcomeSpec,
    check_outcome_text,
    preview_outcome,
    store_outcome,
)
from web.access import UPLOAD_LIMIT, Officer, action, page
from web.app import Console, console_of, render, translator
from web.campaigns import title_of
from web.invites import bot_username

log = logging.getLogger(__name__)

KINDS = ("invitation", "reminder", "outcome")
PROGRESS_SECONDS = 2


@dataclass
class SendState:
    """The send this console process runs for a campaign: what, which broadcast, how it ended."""

    kind: str
    broadcast_id: int | None = None
    status: str = "starting"  # starting | sending | done | busy | failed
    note: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def _states(console: Console) -> dict[str, SendState]:
    return console.send_states


def running(console: Console, cid: str) -> SendState | None:
    state = _states(console).get(cid)
    return state if state and state.task and not state.task.done() else None


# --------------------------------------------------------------------------- the outcome text

async def outcome_from_form(form: FormData, spec: CampaignSpec) -> str:
    """The outcome as the text of an outcome file: the uploaded file, or what was written in the
    page (a key and a text per language), so both meet the same check."""
    upload = form.get("outcome_file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(UPLOAD_LIMIT + 1)
        return data[:UPLOAD_LIMIT].decode("utf-8-sig", errors="replace")
    if form.get("outcome_text"):
        return str(form.get("outcome_text"))
    texts = {lang: str(form.get(f"text_{lang}") or "").strip() for lang in spec.languages}
    key = str(form.get("key") or "").strip()
    return yaml.safe_dump({"key": key, "text": {k: v for k, v in texts.items() if v}},
                          allow_unicode=True, sort_keys=False)


# --------------------------------------------------------------------------- pages

async def _campaign(request: Request) -> tuple[Campaign, CampaignSpec] | None:
    async with console_of(request).db.session() as session:
        c = await session.get(Campaign, request.path_params["cid"])
    return (c, CampaignSpec.model_validate(c.definition)) if c else None


async def _history(console: Console, c: Campaign) -> list[dict[str, Any]]:
    async with console.db.session() as session:
        rows = (await session.scalars(select(Broadcast).where(Broadcast.campaign_id == c.id)
                                      .order_by(Broadcast.created_at.desc()))).all()
        out = []
        for b in rows:
            summary = await summarise(session, b.id)
            out.append({"id": b.id, "kind": b.kind, "key": b.key, "at": b.created_at, "status": b.status,
                        "line": protect_summary_line(summary, c.min_group_size),
                        "retry": b.kind == "invitation" and bool(summary.counts.get("failed"))})
    return out


async def sends_page(request: Request, officer: Officer, **extra: Any) -> Response:
    _ = translator(request)
    found = await _campaign(request)
    if found is None:
        return render(request, "refused.html", status_code=404, officer=officer,
                      sentence=_("There is no such campaign."))
    c, spec = found
    console = console_of(request)
    return render(request, "sends.html", officer=officer, cid=c.id, title=title_of(c, _.lang),
                  state=campaign_state(c), languages=c.languages, reminders=c.reminder_after_hours,
                  history=await _history(console, c), progress=_progress_context(console, c),
                  today=utcnow().strftime("%Y-%m-%d"), **extra)


async def dry_run(request: Request, officer: Officer, form: FormData) -> Response:
    """Who would receive it, protected as `coassess broadcast --dry-run` shows it; nothing stored."""
    _ = translator(request)
    found = await _campaign(request)
    if found is None:
        return RedirectResponse("/", status_code=303)
    c, spec = found
    kind = str(form.get("kind") or "")
    if kind not in KINDS:
        return await sends_page(request, officer, problem=_("Choose what to send."))
    console = console_of(request)
    outcome_text = ""
    extra: list[tuple[str, Any]] = []
    extra_keys: dict[str, Any] = {}
    earlier: tuple[Any, Any] | None = None  # (when, summary) of a run this one would carry on
    async with console.db.session() as session:
        candidates = await load_candidates(session, c.id)
        if kind == "invitation":
            recipients = invitation_recipients(candidates, InvitationFilters(), c.languages)
            started = await find_broadcast(session, c.id, InvitationFilters().key())
            if started is not None:
                earlier = (started.created_at, await summarise(session, started.id))
        elif kind == "reminder":
            now = utcnow()
            recipients = [x for x in candidates if reminder_due(x, c, now)]
        else:
            outcome_text = await outcome_from_form(form, spec)
            check = check_outcome_text(outcome_text, spec, "outcome")
            if not check.ok or check.spec is None:
                return await sends_page(request, officer, outcome_problems=check.problems,
                                        outcome_draft=outcome_text)
            preview = await preview_outcome(session, c, check.spec)
            await session.rollback()
            if preview.refused:
                return await sends_page(request, officer, problem=preview.refused)
            recipients = [x for x in candidates if outcome_wanted(x)]
            if preview.started_at is not None and preview.started_summary is not None:
                earlier = (preview.started_at, preview.started_summary)
            if check.spec.variants:
                extra, extra_keys = [("by text", preview.texts)], {"by text": preview.text_keys}
    b = breakdown(recipients, c.languages, [d.id for d in spec.groups])
    reach = protect_reach(b, spec, extra, extra_keys)
    return render(request, "send_confirm.html", officer=officer, cid=c.id, title=title_of(c, _.lang),
                  kind=kind, reach=reach, total=b.total, outcome_text=outcome_text,
                  earlier_at=earlier[0] if earlier else None,
                  earlier_line=protect_summary_line(earlier[1], reach.k) if earlier else "",
                  open=campaign_state(c) == "open", busy=running(console, c.id) is not None)


async def start(request: Request, officer: Officer, form: FormData) -> Response:
    _ = translator(request)
    found = await _campaign(request)
    if found is None:
        return RedirectResponse("/", status_code=303)
    c, spec = found
    kind = str(form.get("kind") or "")
    retry = form.get("retry") == "1"
    console = console_of(request)
    if kind not in KINDS:
        return await sends_page(request, officer, problem=_("Choose what to send."))
    if running(console, c.id) is not None:
        return await sends_page(request, officer, problem=_(
            "A send for this campaign is under way. Wait for it to finish, then try again."))
    if kind != "outcome" and campaign_state(c) != "open":
        return await sends_page(request, officer, problem=_(
            "Open the campaign first: people who tap the message could not answer yet."))
    if console.bot_factory is None:
        return await sends_page(request, officer, problem=_(
            "The console cannot send: COASSESS_BOT_TOKEN is not set where it runs."))
    outcome: OutcomeSpec | None = None
    if kind == "outcome":
        check = check_outcome_text(str(form.get("outcome_text") or ""), spec, "outcome")
        if not check.ok:
            return await sends_page(request, officer, outcome_problems=check.problems,
                                    outcome_draft=str(form.get("outcome_text") or ""))
        outcome = check.spec
    try:
        username = await bot_username(console)
    except Exception as exc:  # noqa: BLE001 - a configuration problem the officer can pass on
        return await sends_page(request, officer, problem=str(exc))
    state = SendState(kind)
    _states(console)[c.id] = state
    # A fresh context: nothing of this request may leak into a task that outlives it.
    state.task = asyncio.get_running_loop().create_task(
        _send(console, c.id, kind, officer.actor, username, outcome, retry, state, _),
        context=contextvars.Context())
    # Give the task a moment, so "another send is running" shows at once rather than on the next poll.
    await asyncio.sleep(0.05)
    return RedirectResponse(f"/campaigns/{c.id}/sends", status_code=303)


async def _send(console: Console, cid: str, kind: str, actor: str, username: str,
                outcome: OutcomeSpec | None, retry: bool, state: SendState, _: Any) -> None:
    db, s = console.db, console.settings
    bot = console.bot_factory()
    try:
        async with sender_lease(db, s.redis_url):
            async with db.session() as session:
                c = await session.get(Campaign, cid)
                assert c is not None
                if kind == "invitation" and retry:
                    plan = await plan_invitation_retry(session, c, InvitationFilters(), actor, username)
                elif kind == "invitation":
                    plan = await plan_invitation(session, c, InvitationFilters(), actor, username)
                elif kind == "reminder":
                    plan = await plan_reminders(session, c, actor, username)
                else:
                    assert outcome is not None
                    row, _new = await store_outcome(session, cid, outcome)
                    plan = await plan_outcome(session, c, row, actor)
                k = c.min_group_size
            if plan is None or not plan.summary.total:
                state.status, state.note = "done", _("Nobody to send to: nothing was sent.")
                return
            state.broadcast_id, state.status = plan.broadcast_id, "sending"
            if plan.to_send:
                await send_plan(db, console.keys, bot, plan, actor, cid, rate=s.broadcast_rate,
                                per_chat_interval=s.broadcast_per_chat_interval)
            state.status = "done"
            # the planned people's record keys give the figure its cell key, as the CLI's total
            state.note = _("Done. Sent to %(n)s.", n=protect_total(plan.summary.total, k,
                                                                 sum(plan.summary.keys.values())))
    except SenderBusy:
        state.status = "busy"
        state.note = _("Another send (a broadcast, reminders or an outcome) is going out from this "
                       "database right now, perhaps from the bot or the command line. Wait for it to "
                       "finish, then start this one again: nobody gets a second copy.")
    except OutcomeChangeRefused as exc:
        state.status, state.note = "failed", str(exc)
    except DeliveryAborted as exc:
        state.status, state.note = "failed", str(exc)
    except asyncio.CancelledError:
        state.status, state.note = "failed", _("The console stopped while sending. Start the send "
                                               "again to carry on: nobody gets a second copy.")
        raise
    except Exception as exc:  # noqa: BLE001 - the officer reads a sentence, the log the class
        log.error("console send failed: %s", exc.__class__.__name__)
        state.status, state.note = "failed", _("The send stopped because of an error. Start it again "
                                               "to carry on: nobody gets a second copy.")
    finally:
        await bot.session.close()


def _progress_context(console: Console, c: Campaign) -> dict[str, Any] | None:
    state = _states(console).get(c.id)
    if state is None:
        return None
    return {"kind": state.kind, "status": state.status, "note": state.note,
            "broadcast_id": state.broadcast_id, "live": state.status in ("starting", "sending")}


async def progress(request: Request, officer: Officer) -> Response:
    """The live progress, counted from the delivery rows (protected like a dry run's totals)."""
    found = await _campaign(request)
    if found is None:
        return Response(status_code=404)
    c, _spec = found
    console = console_of(request)
    ctx = _progress_context(console, c)
    line = ""
    if ctx and ctx["broadcast_id"]:
        async with console.db.session() as session:
            summary = await summarise(session, ctx["broadcast_id"])
        line = protect_summary_line(summary, c.min_group_size)
        ctx["retry"] = ctx["kind"] == "invitation" and not ctx["live"] and bool(summary.counts.get("failed"))
    return render(request, "_progress.html", officer=officer, cid=c.id, progress=ctx, line=line,
                  every=PROGRESS_SECONDS)


routes = [
    Route("/campaigns/{cid}/sends", page("send")(sends_page)),
    Route("/campaigns/{cid}/sends/dry-run", action("send")(dry_run), methods=["POST"]),
    Route("/campaigns/{cid}/sends/start", action("send")(start), methods=["POST"]),
    Route("/campaigns/{cid}/sends/progress", page("send")(progress)),
]

