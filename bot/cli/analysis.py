"""`coassess export`, `coassess report`, `coassess synth`: the answers, sorted by group."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli.common import console, database, fail, plain_doc, plural, run_async

T = TypeVar("T")


class Layout(StrEnum):
    long = "long"
    wide = "wide"
    grouped = "grouped"


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    parquet = "parquet"
    json = "json"


class ReportFormat(StrEnum):
    html = "html"
    pdf = "pdf"
    md = "md"
    json = "json"


CampaignArg = typer.Argument(..., metavar="CAMPAIGN", help="The campaign id, e.g. clinic-access (see: coassess campaign list).",
                             show_default=False)
ByOption = typer.Option(None, "--by", metavar="DIMENSION",
                        help="Only this group dimension (e.g. community), instead of all of them.")


@contextmanager
def _progress(what: str):  # type: ignore[no-untyped-def]
    """A Rich progress bar over responses; yields (set_total, advance)."""
    with Progress(TextColumn(f"[bold]{what}[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("responses"), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield (lambda total: bar.update(task, total=total)), (lambda n: bar.advance(task, n))


async def _friendly(work: Callable[[], Awaitable[T]]) -> T:
    """Run analysis work, turning the errors an officer can fix into plain messages."""
    from analysis import InputFileError, SynthRefused, UnknownCampaign, UnknownDimension, UnknownLanguage

    try:
        return await work()
    except UnknownCampaign as exc:
        fail(str(exc), "See the ids with: coassess campaign list. Load a campaign file with: "
                       "coassess campaign load FILE")
    except UnknownDimension as exc:
        fail(str(exc), "Give one of those with --by, or leave --by out to use every dimension.")
    except UnknownLanguage as exc:
        fail(str(exc), "Give one of those language codes.")
    except InputFileError as exc:
        where = f"{exc.path}, line {exc.line}" if exc.line else str(exc.path)
        fail(f"{where}: {exc.message}", exc.hint or None)
    except SynthRefused as exc:
        fail(str(exc))
    except PermissionError as exc:
        fail(f"cannot write {exc.filename}: permission denied", "Choose a folder you can write to with -o.")
    except IsADirectoryError as exc:
        fail(f"{exc.filename} is a folder", "Give a file name with -o, e.g. -o answers.csv")
    raise AssertionError("unreachable")


def export(
    campaign: str = CampaignArg,
    output: Path = typer.Option(..., "-o", "--output", metavar="FILE", show_default=False,
                                help="The file to write, e.g. answers.xlsx. Its ending picks the format "
                                     "unless --format is given."),
    layout: Layout = typer.Option(Layout.long, "--layout", case_sensitive=False,
                                  help="[b]long[/]: one row per answer (best for analysis scripts). "
                                       "[b]wide[/]: one row per person, one column per question (best for "
                                       "spreadsheets). [b]grouped[/]: counts and averages per group, with "
                                       "small groups hidden - the one to share or publish."),
    fmt: ExportFormat | None = typer.Option(None, "--format", case_sensitive=False,
                                            help="csv (opens in Excel, UTF-8), xlsx (Excel), parquet "
                                                 "(pandas, R, Power BI) or json (JSON Lines: one object per "
                                                 "line). Default: from the file ending, else csv."),
    labels: str | None = typer.Option(None, "--labels", metavar="LANG",
                                      help="Add the question and option texts in this language (e.g. en) "
                                           "beside the ids."),
    stable_ids: bool = typer.Option(False, "--stable-ids",
                                    help="Use the same participant and response ids as in other exports, so "
                                         "files can be joined. By default every export gets fresh ids and its "
                                         "rows in a random order, so a lost file cannot be matched with another "
                                         "one. Recorded in the audit trail."),
    by: str | None = ByOption,
    exact_times: bool = typer.Option(False, "--exact-times",
                                     help="Give answer, start and finish times to the microsecond. By default "
                                          "they are cut to the day, so that times cannot re-link two exports "
                                          "or point at someone seen answering. Recorded in the audit trail."),
) -> None:
    """Export a campaign's answers to a file, for your own analysis or to share.

    The long and wide layouts hold every answer (pseudonymous: no names, phone numbers or
    Telegram ids, ever) and are for analysts who work with the council. The grouped layout
    hides every figure that rests on fewer people than the campaign's minimum group size
    (10 unless the campaign says otherwise) and is the one to publish.
    Every export is recorded in the audit trail.

    Examples:

      coassess export clinic-access -o answers.xlsx --layout wide --labels en

      coassess export clinic-access -o by-group.csv --layout grouped --by community
    """
    run_async(_export)(campaign, output, layout, fmt, labels, stable_ids, by, exact_times)


async def _export(campaign: str, output: Path, layout: Layout, fmt: ExportFormat | None,
                  labels: str | None, stable_ids: bool, by: str | None, exact_times: bool = False) -> None:
    from analysis.exports import export_async

    if by and layout != Layout.grouped:
        fail("--by only applies to the grouped layout", "Add --layout grouped, or leave --by out.")
    started = time.monotonic()
    async with database(existing=True) as db:
        with _progress(f"Exporting {campaign} ({layout.value})") as (set_total, advance):
            result = await _friendly(lambda: export_async(
                db, campaign, output, layout.value, fmt.value if fmt else None,  # type: ignore[arg-type]
                labels=labels, stable_ids=stable_ids, by=by, progress=advance, on_total=set_total,
                exact_times=exact_times))
    took = time.monotonic() - started
    console.print(f"[green]✓[/] Wrote {plural(result.rows, 'row')} ({plural(result.responses, 'response')}, "
                  f"layout {result.layout}, {result.format}) to {result.path} in {took:.1f} s.", highlight=False)
    if result.layout != "grouped":
        console.print("[dim]This file holds individual answers: keep it within the team. To publish, "
                      "use --layout grouped or coassess report.[/]", highlight=False)


def report(
    campaign: str = CampaignArg,
    output: Path = typer.Option(..., "-o", "--output", metavar="FILE", show_default=False,
                                help="The file to write, e.g. report.html or report.pdf."),
    fmt: ReportFormat | None = typer.Option(None, "--format", case_sensitive=False,
                                            help="html (one file with charts, opens offline and prints), pdf "
                                                 "(A4 pages to print or send), md (Markdown tables) or json "
                                                 "(the figures). Default: from the file ending, else html."),
    by: str | None = ByOption,
    baseline: Path | None = typer.Option(None, "--baseline", metavar="FILE.csv",
                                         help="Population shares to compare with, instead of the campaign's: "
                                              "a CSV with columns dimension,group,share (e.g. age,over64,0.18)."),
    weights: Path | None = typer.Option(None, "--weights", metavar="FILE.csv",
                                        help="Need weights for the solidarity order: a CSV with columns "
                                             "dimension,group,weight (2 = counts twice). Groups not listed "
                                             "count once."),
    lang: str | None = typer.Option(None, "--lang", metavar="LANG",
                                    help="The language of question and group texts (default: the "
                                         "campaign's first language)."),
) -> None:
    """Build the grouped report: findings in plain words first (at most two A4 pages: who took
    part and who is missing, how the service worked, what each group wants done first, what
    people said most), then the detail: how the service worked for each group, their ideas in
    their own words, and what each group would prioritise.

    Under-represented groups are flagged; priorities are ordered three ways (everyone equal,
    weighted to the population, weighted by need) so you can see whose voice an unweighted
    count would bury. Figures resting on fewer people than the campaign's minimum group
    size are hidden: a count shows "<10", any other hidden figure "[c]" (a share, an average,
    or a count hidden so that a "<10" cannot be worked out from totals).

    Examples:

      coassess report clinic-access -o report.html --weights need.csv

      coassess report clinic-access -o report.pdf
    """
    if fmt is None and output.suffix.lower() not in {".html", ".htm", ".pdf", ".md", ".json", ""}:
        fail(f"-o {output}: a report is written as html, pdf, md or json, not as '{output.suffix}'",
             f"End the file name in .html (one page with charts), .pdf (A4 pages), .md or .json, "
             f"e.g. -o {output.with_suffix('.pdf').name}.")
    run_async(_report)(campaign, output, fmt, by, baseline, weights, lang)


async def _report(campaign: str, output: Path, fmt: ReportFormat | None, by: str | None,
                  baseline: Path | None, weights: Path | None, lang: str | None) -> None:
    from analysis.findings import dimension_name
    from analysis.render import PdfUnavailable
    from analysis.report import build_report_async

    started = time.monotonic()
    async with database(existing=True) as db:
        with _progress(f"Reading {campaign}") as (set_total, advance):
            try:
                model = await _friendly(lambda: build_report_async(
                    db, campaign, output, fmt.value if fmt else None, by=by,  # type: ignore[arg-type]
                    baseline=baseline, weights=weights, lang=lang, progress=advance, on_total=set_total))
            except PdfUnavailable as exc:
                fail(f"cannot write {output}: {exc}", f"Or write the report as HTML and print it from a "
                     f"browser: -o {output.with_suffix('.html').name}")
    took = time.monotonic() - started
    console.print(f"[green]✓[/] Wrote the report to {output} in {took:.1f} s.", highlight=False)
    for d in model["reach"]["dimensions"]:
        if d["under_represented"]:
            console.print(f"[yellow]Under-represented ({dimension_name(d)}):[/] "
                          f"{', '.join(d['under_represented'])}", highlight=False)


def synth(
    campaign: str = CampaignArg,
    responses: int = typer.Option(1000, "--responses", "-n", metavar="NUMBER",
                                  help="How many responses to create (1 or more)."),
    seed: int = typer.Option(0, "--seed", metavar="NUMBER",
                             help="The same seed gives the same answers (on an empty campaign)."),
    append: bool = typer.Option(False, "--append",
                                help="Add to a campaign that already has responses (they will mix)."),
) -> None:
    """Fill a campaign with realistic made-up responses, for demos, training and load tests.

    Use a demo or test database, never the live one: the answers look real. Group sizes
    are skewed (one tiny group per dimension, to show how small groups are protected),
    people skip, change answers, stop half-way, answer in several languages and send voice
    notes. Synthetic people have no contact details, so no message can reach them.

    Example:

      coassess campaign load examples/clinic-access.yaml && coassess synth clinic-access -n 5000
    """
    if responses < 1:
        fail(f"--responses {responses}: give how many responses to create, 1 or more (e.g. -n 500)")
    run_async(_synth)(campaign, responses, seed, append)


async def _synth(campaign: str, responses: int, seed: int, append: bool) -> Any:
    from analysis.synth import synthesize_async

    started = time.monotonic()
    async with database() as db:
        with _progress(f"Creating responses for {campaign}") as (set_total, advance):
            set_total(responses)
            result = await _friendly(lambda: synthesize_async(db, campaign, responses, seed=seed,
                                                              append=append, progress=advance))
    took = time.monotonic() - started
    tiny = ", ".join(f"{d}: {g}" for d, g in result.tiny_groups.items())
    console.print(f"[green]✓[/] Created {plural(result.responses, 'response')} ({result.completed:,} finished, "
                  f"{plural(result.answers, 'answer')}) in {took:.1f} s." + (f" Tiny groups: {tiny}." if tiny else ""),
                  highlight=False)


for _command in (export, report, synth):
    _command.__doc__ = plain_doc(_command.__doc__)
