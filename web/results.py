"""Results: the report in the page (as `coassess report` makes it) and every download."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from analysis.exports import LAYOUTS, export_async
from analysis.report import REPORT_FORMATS, render as render_report, report_model_async
from bot.models import Campaign
from bot.services import audit
from web.access import Officer, page
from web.app import console_of, render, translator
from web.campaigns import title_of

EXPORT_FORMATS = ("csv", "xlsx", "parquet", "json")
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "parquet": "application/vnd.apache.parquet", "json": "application/json",
         "html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8"}
# The report page is self-contained: its charts are embedded images and its styles inline.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'self'")


async def _off_the_loop(work: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a long analysis (the report's model, an export) in a thread with its own event loop and
    its own connection to the database, so that the console keeps answering other officers (and
    the live pages keep refreshing) while a large campaign is counted."""
    return await asyncio.to_thread(lambda: asyncio.run(work(*args, **kwargs)))


async def _campaign(request: Request) -> Campaign | None:
    async with console_of(request).db.session() as session:
        return await session.get(Campaign, request.path_params["cid"])


async def results_page(request: Request, officer: Officer) -> Response:
    _ = translator(request)
    c = await _campaign(request)
    if c is None:
        return render(request, "refused.html", status_code=404, officer=officer,
                      sentence=_("There is no such campaign."))
    model = await _off_the_loop(report_model_async, console_of(request).db.url, c.id)
    reach = model["reach"]
    missing = [{"dimension": d["title"], "groups": d["under_represented"]}
               for d in reach["dimensions"] if d["under_represented"]]
    return render(request, "results.html", officer=officer, cid=c.id, title=title_of(c, _.lang),
                  model=model, reach=reach, missing=missing, layouts=LAYOUTS, formats=EXPORT_FORMATS,
                  report_formats=REPORT_FORMATS)


async def report_file(request: Request, officer: Officer) -> Response:
    """The report in HTML (shown in the results page, or saved), Markdown or JSON."""
    fmt = request.path_params["fmt"]
    c = await _campaign(request)
    if c is None or fmt not in REPORT_FORMATS:
        return Response(status_code=404)
    console = console_of(request)
    model = await _off_the_loop(report_model_async, console.db.url, c.id)
    body = render_report(model, fmt)  # type: ignore[arg-type]
    headers: dict[str, Any] = {"content-security-policy": REPORT_CSP}
    if request.query_params.get("download"):
        headers["content-disposition"] = f'attachment; filename="{c.id}-report.{fmt}"'
        async with console.db.session() as session:
            await audit.record(session, officer.actor, "report", c.id, format=fmt, via="web")
            await session.commit()
    return Response(body, media_type=MEDIA[fmt], headers=headers)


async def export_file(request: Request, officer: Officer) -> Response:
    layout, fmt = request.path_params["layout"], request.path_params["fmt"]
    c = await _campaign(request)
    if c is None or layout not in LAYOUTS or fmt not in EXPORT_FORMATS:
        return Response(status_code=404)
    folder = Path(tempfile.mkdtemp(prefix="coassess-export-"))
    name = f"{c.id}-{layout}.{fmt}"
    try:
        # Recorded in the audit log by the export itself, under the officer's pseudonym.
        await _off_the_loop(export_async, console_of(request).db.url, c.id, folder / name, layout, fmt,
                            actor=officer.actor)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(folder / name, media_type=MEDIA[fmt], filename=name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


routes = [
    Route("/campaigns/{cid}/results", page("results")(results_page)),
    Route("/campaigns/{cid}/report.{fmt}", page("results")(report_file)),
    Route("/campaigns/{cid}/export/{layout}.{fmt}", page("results")(export_file)),
]
