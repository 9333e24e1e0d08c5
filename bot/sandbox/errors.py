"""Errors the sandbox answers with, worded as Telegram's Bot API words them."""

from __future__ import annotations

from typing import Any


class BotApiError(Exception):
    """A Bot API failure: becomes ``{"ok": false, "error_code": ..., "description": ...}``.

    Args:
        error_code: HTTP status and ``error_code`` (400, 401, 403, 404, 409, 429, 500).
        description: Telegram's text, including its prefix such as ``"Bad Request: "``.
        parameters: Optional ``ResponseParameters`` (``retry_after``, ``migrate_to_chat_id``).
    """

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> dict[str, Any]:
        """Return the response body Telegram would send."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str) -> BotApiError:
    """400 with Telegram's ``Bad Request: `` prefix."""
    return BotApiError(400, f"Bad Request: {text}")


def forbidden(text: str) -> BotApiError:
    """403 with Telegram's ``Forbidden: `` prefix."""
    return BotApiError(403, f"Forbidden: {text}")


def conflict(text: str) -> BotApiError:
    """409 with Telegram's ``Conflict: `` prefix."""
    return BotApiError(409, f"Conflict: {text}")


def too_many_requests(retry_after: int) -> BotApiError:
    """429 carrying ``parameters.retry_after`` as Telegram sends it."""
    return BotApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )


NOT_FOUND = BotApiError(404, "Not Found")
UNAUTHORIZED = BotApiError(401, "Unauthorized")
INTERNAL = BotApiError(500, "Internal Server Error")
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


class ControlError(Exception):
    """A refused control-API request (a test asked for something impossible).

    Args:
        status: HTTP status of the control response (400, 404, 409).
        message: What was wrong and how to fix it.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
