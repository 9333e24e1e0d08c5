"""The update journal: every update is written to disk (encrypted) before Telegram is told we have it.

A local SQLite file, not the main database, so that updates keep being accepted while the
database is away. Payloads are encrypted with CONTACT_KEY (they carry Telegram ids and names)
and erased as soon as the update is processed; only the update id is kept for a while, so a
redelivered update is recognised.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.pseudonym import ContactCipher

KEEP_DONE_SECONDS = 48 * 3600


class JournalError(RuntimeError):
    """The journal cannot take an update (disk full, file unwritable): nothing was acknowledged."""


@dataclass(frozen=True)
class Entry:
    update_id: int
    lane: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class SetAside:
    """An update that could not be handled, as `coassess updates list` shows it (no payload)."""

    update_id: int
    kind: str
    received: float
    attempts: int
    reason: str


def lane_of(update: dict[str, Any]) -> str:
    """Updates of one chat are processed in order; different chats in parallel."""
    for key in ("message", "edited_message", "callback_query", "my_chat_member", "channel_post"):
        obj = update.get(key)
        if isinstance(obj, dict):
            chat = obj.get("chat") or (obj.get("message") or {}).get("chat") or {}
            user = obj.get("from") or {}
            ident = chat.get("id") or user.get("id")
            if ident is not None:
                return str(ident)  # in memory only: the lane is not written to disk
    return "other"


class Journal:
    """A small durable queue of raw updates in SQLite (synchronous writes, thread-safe)."""

    def __init__(self, path: Path | str, cipher: ContactCipher) -> None:
        self.path = Path(path)
        self.cipher = cipher
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS journal (update_id INTEGER PRIMARY KEY, lane TEXT NOT NULL,"
                " received REAL NOT NULL, payload BLOB, state TEXT NOT NULL, attempts INTEGER NOT NULL"
                " DEFAULT 0, done REAL)")
            self._db.execute("CREATE INDEX IF NOT EXISTS journal_pending ON journal(state, update_id)")
            # the messages an update sent, so that its replay after a crash edits them instead of
            # sending them again (see bot.runtime.retry.NoSecondCopy); the chat id is encrypted
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sent (update_id INTEGER NOT NULL, position INTEGER NOT NULL,"
                " chat BLOB NOT NULL, message_id INTEGER NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (update_id, position))")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(journal)")}
            if "reason" not in columns:  # a journal written before updates could be set aside
                self._db.execute("ALTER TABLE journal ADD COLUMN reason TEXT")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the update journal at {self.path}: {exc}") from exc

    def append(self, update: dict[str, Any]) -> bool:
        """Store an update durably; False when it was already there (a redelivery)."""
        blob = self.cipher.encrypt_bytes(json.dumps(update, separators=(",", ":")).encode())
        try:
            with self._lock:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO journal(update_id, lane, received, payload, state) "
                    "VALUES (?, ?, ?, ?, 'pending')",
                    (int(update["update_id"]), "", time.time(), blob))
        except sqlite3.OperationalError as exc:
            raise JournalError(
                f"the update journal at {self.path} cannot be written ({exc}). Free disk space there, "
                "or set COASSESS_JOURNAL_PATH to a disk with room. Telegram keeps the updates for 24 hours "
                "and will deliver them again.") from exc
        return cur.rowcount == 1

    def pending(self, limit: int = 500) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT update_id, lane, payload, attempts FROM journal WHERE state = 'pending' "
                "ORDER BY update_id LIMIT ?", (limit,)).fetchall()
        entries = []
        for uid, _lane, blob, attempts in rows:
            payload = json.loads(self.cipher.decrypt_bytes(blob))
            entries.append(Entry(uid, lane_of(payload), payload, attempts))
        return entries

    def mark_done(self, update_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE journal SET state = 'done', payload = NULL, done = ? WHERE update_id = ?",
                             (time.time(), update_id))
            self._db.execute("DELETE FROM sent WHERE update_id = ?", (update_id,))

    def remember_sent(self, update_id: int, position: int, chat_id: int | str, message_id: int,
                      kind: str) -> None:
        """The `position`-th message the update sent (from 0), a `kind`, went to `chat_id` as `message_id`."""
        token = self.cipher.encrypt_chat_id(int(chat_id))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO sent(update_id, position, chat, message_id, kind) "
                             "VALUES (?, ?, ?, ?, ?)", (update_id, position, token, message_id, kind))

    def sent(self, update_id: int) -> list[tuple[str, int, str]]:
        """(chat id, message id, kind) of each message an earlier try of the update sent, in order."""
        with self._lock:
            rows = self._db.execute("SELECT chat, message_id, kind FROM sent WHERE update_id = ? "
                                    "ORDER BY position", (update_id,)).fetchall()
        return [(str(self.cipher.decrypt_chat_id(chat)), message_id, kind) for chat, message_id, kind in rows]

    def mark_failed(self, update_id: int) -> int:
        """Count one more attempt that failed through the update's own fault; returns the count."""
        with self._lock:
            self._db.execute("UPDATE journal SET attempts = attempts + 1 WHERE update_id = ?", (update_id,))
            row = self._db.execute("SELECT attempts FROM journal WHERE update_id = ?", (update_id,)).fetchone()
        return row[0] if row else 0

    def set_aside(self, update_id: int, reason: str) -> None:
        """Stop retrying an update that cannot be handled; kept (encrypted) for `coassess updates`."""
        with self._lock:
            self._db.execute("UPDATE journal SET state = 'aside', reason = ? WHERE update_id = ?",
                             (reason, update_id))

    def aside(self) -> list[SetAside]:
        """The updates set aside, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT update_id, received, attempts, reason, payload FROM journal WHERE state = 'aside' "
                "ORDER BY update_id").fetchall()
        out = []
        for uid, received, attempts, reason, blob in rows:
            try:
                payload = json.loads(self.cipher.decrypt_bytes(blob))
                kind = next((k for k in payload if k != "update_id"), "unknown")
            except Exception:  # noqa: BLE001 - a journal from another CONTACT_KEY: still listed
                kind = "unreadable"
            out.append(SetAside(uid, kind, received, attempts, reason or ""))
        return out

    def replay(self, update_ids: list[int] | None = None) -> int:
        """Put set-aside updates (all when `update_ids` is None) back in line, with a fresh count."""
        return self._change_aside("UPDATE journal SET state = 'pending', attempts = 0, reason = NULL", update_ids)

    def drop(self, update_ids: list[int] | None = None) -> int:
        """Give up set-aside updates: their payload is erased, their id kept to recognise a redelivery."""
        dropped = self._change_aside("UPDATE journal SET state = 'done', payload = NULL, done = "
                                     f"{time.time()!r}", update_ids)
        with self._lock:
            self._db.execute("DELETE FROM sent WHERE update_id NOT IN (SELECT update_id FROM journal "
                             "WHERE state IN ('pending', 'aside'))")
        return dropped

    def _change_aside(self, statement: str, update_ids: list[int] | None) -> int:
        with self._lock:
            if update_ids is None:
                cur = self._db.execute(statement + " WHERE state = 'aside'")
            else:
                cur = self._db.executemany(statement + " WHERE state = 'aside' AND update_id = ?",
                                           [(u,) for u in update_ids])
        return cur.rowcount

    def pending_ids(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT update_id FROM journal WHERE state = 'pending' ORDER BY update_id")]

    def entry(self, update_id: int) -> Entry | None:
        """One pending update (a replay the administrator asked for while the bot runs)."""
        with self._lock:
            row = self._db.execute("SELECT payload, attempts FROM journal WHERE update_id = ? AND "
                                   "state = 'pending'", (update_id,)).fetchone()
        if row is None:
            return None
        payload = json.loads(self.cipher.decrypt_bytes(row[0]))
        return Entry(update_id, lane_of(payload), payload, row[1])

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM journal GROUP BY state").fetchall()
        return dict(rows)

    def last_update_id(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT max(update_id) FROM journal").fetchone()
        return row[0] if row else None

    def prune(self, keep_seconds: float = KEEP_DONE_SECONDS) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM journal WHERE state = 'done' AND done < ?",
                                   (time.time() - keep_seconds,))
        return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

