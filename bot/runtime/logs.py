"""Logging that never carries a Telegram id, a name or an answer: the frameworks' messages are redacted at the source."""

from __future__ import annotations

import logging
import re

# Telegram user and chat ids are 5+ digit integers (negative for groups); so are update ids,
# which are harmless to hide too.
ID_PATTERN = re.compile(r"(?<![\w.])-?\d{5,}(?![\w.])")
# aiogram and aiogram-dialog log Telegram objects at DEBUG (User(first_name='...'), Message(text=...)):
# every field that can hold a name, a phone number or what someone wrote is blanked, in the repr and
# in the JSON forms.
PERSONAL_FIELDS = ("first_name", "last_name", "username", "full_name", "phone_number", "text", "caption",
                   "title", "bio", "query", "data", "mention", "url", "value", "options", "order", "coins")
_FIELDS = "|".join(PERSONAL_FIELDS)
FIELD_PATTERN = re.compile(
    rf"""(?P<key>\b(?:{_FIELDS})\b['"]?\s*[=:]\s*)(?P<val>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
FRAMEWORK_PREFIXES = ("aiogram", "aiogram_dialog", "aiohttp.access", "sqlalchemy.engine", "sqlalchemy.pool",
                      "aiosqlite", "asyncpg")


def redact(message: str) -> str:
    """A log message without long integers (ids) and without the values of personal fields."""
    return ID_PATTERN.sub("<id>", FIELD_PATTERN.sub(lambda m: m.group("key") + "<hidden>", message))


class RedactIds(logging.Filter):
    """Replace long integers in a log message with <id>, once, before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_coassess_redacted", False):
            return True
        if record.name.startswith("sqlalchemy") and str(record.msg).startswith(("Row ", "Col ")):
            return False  # SQL echo at DEBUG prints result rows: answers, pseudonyms, keys
        if record.name.startswith("aiosqlite") and record.levelno < logging.INFO:
            return False  # every statement with its parameters
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: leave it to logging
            return True
        record.msg = redact(message)
        record.args = None
        record._coassess_redacted = True  # type: ignore[attr-defined]
        return True


_FILTER = RedactIds()


def install_privacy_filter() -> None:
    """Attach the filter to every framework logger (they are created when their modules import)."""
    import aiogram_dialog  # noqa: F401 - make sure its loggers exist
    import aiogram_dialog.context.intent_middleware  # noqa: F401

    names = [n for n in list(logging.Logger.manager.loggerDict) if n.startswith(FRAMEWORK_PREFIXES)]
    for name in [*FRAMEWORK_PREFIXES, "sqlalchemy.engine.Engine", *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def install_sql_filter() -> None:
    """The same filter on SQLAlchemy's engine loggers (its echo), without importing the bot's frameworks."""
    for name in ("sqlalchemy.engine", "sqlalchemy.engine.Engine", "sqlalchemy.pool", "aiosqlite", "asyncpg"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
