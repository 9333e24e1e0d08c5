"""Configuration from the environment (prefix COASSESS_) and an optional .env file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sqlite3
from contextlib import closing
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing import Annotated

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./coassess.db"
TELEGRAM_API_URL = "https://api.telegram.org"


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong; the message says which variable to set and how."""


class Settings(BaseSettings):
    """Every setting the bot, the CLI and the analysis read."""

    model_config = SettingsConfigDict(
        env_prefix="COASSESS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = DEFAULT_DATABASE_URL
    bot_token: SecretStr | None = None
    telegram_api_url: str = TELEGRAM_API_URL
    pseudonym_key: SecretStr | None = None
    contact_key: SecretStr | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(default_factory=frozenset)
    # the console (`coassess web`): analysts read results, reports, exports and the audit log
    analyst_ids: Annotated[frozenset[int], NoDecode] = Field(default_factory=frozenset)
    web_public_url: str = "http://127.0.0.1:8000"
    web_secret: SecretStr | None = None
    redis_url: str | None = None
    webhook_secret: SecretStr | None = None
    journal_path: str | None = None
    broadcast_rate: float = 25.0
    broadcast_per_chat_interval: float = 1.0
    bot_username: str | None = None
    # how many chats the bot serves side by side (updates of one chat always go in order)
    concurrency: int = 64
    # keep the audio of voice notes (encrypted with CONTACT_KEY); off: only file id and length
    store_voice_audio: bool = False
    # how often the bot opens/closes campaigns on schedule and sends due reminders (0: never)
    scheduler_interval: float = 60.0
    # seconds a Bot API call may take before it is given up and retried
    telegram_timeout: float = 30.0
    log_level: str = "INFO"
    # where the local SQLite key file lives (default: the user's config folder, apart from the data)
    keys_file: str | None = None

    @field_validator("admin_ids", "analyst_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        if value is None or value == "":
            return frozenset()
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError as exc:
                raise ValueError(
                    "COASSESS_ADMIN_IDS and COASSESS_ANALYST_IDS must be Telegram user ids separated by commas, "
                    f"for example 12345,67890 (got {value!r})"
                ) from exc
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL, or None for in-memory or other databases."""
        if not self.is_sqlite:
            return None
        _, _, rest = self.database_url.partition(":///")
        if not rest or rest.startswith(":memory:"):
            return None
        return Path(rest.split("?", 1)[0])

    def keys_path(self) -> Path:
        """The SQLite key file: COASSESS_KEYS_FILE, else one beside the database if an older version
        made it there (still read, with a warning), else one in the user's config folder, named
        after the database (a copy of the data folder must not carry the keys with it)."""
        if self.keys_file:
            return Path(self.keys_file)
        legacy = self.legacy_keys_path()
        return legacy if legacy.exists() else self.default_keys_path()

    def legacy_keys_path(self) -> Path:
        db = self.sqlite_path()
        return (db.parent if db else Path(".")) / ((db.name if db else "coassess") + ".keys")

    def default_keys_path(self) -> Path:
        from platformdirs import user_config_dir

        db = self.sqlite_path()
        where = str((db or Path("coassess")).resolve())
        tag = hashlib.sha256(where.encode()).hexdigest()[:12]
        return Path(user_config_dir("coassess")) / "keys" / f"{(db.name if db else 'coassess')}-{tag}.keys"

    def journal_file(self) -> Path:
        if self.journal_path:
            return Path(self.journal_path)
        db = self.sqlite_path()
        return (db.parent if db else Path(".")) / "coassess-journal.db"

    def require_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value():
            raise ConfigurationError(
                "No bot token. Set COASSESS_BOT_TOKEN to the token @BotFather gave you "
                "(or try `coassess demo`, which needs no token)."
            )
        token = self.bot_token.get_secret_value().strip()
        left, sep, right = token.partition(":")
        if not (sep and left.isdigit() and right and all(c.isalnum() or c in "_-" for c in right)):
            raise ConfigurationError(
                "COASSESS_BOT_TOKEN does not look like a token from @BotFather: it is digits, a colon, "
                "then letters and digits, for example 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw. "
                "Copy it again from your chat with @BotFather."
            )
        return token

    def secret_keys(self) -> tuple[bytes, bytes]:
        """The pseudonym key and the contact key, generating them once for local SQLite.

        With PostgreSQL the keys must be given: generating them on one worker would leave
        every other worker unable to recognise a participant again.
        """
        pseudonym = self.pseudonym_key.get_secret_value() if self.pseudonym_key else ""
        contact = self.contact_key.get_secret_value() if self.contact_key else ""
        if pseudonym and contact:
            return pseudonym.encode(), contact.encode()
        if not self.is_sqlite:
            missing = [n for n, v in (("COASSESS_PSEUDONYM_KEY", pseudonym),
                                      ("COASSESS_CONTACT_KEY", contact)) if not v]
            raise ConfigurationError(
                f"{' and '.join(missing)} must be set when the database is not a local SQLite "
                "file. Generate each with: python -c \"import secrets; print(secrets.token_urlsafe(32))\" "
                "and keep them apart from database backups."
            )
        path = self.keys_path()
        if not self.keys_file and path == self.legacy_keys_path():
            _warn_beside(path, self.default_keys_path())
        stored = _read_or_create_keys(path, self.sqlite_path())
        return (pseudonym or stored["pseudonym_key"]).encode(), (contact or stored["contact_key"]).encode()

    def web_session_secret(self) -> bytes:
        """The key that signs the console's session cookies: COASSESS_WEB_SECRET, or for local
        SQLite one generated into the key file with the other keys (kept across restarts, so
        officers stay signed in)."""
        given = self.web_secret.get_secret_value() if self.web_secret else ""
        if given:
            return given.encode()
        if not self.is_sqlite:
            raise ConfigurationError(
                "COASSESS_WEB_SECRET must be set when the database is not a local SQLite file (every "
                "console process must sign sessions with the same key). Generate one with: "
                "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        path = self.keys_path()
        stored = _read_or_create_keys(path, self.sqlite_path())
        if "web_secret" not in stored:
            stored["web_secret"] = secrets.token_urlsafe(32)
            tmp = path.with_name(path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(stored, fh)
            tmp.replace(path)
        return str(stored["web_secret"]).encode()


_WARNED: set[Path] = set()


def _warn_beside(path: Path, better: Path) -> None:
    if path in _WARNED:
        return
    _WARNED.add(path)
    log.warning(
        "The key file %s lies beside the database: a copy of that folder (a backup, a shared drive) "
        "turns the contact table back into Telegram ids. Move it apart with: mkdir -p %s && mv %s %s",
        path, better.parent, path, better)


def _participants_in(db: Path | None) -> int:
    """How many real participants a SQLite database file holds (0 if it is new or not set up yet).

    Real: met through Telegram, so with an encrypted contact row. People made up by `coassess
    synth` have none, and keys made now lose nothing of theirs.
    """
    if db is None or not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM contact").fetchone()[0])
    except sqlite3.Error:
        return 0


def _read_or_create_keys(path: Path, db: Path | None = None) -> dict[str, str]:
    if path.exists():
        return json.loads(path.read_text())
    held = _participants_in(db)
    if held:
        # new keys would make every participant a stranger and their contact details unreadable
        raise ConfigurationError(
            f"The database {db} holds {held} participant{'s' if held != 1 else ''}, but its key file "
            f"{path} is missing. Copy the key file back from where you keep it (it is made once, "
            "in your config folder, or set COASSESS_KEYS_FILE to where it is), or set "
            "COASSESS_PSEUDONYM_KEY and COASSESS_CONTACT_KEY to the "
            "keys it held. To start afresh with new keys instead, move the database file away first."
        )
    keys = {"pseudonym_key": secrets.token_urlsafe(32), "contact_key": secrets.token_urlsafe(32)}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh)
    log.warning(
        "Generated new pseudonym and contact keys in %s (mode 0600), apart from the database. Back "
        "this file up separately from the database: without it participants cannot be recognised "
        "or contacted again; with it beside a copy of the data, they can be re-identified.", path,
    )
    return keys


@lru_cache
def get_settings() -> Settings:
    return Settings()
