"""What a failure means, in one place: wait and retry the update, set the update aside, or tell the person."""

from __future__ import annotations

import enum
from collections.abc import Iterator

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc


class Failure(enum.Enum):
    """How the pump treats an update whose processing raised."""

    #: The system's own fault (database or Redis away or slow, Telegram 5xx or unreachable, a
    #: time-out): the update stays in the journal and is retried; nobody is told "sorry".
    TEMPORARY = "temporary"
    #: The update itself cannot be handled (aiogram cannot read it, or handling it fails the same
    #: way every time): retried a few times, then set aside for an administrator (`coassess updates`).
    UPDATE = "update"


class ChatBusy(TimeoutError):
    """Another worker holds the chat's lock for longer than we wait: try again later."""


class DatabaseWaiting(ConnectionError):
    """The database was not reachable at start (or its schema is not upgraded yet)."""


#: Which part of the system a temporary failure points at (for the outage log lines).
DATABASE, REDIS, TELEGRAM, OTHER = "the database", "Redis", "Telegram", "a network call"


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis import exceptions as r
    except ImportError:  # Redis is optional
        return ()
    return (r.ConnectionError, r.TimeoutError, r.BusyLoadingError, r.LockError)


REDIS_TEMPORARY = _redis_errors()
# sa_exc.TimeoutError: the pool had no connection to give within pool_timeout (a hung database)
DATABASE_TEMPORARY = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                      sa_exc.DisconnectionError, DatabaseWaiting)


# OSErrors about local files repeat on every try: the update's (or the code's) fault, not an outage
LOCAL_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what it was raised from or while handling (a framework's KeyError raised
    in a `finally` hides the connection error that caused it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _temporary_part(exc: BaseException) -> str | None:
    """The part of the system that failed, when `exc` itself is a temporary failure."""
    if isinstance(exc, DATABASE_TEMPORARY):
        return DATABASE
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DATABASE
    if REDIS_TEMPORARY and isinstance(exc, REDIS_TEMPORARY):
        return REDIS
    if isinstance(exc, ClientDecodeError):
        # a 5xx answered with a proxy's HTML page, not Telegram's JSON; a readable JSON of the
        # wrong shape would repeat for ever, so only an unreadable body counts
        return TELEGRAM if not isinstance(exc.original, ValidationError) else None
    if isinstance(exc, TelegramEntityTooLarge):
        return None  # retrying cannot make a file smaller
    if isinstance(exc, TelegramServerError | TelegramNetworkError | TelegramRetryAfter):
        return TELEGRAM
    if isinstance(exc, ChatBusy):
        return REDIS
    if isinstance(exc, ConnectionError | TimeoutError):
        return OTHER
    if isinstance(exc, OSError) and not isinstance(exc, LOCAL_FILE_ERRORS):
        return OTHER  # e.g. asyncpg's "Multiple exceptions" when no address of the host answers
    return None


def cause(exc: BaseException) -> tuple[Failure, str, BaseException]:
    """(kind, the failing part, the real cause) of a failure anywhere in `exc`'s chain."""
    for link in chain(exc):
        part = _temporary_part(link)
        if part is not None:
            return Failure.TEMPORARY, part, link
    return Failure.UPDATE, "the update", exc


def classify(exc: BaseException) -> Failure:
    return cause(exc)[0]


def is_temporary(exc: BaseException) -> bool:
    return classify(exc) is Failure.TEMPORARY


def describe(exc: BaseException) -> str:
    """A short, id-free account of a failure for logs and `coassess updates list`.

    Never the exception's message for a parse error (pydantic repeats the person's input there):
    only the fields and the kind of error.
    """
    if isinstance(exc, ValidationError):
        fields = sorted({".".join(str(p) for p in e["loc"][:4]) + f" ({e['type']})" for e in exc.errors()})
        shown = "; ".join(fields[:3]) + (f"; and {len(fields) - 3} more" if len(fields) > 3 else "")
        return f"the update could not be read: {shown}"
    if isinstance(exc, DatabaseWaiting) and exc.__cause__ is not None:
        return describe(exc.__cause__)
    name = exc.__class__.__name__
    orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper: the driver's error is the telling one
    if orig is not None:
        name = f"{name} ({orig.__class__.__name__})"
    if isinstance(exc, ClientDecodeError):
        return f"{name}: Telegram's answer was not JSON (a proxy's error page)"
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return f"{name}: {message[:120]}"
    return name
