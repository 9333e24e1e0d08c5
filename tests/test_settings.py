"""Settings: keys generated once for local SQLite (0600), required for PostgreSQL, admin ids parsed."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.settings import ConfigurationError, Settings


def test_sqlite_keys_are_generated_once_with_mode_0600(tmp_path: Path, caplog, config_folder) -> None:  # type: ignore[no-untyped-def]
    s = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/data/c.db")
    with caplog.at_level(logging.WARNING):
        first = s.secret_keys()
    # apart from the data (issue 14, point 6): a copy of the data folder carries no keys
    path = s.keys_path()
    assert not list((tmp_path / "data").glob("*.keys"))
    assert path.is_relative_to(config_folder) and path.name.startswith("c.db-")
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "Generated new pseudonym and contact keys" in caplog.text and str(path) in caplog.text
    assert s.secret_keys() == first  # reused, not regenerated
    assert len(first[0]) >= 32 and first[0] != first[1]


def test_a_lost_key_file_is_not_silently_replaced(tmp_path: Path) -> None:
    """New keys for a database that has participants would make them all strangers."""
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    keys = Settings(_env_file=None, database_url=url).secret_keys()
    with sqlite3.connect(tmp_path / "c.db") as conn:  # a participant recognised by those keys
        conn.execute("CREATE TABLE participant (id INTEGER PRIMARY KEY, pseudonym TEXT)")
        conn.execute("CREATE TABLE contact (participant_id INTEGER PRIMARY KEY, chat_ciphertext BLOB)")
        conn.execute("INSERT INTO participant (pseudonym) VALUES ('x')")
        conn.execute("INSERT INTO contact VALUES (1, x'00')")
    made = Settings(_env_file=None, database_url=url).keys_path()
    made.rename(tmp_path / "elsewhere.keys")
    with pytest.raises(ConfigurationError, match="holds 1 participant, but its key file") as err:
        Settings(_env_file=None, database_url=url).secret_keys()
    assert "COASSESS_PSEUDONYM_KEY" in str(err.value) and "move the database file away" in str(err.value)
    assert not made.exists()  # nothing generated
    (tmp_path / "elsewhere.keys").rename(made)
    assert Settings(_env_file=None, database_url=url).secret_keys() == keys


def test_a_key_file_beside_the_database_is_still_read_with_a_warning(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    beside = tmp_path / "old.db.keys"
    beside.write_text('{"pseudonym_key": "%s", "contact_key": "%s"}' % ("p" * 43, "c" * 43))
    s = Settings(_env_file=None, database_url=url)
    with caplog.at_level(logging.WARNING):
        assert s.secret_keys() == (b"p" * 43, b"c" * 43)
    assert "lies beside the database" in caplog.text
    assert f"mv {beside} {s.default_keys_path()}" in caplog.text


def test_the_key_file_can_be_named(tmp_path: Path) -> None:
    s = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
                 keys_file=str(tmp_path / "vault" / "c.keys"))
    s.secret_keys()
    assert (tmp_path / "vault" / "c.keys").exists()


def test_postgres_without_keys_says_which_variable(tmp_path: Path) -> None:
    s = Settings(_env_file=None, database_url="postgresql+asyncpg://u@h/db",
                 pseudonym_key=SecretStr("abc"))
    with pytest.raises(ConfigurationError, match="COASSESS_CONTACT_KEY") as err:
        s.secret_keys()
    assert "COASSESS_PSEUDONYM_KEY" not in str(err.value)


def test_given_keys_win(tmp_path: Path) -> None:
    s = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
                 pseudonym_key=SecretStr("p" * 40), contact_key=SecretStr("c" * 40))
    assert s.secret_keys() == (b"p" * 40, b"c" * 40)
    assert not s.keys_path().exists()


def test_environment_and_admin_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COASSESS_ADMIN_IDS", "123, 456;789")
    monkeypatch.setenv("COASSESS_TELEGRAM_API_URL", "http://127.0.0.1:8081")
    s = Settings(_env_file=None)
    assert s.admin_ids == frozenset({123, 456, 789})
    assert s.telegram_api_url == "http://127.0.0.1:8081"
    assert repr(s.bot_token) == "None" or "**" in repr(s.bot_token)
    monkeypatch.setenv("COASSESS_ADMIN_IDS", "alice")
    with pytest.raises(Exception, match="COASSESS_ADMIN_IDS"):
        Settings(_env_file=None)


def test_dotenv_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("COASSESS_BOT_TOKEN=42:secret\n")
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.bot_token is not None and s.bot_token.get_secret_value() == "42:secret"
    assert "42:secret" not in repr(s)
    assert os.environ.get("COASSESS_BOT_TOKEN") is None


def test_made_up_participants_do_not_block_new_keys(tmp_path: Path) -> None:
    """`coassess synth` people never met the bot (no contact row): keys made now lose nothing."""
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("CREATE TABLE participant (id INTEGER PRIMARY KEY, pseudonym TEXT)")
        conn.execute("CREATE TABLE contact (participant_id INTEGER PRIMARY KEY, chat_ciphertext BLOB)")
        conn.executemany("INSERT INTO participant (pseudonym) VALUES (?)", [("synth-1",), ("synth-2",)])
    keys = Settings(_env_file=None, database_url=url).secret_keys()
    assert Settings(_env_file=None, database_url=url).keys_path().exists() and len(keys[0]) >= 32
