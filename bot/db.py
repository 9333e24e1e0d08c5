"""Engines, sessions and migrations for SQLite (the default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout so workers can share it.

    SQL parameters (answers, pseudonyms) are never logged, echo or not, and never put into
    error messages (`hide_parameters`); result rows are dropped from the log (`bot.runtime.logs`).
    """
    from bot.runtime.logs import install_sql_filter

    install_sql_filter()
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # no call may wait forever on a connection that died half-way (network cut, failover)
    kwargs.setdefault("connect_args", {"timeout": 10, "command_timeout": 60})
    # No ping before each checkout (a round trip per update): a connection found dead fails its
    # update, SQLAlchemy discards the pool's connections, and the journal's pump retries the update.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Bring the database schema up to date (blocking; safe to call on every start)."""
    from alembic import command

    command.upgrade(_alembic_config(url), revision)


async def upgrade(engine_or_url: AsyncEngine | str, revision: str = "head") -> None:
    """Run Alembic migrations on an async engine (or URL) from async code."""
    from alembic import command

    if isinstance(engine_or_url, str):
        engine = make_engine(engine_or_url)
        try:
            await upgrade(engine, revision)
        finally:
            await engine.dispose()
        return

    def _run(sync_conn: Any) -> None:
        cfg = _alembic_config(str(engine_or_url.url))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with engine_or_url.begin() as conn:
        await conn.run_sync(_run)


class Database:
    """One engine and its session factory, shared by the bot, the CLI and the analysis."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = make_sessionmaker(self.engine)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def upgrade(self) -> None:
        await upgrade(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()


def run(coro: Any) -> Any:
    """Run a coroutine from synchronous code (the CLI, a notebook without a running loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Inside a running loop (Jupyter): run in a worker thread with its own loop.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
