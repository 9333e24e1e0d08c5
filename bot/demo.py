"""`coassess demo`: the whole product, offline, in about a minute.

The sandbox Bot API and the real bot (the production code path: HTTP, polling, journal,
dialogs, storage) run side by side; about 200 simulated citizens from several groups and
languages answer the example campaign; then the export and the grouped report are written.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.campaigns.check import check_file
from bot.campaigns.store import load_and_open
from bot.runtime.runner import Runtime, poll
from bot.sandbox import SandboxClient
from bot.settings import Settings
from bot.simulation import Citizen, CitizenResult, make_personas
from dialogs.context import forget_cached_campaigns

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "clinic-access.yaml"
SANDBOX_TOKEN = "123456:TEST"


@asynccontextmanager
async def sandbox_process() -> AsyncIterator[SandboxClient]:
    """`coassess sandbox` in a process of its own, and a control client for it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "sandbox", "--port", str(port),
                             "--token", SANDBOX_TOKEN],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = SandboxClient(f"http://127.0.0.1:{port}", timeout=120)
    try:
        for _ in range(300):
            try:
                await client.get_limits()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if proc.poll() is not None:
                    raise RuntimeError("the sandbox did not start") from None
                await asyncio.sleep(0.1)
        yield client
    finally:
        await client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class DemoResult:
    out: Path
    results: list[CitizenResult]
    export: Path | None
    report: Path | None
    seconds: float


async def run_demo(out: Path, citizens: int = 200, seed: int = 7, campaign_file: Path = EXAMPLE,
                   console: Console | None = None) -> DemoResult:
    console = console or Console(emoji=False)
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("demo.db*"):
        old.unlink()
    shutil.rmtree(out / "journal", ignore_errors=True)
    check = check_file(campaign_file)
    if not check.ok or check.spec is None:
        raise SystemExit("\n".join(p.render(check.name) for p in check.problems))
    spec = check.spec
    db_url = f"sqlite+aiosqlite:///{(out / 'demo.db').resolve()}"
    console.print(f"[bold]coassess demo[/]: {citizens} simulated citizens answer "
                  f"'{spec.text(spec.title, 'en')}' in {len(spec.languages)} languages, offline.")
    await load_and_open(db_url, spec)
    forget_cached_campaigns()

    results: list[CitizenResult] = []
    # The database's own key file (demo.db.keys), made as `coassess run` makes it, so that every
    # other command (broadcast, outcome send, export) works on the demo database afterwards.
    p_key, c_key = Settings(_env_file=None, database_url=db_url).secret_keys()
    # The sandbox runs in its own process, as Telegram would: the bot and the simulated people
    # share this one. The per-chat limit is relaxed (these people tap faster than real ones); the
    # global limit is off because 200 people answer at once, which Telegram allows for replies.
    async with sandbox_process() as client:
        await client.set_limits(global_per_second=None, per_chat_per_second=4.0, per_chat_burst=4)
        settings = Settings(_env_file=None, database_url=db_url, bot_token=SecretStr(SANDBOX_TOKEN),
                            telegram_api_url=client.base_url.removesuffix("/sandbox"),
                            pseudonym_key=SecretStr(p_key.decode()), contact_key=SecretStr(c_key.decode()),
                            journal_path=str(out / "journal" / "journal.db"), concurrency=256,
                            scheduler_interval=0)
        runtime = await Runtime.create(settings)
        stop = asyncio.Event()
        bot_task = asyncio.create_task(poll(runtime, stop, timeout=1, signals=False))
        personas = make_personas(spec, citizens, seed=seed)
        gate = asyncio.Semaphore(120)
        with Progress(TextColumn("[bold blue]citizens answering"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            bar = progress.add_task("answering", total=len(personas))

            async def one(persona):  # type: ignore[no-untyped-def]
                async with gate:
                    r = await Citizen(client, spec, persona, think=(0.05, 0.25), timeout=120).run()
                progress.advance(bar)
                return r

            results = list(await asyncio.gather(*(one(p) for p in personas)))
        stop.set()
        await bot_task
        await runtime.close()

    export_path = out / "answers-long.csv"
    report_path = out / "report.html"
    with console.status("writing the export and the grouped report"):
        from analysis import build_report_async, export_async

        await export_async(db_url, spec.id, export_path, layout="long", format="csv")
        await export_async(db_url, spec.id, out / "answers-wide.xlsx", layout="wide", format="xlsx")
        await build_report_async(db_url, spec.id, report_path)
    seconds = time.monotonic() - started
    _summary(console, results, out, export_path, report_path, seconds)
    return DemoResult(out, results, export_path, report_path, seconds)


def _summary(console: Console, results: list[CitizenResult], out: Path, export: Path, report: Path,
             seconds: float) -> None:
    langs = Counter(r.persona.language for r in results)
    table = Table(title="What happened")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("citizens", str(len(results)))
    table.add_row("finished the survey", str(sum(r.finished for r in results)))
    table.add_row("left half-way", str(sum(1 for r in results if r.persona.stop_after and not r.finished)))
    table.add_row("blocked the bot", str(sum(r.persona.blocks for r in results)))
    table.add_row("answers given", str(sum(len(r.expected) for r in results)))
    table.add_row("voice notes", str(sum(1 for r in results for v in r.expected.values()
                                         if isinstance(v, dict) and "voice" in v)))
    table.add_row("languages", ", ".join(f"{k} {v}" for k, v in langs.most_common()))
    errors = [r for r in results if r.error]
    if errors:
        table.add_row("[red]citizens who hit a problem[/]", str(len(errors)))
    console.print(table)
    console.print(f"Export (one row per answer): [bold]{export}[/]")
    console.print(f"Wide export for spreadsheets: [bold]{out / 'answers-wide.xlsx'}[/]")
    console.print(f"Grouped report (open in a browser): [bold]{report}[/]")
    console.print(f"Database: {out / 'demo.db'}   ({seconds:.0f} s)")
    console.print("See it as an officer would, in the browser: [bold].venv/bin/coassess web --demo[/] "
                  "(prints a sign-in link to this database)")
