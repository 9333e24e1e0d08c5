"""What every command shares: settings, the database, friendly errors, the console."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console

from bot.db import Database
from bot.services.participants import Keys
from bot.settings import ConfigurationError, Settings, get_settings

console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, hint: str | None = None, code: int = 1) -> None:
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False)
    if hint:
        err_console.print(f"[dim]{hint}[/]", highlight=False)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # pydantic ValidationError on a bad variable
        fail(f"a COASSESS_ setting is wrong: {exc}")
        raise


def keys(s: Settings | None = None) -> Keys:
    s = s or settings()
    try:
        p, c = s.secret_keys()
    except ConfigurationError as exc:
        fail(str(exc))
        raise
    return Keys(p, c)


@asynccontextmanager
async def database(s: Settings | None = None) -> AsyncIterator[Database]:
    """The configured database, migrated (SQLite) or checked reachable (PostgreSQL)."""
    s = s or settings()
    db = Database(s.database_url)
    try:
        await ensure_schema(db)
        yield db
    finally:
        await db.dispose()


async def ensure_schema(db: Database) -> None:
    try:
        await db.upgrade()
    except OSError as exc:
        fail(f"cannot reach the database at {_safe_url(db.url)}: {exc}",
             "Is PostgreSQL running? Check COASSESS_DATABASE_URL.")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<unparseable URL>"


def run_async(fn: F) -> F:
    """Let a typer command be an async function."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return asyncio.run(fn(*args, **kwargs))
        except ConfigurationError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            err_console.print("Stopped.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
