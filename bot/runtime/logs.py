"""Logging that never carries a Telegram id: the frameworks' messages are redacted at the source."""

from __future__ import annotations

import logging
import re

# Telegram user and chat ids are 5+ digit integers (negative for groups); so are update ids,
# which are harmless to hide too.
ID_PATTERN = re.compile(r"(?<![\w.])-?\d{5,}(?![\w.])")
FRAMEWORK_PREFIXES = ("aiogram", "aiogram_dialog", "aiohttp.access")


class RedactIds(logging.Filter):
    """Replace long integers in a log message with <id>, once, before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_coassess_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: leave it to logging
            return True
        record.msg = ID_PATTERN.sub("<id>", message)
        record.args = None
        record._coassess_redacted = True  # type: ignore[attr-defined]
        return True


_FILTER = RedactIds()


def install_privacy_filter() -> None:
    """Attach the filter to every framework logger (they are created when their modules import)."""
    import aiogram_dialog  # noqa: F401 - make sure its loggers exist
    import aiogram_dialog.context.intent_middleware  # noqa: F401

    names = [n for n in list(logging.Logger.manager.loggerDict) if n.startswith(FRAMEWORK_PREFIXES)]
    for name in [*FRAMEWORK_PREFIXES, *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
