"""Shared fixtures: a fresh database on each backend (SQLite, and the real PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.campaigns.check import check_file
from bot.campaigns.schema import CampaignSpec
from bot.db import Database
from bot.services.participants import Keys

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "clinic-access.yaml"
PG_URL = os.environ.get("COASSESS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"

_pg_reason: str | None = None


async def _pg_admin():  # type: ignore[no-untyped-def]
    import asyncpg

    url = make_url(PG_URL)
    return await asyncpg.connect(host=url.host or "127.0.0.1", port=url.port or 5432,
                                 user=url.username or "postgres", password=url.password,
                                 database=url.database or "postgres", timeout=5)


async def create_pg_database() -> str:
    """A new, empty PostgreSQL database for one test; returns its URL."""
    global _pg_reason
    if _pg_reason and not IN_CI:
        pytest.skip(_pg_reason)
    try:
        conn = await _pg_admin()
    except Exception as exc:  # noqa: BLE001
        _pg_reason = (f"PostgreSQL not reachable at {PG_URL} ({exc.__class__.__name__}); "
                      "PostgreSQL tests skipped (set COASSESS_TEST_POSTGRES_URL)")
        if IN_CI:
            pytest.fail(f"CI=true but {_pg_reason}")
        pytest.skip(_pg_reason)
    name = f"coassess_t_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    conn = await _pg_admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def config_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Key files made by a test (the user's config folder by default) go to a temporary folder,
    never into the home folder of whoever runs the tests; subprocesses inherit it."""
    folder = tmp_path_factory.getbasetemp() / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database URL on each backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/coassess.db"
        db = Database(url)
        await db.upgrade()
        await db.dispose()
        yield url
        return
    url = await create_pg_database()
    db = Database(url)
    try:
        await db.upgrade()
        await db.dispose()
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def keys() -> Keys:
    return Keys(b"test-pseudonym-key-0123456789abcdef", b"test-contact-key-0123456789abcdef")


@pytest.fixture(scope="session")
def example_spec() -> CampaignSpec:
    result = check_file(EXAMPLE)
    assert result.ok, [p.render(result.name) for p in result.problems]
    assert result.spec is not None
    return result.spec


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"coassess: PostgreSQL tests use {PG_URL} (CI={'yes' if IN_CI else 'no'})"]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """One line that says on which backends the storage tests really ran."""
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("passed", []):
        for backend in ("sqlite", "postgres"):
            if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid or f"-{backend}-" in report.nodeid:
                counts[backend] = counts.get(backend, 0) + 1
    skipped = sum(1 for r in terminalreporter.stats.get("skipped", []) if "postgres" in r.nodeid)
    terminalreporter.write_line(
        f"coassess backends: {counts.get('sqlite', 0)} tests passed on SQLite, "
        f"{counts.get('postgres', 0)} on PostgreSQL ({PG_URL.split('@')[-1]})"
        + (f", {skipped} PostgreSQL tests skipped" if skipped else ""))
