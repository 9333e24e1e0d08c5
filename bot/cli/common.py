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


def plural(n: int, one: str, many: str | None = None) -> str:
    """"1 question", "2 questions", "1 person", "1,200 people": a count with its noun agreeing."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def fail(message: str, hint: str | None = None, code: int = 1) -> None:
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False)
    if hint:
        err_console.print(f"[dim]{hint}[/]", highlight=False)
    raise typer.Exit(code)


def note_hidden(k: int) -> None:
    """What the marks of a protected count mean, under a table that shows one."""
    console.print(f"<{k}: fewer than {k} people, hidden to protect them. c: hidden so that a small "
                  "count cannot be worked out from the other figures.",
                  highlight=False, markup=False, soft_wrap=True)


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


URL_HINT = ("COASSESS_DATABASE_URL should look like sqlite+aiosqlite:///coassess.db (a file in this "
            "folder) or postgresql+asyncpg://user:password@host:5432/coassess.")


NO_DATABASE_HINT = "set COASSESS_DATABASE_URL or run from the bot's folder"


@asynccontextmanager
async def database(s: Settings | None = None, *, existing: bool = False) -> AsyncIterator[Database]:
    """The configured database, migrated (SQLite) or checked reachable (PostgreSQL).

    With `existing`, a SQLite file that is not there is an error rather than made: a command
    that reads campaigns (report, export, campaign list) run in the wrong folder would
    otherwise leave an empty coassess.db behind and report that there is nothing.
    """
    s = s or settings()
    try:
        path = s.sqlite_path()
    except Exception:  # noqa: BLE001 - a malformed address: said below
        path = None
    if path is not None and not path.parent.is_dir():
        fail(f"cannot open the database at {_safe_url(s.database_url)}: the folder {path.parent} "
             "does not exist.",
             f"Make the folder (mkdir -p {path.parent}) or change COASSESS_DATABASE_URL; coassess "
             "makes the database file, not the folder.")
    try:
        db = Database(s.database_url)
    except Exception as exc:  # noqa: BLE001 - an unknown driver, a malformed address
        fail(f"COASSESS_DATABASE_URL ({_safe_url(s.database_url)}) is not a database address "
             f"coassess can use: {_reason(exc)}", URL_HINT)
        raise
    try:
        if existing and path is not None and not path.exists():
            fail(f"no database at {path.expanduser().resolve()}; {NO_DATABASE_HINT}",
                 "COASSESS_DATABASE_URL names the database the bot uses, e.g. "
                 "sqlite+aiosqlite:////srv/coassess/coassess.db, or is set in the .env file of the "
                 "bot's folder.")
        await ensure_schema(db)
        yield db
    finally:
        await db.dispose()


async def ensure_schema(db: Database) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        await db.upgrade()
    except OSError as exc:
        fail(f"cannot reach the database at {_safe_url(db.url)}: {exc}",
             "Is PostgreSQL running? Check COASSESS_DATABASE_URL.")
    except SQLAlchemyError as exc:
        fail(f"cannot open the database at {_safe_url(db.url)}: {_reason(exc)}", _database_hint(db.url, exc))


def _reason(exc: BaseException) -> str:
    """The driver's own words, first line, without SQLAlchemy's wrapping and links."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else inner.__class__.__name__
    return text.removeprefix("(sqlite3.OperationalError) ")


def _database_hint(url: str, exc: BaseException) -> str:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return URL_HINT
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        from pathlib import Path

        folder = Path(parsed.database).expanduser().resolve().parent
        return (f"Check that the folder {folder} exists and that you may write to it (coassess makes "
                "the file, not the folder), or change COASSESS_DATABASE_URL.")
    message = str(exc).lower()
    if "database" in message and "does not exist" in message:
        return (f"Create the database first (for example: createdb {parsed.database}), or correct its "
                "name in COASSESS_DATABASE_URL.")
    if any(w in message for w in ("password", "authentication", "role")):
        return "Check the user name and password in COASSESS_DATABASE_URL."
    return URL_HINT


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


# --------------------------------------------------------------------------- plain --help

def plain_doc(doc: str | None) -> str | None:
    """Join the wrapped lines of each docstring paragraph: Rich help keeps line breaks as given,
    which would break sentences mid-way on a wide terminal. Indented lines (examples) stay as they are."""
    if not doc:
        return doc
    import inspect

    paragraphs: list[str] = []
    current: list[str] = []
    for line in inspect.cleandoc(doc).splitlines():
        if not line.strip() or line.startswith("  "):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            paragraphs.append(line)
        else:
            current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs)


_FOLDER_NAMES = {"out", "output", "folder", "directory", "dir"}


def _plain_value_word(param: Any) -> str | None:
    """What an option takes, as an officer reads it: the metavar if one is given, the choices
    (long|wide|grouped), NUMBER, FILE or FOLDER, else the option's own name (HOST); nothing for
    a flag, which takes no value."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar is not None:
        return param.metavar or None
    desc = getattr(param, "type_descriptor", None)
    name = (param.name or "value").upper()
    if desc is None:
        return name
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    if desc.is_path:
        info = desc.parameter_info
        folder = (getattr(info, "dir_okay", True) and not getattr(info, "file_okay", True)) \
            or (param.name or "") in _FOLDER_NAMES
        return "FOLDER" if folder else "FILE"
    annotation = desc.annotation
    if annotation in (int, float):
        return "NUMBER"
    if name == "URL" or name.endswith("_URL"):
        return "URL"
    return name.replace("_", "-")


def plain_help() -> None:
    """Make `--help` speak words, not Python types.

    Typer shows each parameter's type (`<bool>`, `<str>`, `<list[str]>`, `<path>`) and puts
    required arguments in braces (`{campaign_id}`). Council officers read the help, not the
    code: a flag shows nothing, an option shows its metavar or a plain word (FILE, NUMBER, the
    choices), an argument shows its metavar (CAMPAIGN) or its name in capitals. Applied once,
    when `bot.cli` is imported; if Typer changes these internals, the help simply stays Typer's.
    """
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - another Typer: keep its help
        return
    if getattr(TyperOption, "_coassess_plain", False):
        return
    if not all(hasattr(cls, attr) for cls, attr in ((TyperOption, "display_type_rich"),
                                                     (TyperArgument, "display_type_rich"),
                                                     (TyperArgument, "_usage_display_name"))):
        return  # pragma: no cover

    def option_type(self: Any, ctx: Any) -> str | None:
        return _plain_value_word(self)

    def argument_type(self: Any, ctx: Any) -> str | None:
        return None  # the name column already says what it is

    def argument_name(self: Any) -> str:
        return self.metavar if self.metavar is not None else (self.name or "value").upper()

    def argument_usage(self: Any) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign]
    TyperArgument.display_name_raw = property(argument_name)  # type: ignore[assignment,method-assign]
    TyperArgument._usage_display_name = argument_usage  # type: ignore[method-assign]
    TyperOption._coassess_plain = True  # type: ignore[attr-defined]
