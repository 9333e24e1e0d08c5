"""The campaigns page: every campaign with its state; upload, check and load a file; open, close, schedule."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.campaigns.check import CheckResult, Problem, check_text
from bot.campaigns.store import CampaignChangeRefused, campaign_state, load_campaign
from bot.models import Campaign, ParticipationTally, utcnow
from bot.services import audit
from bot.services.invites import protect_column
from web.access import UPLOAD_LIMIT, N_, Officer, action, page
from web.app import console_of, render, translator


# Words the templates translate by value (campaign states, kinds of send), listed for extraction.
SHOWN_WORDS = (N_("draft"), N_("scheduled"), N_("open"), N_("closed"), N_("invitation"), N_("reminder"),
               N_("outcome"), N_("by language"), N_("by text"))


def title_of(c: Campaign, lang: str) -> str:
    return c.title.get(lang) or c.title.get(c.languages[0]) or c.id


def days_left(c: Campaign, now: datetime | None = None) -> int | None:
    if c.closes is None:
        return None
    now = now or utcnow()
    return max(0, (c.closes - now).days + (1 if (c.closes - now).seconds else 0))


async def started_and_finished(session: AsyncSession) -> dict[str, list[tuple[int, int, int, int]]]:
    """Per campaign, per invite link (and no link): people who started and who finished, and the
    sums of their record keys, from the running tallies (bot.services.participation): as `coassess
    campaign list` counts them, so that each total is protected with the rows it is made of."""
    t = ParticipationTally
    cells: dict[str, dict[str, dict[str, tuple[int, int]]]] = {}
    for cid, kind, link, n, key in (await session.execute(
            select(t.campaign_id, t.kind, t.value, func.sum(t.n), func.sum(t.key_sum))
            .where(t.kind.in_(("reached", "completed"))).group_by(t.campaign_id, t.kind, t.value))).all():
        cells.setdefault(cid, {}).setdefault(link, {})[kind] = (int(n), int(key or 0))
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    for cid, links in cells.items():
        for link in sorted(links):
            (started, started_key), (done, done_key) = (links[link].get("reached", (0, 0)),
                                                        links[link].get("completed", (0, 0)))
            if started:
                out.setdefault(cid, []).append((started, done, started_key, done_key))
    return out


async def campaign_list(request: Request, officer: Officer) -> Response:
    _ = translator(request)
    console = console_of(request)
    rows = []
    async with console.db.session() as session:
        per_link = await started_and_finished(session)
        for c in (await session.scalars(select(Campaign).order_by(Campaign.created_at))).all():
            links = per_link.get(c.id, [])
            started_shown = protect_column([n for n, _, _, _ in links], c.min_group_size,
                                           [k for _, _, k, _ in links])[0]
            done_shown = protect_column([d for _, d, _, _ in links], c.min_group_size,
                                        [k for _, _, _, k in links])[0]
            rows.append({"id": c.id, "title": title_of(c, _.lang), "state": campaign_state(c),
                         "agreed": started_shown, "finished": done_shown,
                         "days_left": days_left(c), "opens": c.opens, "closes": c.closes,
                         "k": c.min_group_size})
    return render(request, "campaigns.html", officer=officer, campaigns=rows,
                  hidden=any(not (r["agreed"].isdigit() and r["finished"].isdigit()) for r in rows))


# --------------------------------------------------------------------------- upload, check, load

async def _read_upload(upload: UploadFile) -> tuple[str, bytes]:
    """The uploaded bytes and a safe kind; the browser's file name is used only for its ending."""
    data = await upload.read(UPLOAD_LIMIT + 1)
    name = (upload.filename or "").lower()
    kind = "xlsx" if name.endswith(".xlsx") or data[:4] == b"PK\x03\x04" else "yaml"
    return kind, data


def _check_upload(kind: str, data: bytes, tr: Callable[..., str]) -> tuple[CheckResult, str, list[str]]:
    """The `campaign check` result of an upload (an XLSForm converted first), its YAML text and
    the notes of the conversion."""
    from bot.campaigns.xlsform import XLSFormError, import_xlsform

    if len(data) > UPLOAD_LIMIT:
        return CheckResult("upload", [Problem(tr("The file is larger than 2 MB; a campaign file is much "
                                                 "smaller. Check you chose the right file."))]), "", []
    if kind == "xlsx":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "form.xlsx"
            path.write_bytes(data)
            try:
                imported = import_xlsform(path, "campaign.yaml")
            except XLSFormError as exc:
                return CheckResult("form.xlsx", [Problem(p) for p in exc.problems]), "", []
            except Exception:  # noqa: BLE001 - not a workbook at all
                return CheckResult("form.xlsx", [Problem(tr(
                    "This is not an XLSForm workbook that can be read. Save it again as .xlsx from "
                    "Excel, LibreOffice, ODK or Kobo."))]), "", []
        notes = [f.render() for f in [*imported.left_out, *imported.notes]]
        return check_text(imported.yaml_text, "campaign.yaml"), imported.yaml_text, notes
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return CheckResult("campaign.yaml", [Problem(tr(
            "The file is not text in UTF-8. Upload the campaign's .yaml file, or an XLSForm .xlsx."))]), "", []
    return check_text(text, "campaign.yaml"), text, []


