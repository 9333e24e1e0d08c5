"""Bot API request parameters, read the way Telegram's Bot API server reads them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import bad_request


@dataclass
class Upload:
    """A file uploaded in a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


class Params:
    """A request's parameters, read the way the Bot API server reads them.

    Args:
        values: Query, form or JSON values (form values are strings).
        files: Uploaded files by form field name.
    """

    def __init__(self, values: dict[str, Any], files: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.files = files or {}

    def raw(self, name: str) -> Any:
        """The value as sent, or None."""
        return self.values.get(name)

    def has(self, name: str) -> bool:
        """Whether a non-empty value was sent."""
        return self.values.get(name) not in (None, "")

    def str(self, name: str) -> str | None:
        """The value as a string, or None."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    def int(self, name: str, default: int | None = None) -> int | None:
        """An integer read by its leading digits, as Telegram reads them (``12abc`` is 12)."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float)):
            return int(value)
        match = re.match(r"\s*(-?\d+)", str(value))
        return int(match.group(1)) if match else 0

    def bool(self, name: str) -> bool:
        """True for ``true``, ``yes`` or ``1`` in any case (or a JSON true)."""
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("true", "yes", "1") if value is not None else False

    def json(self, name: str, error: str) -> Any:
        """A JSON-serialised parameter (object, or the same as a JSON string)."""
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(error) from None
        return value

    def upload(self, name: str) -> Upload | None:
        """The upload for a field: the field itself or the part named by ``attach://``."""
        if name in self.files:
            return self.files[name]
        value = self.values.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            return self.files.get(value[len("attach://"):])
        return None

    def for_log(self) -> dict[str, Any]:
        """The parameters with uploads summarised (no file contents in the call log)."""
        logged: dict[str, Any] = dict(self.values)
        for name, upload in self.files.items():
            logged[name] = {"upload": upload.filename, "size": len(upload.data)}
        return logged
