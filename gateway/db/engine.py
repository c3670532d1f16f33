"""Engines and sessions. One URL in config; async for the app, sync for Alembic."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def async_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    u = make_url(url)
    if u.drivername == "sqlite+aiosqlite":
        u = u.set(drivername="sqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+asyncpg"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["sqlalchemy_url"] = sync_url(url)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (blocking); creates the SQLite folder if needed."""
    u = make_url(sync_url(url))
    if u.drivername == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


class Database:
    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.dialect = make_url(sync_url(url)).get_backend_name()
        self.engine: AsyncEngine = create_async_engine(async_url(url), echo=echo, pool_pre_ping=self.dialect != "sqlite")
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._inline: sessionmaker[Session] | None = None
        self._inline_engine: Engine | None = None
        self.inline_done = 0  # inline transactions committed
        self.inline_busy = 0  # inline transactions handed back because the database was locked

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s:
            yield s

    @property
    def has_inline(self) -> bool:
        """Whether `inline_tx` can be used: a SQLite file (not PostgreSQL, not in memory)."""
        from gateway.db.bulk import sqlite_file

        return sqlite_file(self.url) is not None

    @contextmanager
    def inline_tx(self) -> Iterator[Session]:
        """A synchronous ORM transaction on the calling thread (the event loop), for short
        hot write paths on SQLite (alert changes of a tracker batch).

        Through aiosqlite every statement is a hand-off to the connection's thread and
        back, and under a busy loop each costs milliseconds for microseconds of SQLite.
        Here the loop runs the transaction itself, between two awaits. It must never wait
        for another connection (whose transaction may be waiting for this very loop): the
        write lock is taken first (BEGIN IMMEDIATE) with busy_timeout 0, and a held lock
        raises `InlineBusy` before anything is done; the caller then takes the async path.
        Commits on exit.
        """
        if self._inline is None:
            if not self.has_inline:
                raise RuntimeError("inline transactions need a SQLite database file")
            engine = create_engine(sync_url(self.url), poolclass=StaticPool, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_inline_pragmas)
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
            self._inline_engine = engine
            self._inline = sessionmaker(engine, expire_on_commit=False)
        try:
            with self._inline() as s, s.begin():
                yield s
            self.inline_done += 1
        except OperationalError as e:
            if "locked" in str(e.orig) or "busy" in str(e.orig):
                self.inline_busy += 1
                raise InlineBusy(str(e.orig)) from e
            raise

    async def upgrade(self) -> None:
        import asyncio

        await asyncio.to_thread(upgrade, self.url)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._inline_engine is not None:
            self._inline_engine.dispose()
            self._inline_engine = self._inline = None


class InlineBusy(Exception):
    """The database was locked by another connection: nothing was written inline."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    # WAL lets the console read while drivers write; busy_timeout rides out
    # short write locks instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_inline_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None  # BEGIN is ours (IMMEDIATE), not the driver's
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=0")  # never wait on the event loop: see Database.inline_tx
    cur.close()