async def campaign_check(request: Request, officer: Officer, form: FormData) -> Response:
    _ = translator(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(request, "campaign_check.html", officer=officer, result=None,
                      problem=_("Choose a campaign file (.yaml) or an XLSForm (.xlsx) first."))
    kind, data = await _read_upload(upload)
    result, text, notes = _check_upload(kind, data, _)
    return render(request, "campaign_check.html", officer=officer, result=result, text=text,
                  notes=notes, summary=result.summary() if result.ok else "")


async def campaign_load(request: Request, officer: Officer, form: FormData) -> Response:
    _ = translator(request)
    text = str(form.get("text") or "")
    result = check_text(text, "campaign.yaml")  # checked again: the page may be old or edited
    if not result.ok or result.spec is None:
        return render(request, "campaign_check.html", officer=officer, result=result, text=text,
                      notes=[], summary="")
    console = console_of(request)
    async with console.db.session() as session:
        try:
            c, created = await load_campaign(session, result.spec)
        except CampaignChangeRefused as exc:
            await session.rollback()
            return render(request, "campaign_check.html", officer=officer, result=result, text=text,
                          notes=[], summary="", refused=str(exc))
        await audit.record(session, officer.actor, "load", c.id, version=c.version, created=created,
                           via="web")
        await session.commit()
        cid = c.id
    return RedirectResponse(f"/campaigns/{cid}?loaded=1", status_code=303)


# --------------------------------------------------------------------------- open, close, schedule

CHANGES = ("open", "close", "schedule")


def _when(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


async def confirm_change(request: Request, officer: Officer) -> Response:
    """The confirmation page: names the campaign and says what will happen."""
    change = request.path_params["change"]
    if change not in CHANGES:
        return RedirectResponse("/", status_code=303)
    async with console_of(request).db.session() as session:
        c = await session.get(Campaign, request.path_params["cid"])
        if c is None:
            return render(request, "refused.html", status_code=404, officer=officer,
                          sentence=translator(request)("There is no such campaign."))
        _ = translator(request)
        return render(request, "campaign_confirm.html", officer=officer, change=change, cid=c.id,
                      title=title_of(c, _.lang), state=campaign_state(c), opens=c.opens, closes=c.closes)


async def apply_change(request: Request, officer: Officer, form: FormData) -> Response:
    _ = translator(request)
    change = request.path_params["change"]
    if change not in CHANGES:
        return RedirectResponse("/", status_code=303)
    async with console_of(request).db.session() as session:
        c = await session.get(Campaign, request.path_params["cid"])
        if c is None:
            return RedirectResponse("/", status_code=303)
        details: dict[str, object] = {"via": "web"}
        if change == "open":
            c.status = "open"
        elif change == "close":
            c.status = "closed"
        else:
            try:
                opens, closes = _when(str(form.get("opens") or "")), _when(str(form.get("closes") or ""))
            except ValueError:
                return render(request, "campaign_confirm.html", officer=officer, change=change, cid=c.id,
                              title=title_of(c, _.lang), state=campaign_state(c), opens=c.opens,
                              closes=c.closes, problem=_("Give the dates as on the form, e.g. "
                                                         "2027-01-31T09:00."))
            if opens and closes and closes <= opens:
                return render(request, "campaign_confirm.html", officer=officer, change=change, cid=c.id,
                              title=title_of(c, _.lang), state=campaign_state(c), opens=c.opens,
                              closes=c.closes, problem=_("The closing time must come after the opening "
                                                         "time."))
            c.opens, c.closes = opens, closes
            if c.status != "closed":
                c.status = "draft"  # the schedule opens it; campaign_state reads the dates
            details.update(opens=opens.isoformat() if opens else None,
                           closes=closes.isoformat() if closes else None)
        await audit.record(session, officer.actor, "schedule" if change == "schedule" else change, c.id,
                           **details)
        await session.commit()
        cid = c.id
    return RedirectResponse(f"/campaigns/{cid}", status_code=303)


routes = [
    Route("/", page("read")(campaign_list)),
    Route("/campaigns/check", action("change")(campaign_check), methods=["POST"]),
    Route("/campaigns/load", action("change")(campaign_load), methods=["POST"]),
    Route("/campaigns/{cid}/change/{change}", page("change")(confirm_change)),
    Route("/campaigns/{cid}/change/{change}", action("change")(apply_change), methods=["POST"]),
]
