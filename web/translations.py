"""Translations: download the translators' spreadsheet, upload it back with its check, load it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.campaigns.check import check_text
from bot.campaigns.schema import CampaignSpec
from bot.campaigns.translations import TranslationError, apply_updates, export_xlsx, read_campaign, read_updates
from bot.models import Campaign
from bot.services import audit
from web.access import UPLOAD_LIMIT, Officer, action, page
from web.app import console_of, render, translator
from web.campaigns import title_of

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _campaign_file(folder: Path, c: Campaign) -> Path:
    """The stored campaign written out as a campaign file, which the translation tools read."""
    path = folder / f"{c.id}.yaml"
    # Defaults left out: a stored definition spells out every field (voice: false on a choice
    # question), which a campaign file may not.
    data = CampaignSpec.model_validate(c.definition).model_dump(mode="json", exclude_none=True,
                                                                 exclude_defaults=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


async def _campaign(request: Request) -> Campaign | None:
    async with console_of(request).db.session() as session:
        return await session.get(Campaign, request.path_params["cid"])


async def translations_page(request: Request, officer: Officer, **extra: object) -> Response:
    _ = translator(request)
    c = await _campaign(request)
    if c is None:
        return render(request, "refused.html", status_code=404, officer=officer,
                      sentence=_("There is no such campaign."))
    return render(request, "translations.html", officer=officer, cid=c.id, title=title_of(c, _.lang),
                  languages=c.languages, **extra)


async def spreadsheet(request: Request, officer: Officer) -> Response:
    c = await _campaign(request)
    if c is None:
        return Response(status_code=404)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{c.id}-translations.xlsx"
        export_xlsx(read_campaign(_campaign_file(Path(tmp), c)), out)
        data = out.read_bytes()
    return Response(data, media_type=XLSX,
                    headers={"content-disposition": f'attachment; filename="{c.id}-translations.xlsx"'})


async def upload(request: Request, officer: Officer, form: FormData) -> Response:
    """Check the filled-in spreadsheet against the campaign; with "load", store the new texts."""
    _ = translator(request)
    c = await _campaign(request)
    if c is None:
        return Response(status_code=404)
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return await translations_page(request, officer, problems=[_("Choose the filled-in spreadsheet "
                                                                      "(.xlsx) first.")])
    data = await file.read(UPLOAD_LIMIT + 1)
    if len(data) > UPLOAD_LIMIT or data[:4] != b"PK\x03\x04":
        return await translations_page(request, officer, problems=[_(
            "This is not the translators' spreadsheet (.xlsx, under 2 MB). Download it again from "
            "this page and fill in the empty cells.")])
    with tempfile.TemporaryDirectory() as tmp:
        campaign = read_campaign(_campaign_file(Path(tmp), c))
        sheet = Path(tmp) / "translations.xlsx"
        sheet.write_bytes(data)
        try:
            updates, problems = read_updates(campaign, sheet)
            new_text, report = apply_updates(campaign, updates) if not problems else ("", None)
        except TranslationError as exc:
            return await translations_page(request, officer, problems=[str(exc)])
        except Exception:  # noqa: BLE001 - an unreadable workbook
            return await translations_page(request, officer, problems=[_(
                "The spreadsheet could not be read. Save it again as .xlsx and upload it.")])
    if problems or report is None:
        return await translations_page(request, officer, problems=problems)
    checked = check_text(new_text, f"{c.id}.yaml")
    if not checked.ok:
        return await translations_page(request, officer,
                                       problems=[p.render(checked.name) for p in checked.problems])
    counts = report.counts()
    if form.get("load") != "1":
        return await translations_page(request, officer, checked_counts=counts, new_text=new_text)
    from bot.campaigns.store import CampaignChangeRefused, load_campaign

    assert checked.spec is not None
    async with console_of(request).db.session() as session:
        try:
            row, _created = await load_campaign(session, checked.spec)
        except CampaignChangeRefused as exc:
            return await translations_page(request, officer, problems=[str(exc)])
        await audit.record(session, officer.actor, "translations", c.id, version=row.version, via="web",
                           **{k: v for k, v in counts.items() if isinstance(v, int)})
        await session.commit()
    return await translations_page(request, officer, loaded_counts=counts)


routes = [
    Route("/campaigns/{cid}/translations", page("read")(translations_page)),
    Route("/campaigns/{cid}/translations.xlsx", page("read")(spreadsheet)),
    Route("/campaigns/{cid}/translations", action("change")(upload), methods=["POST"]),
]
