"""Engines and sessions. One URL in config; async for the app, sync for Alembic."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
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
T = TypeVar("T")
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


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        return None
    return u.database


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
        self.sqlite_path = sqlite_file(url)  # None for PostgreSQL and in-memory SQLite
        self._inline: sessionmaker[Session] | None = None
        self._inline_engine: Engine | None = None
        self.checkpointer: WalCheckpointer | None = None  # made with the first inline writer
        self.inline_done = 0  # inline transactions committed
        self.inline_busy = 0  # inline transactions handed back because the database was locked

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s:
            yield s

    def wal_checkpointer(self) -> WalCheckpointer:
        """The checkpointer of the SQLite file, for connections that write on the loop."""
        if self.checkpointer is None:
            if self.sqlite_path is None:
                raise RuntimeError("WAL checkpoints are for a SQLite database file")
            self.checkpointer = WalCheckpointer(self.sqlite_path)
        return self.checkpointer

    @property
    def has_inline(self) -> bool:
        """Whether `inline_tx` can be used: a SQLite file (not PostgreSQL, not in memory)."""
        return self.sqlite_path is not None

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
            self.wal_checkpointer().soon()
        except OperationalError as e:
            if e.orig is not None and is_locked(e.orig):
                self.inline_busy += 1
                raise InlineBusy(str(e.orig)) from e
            raise

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in one short transaction, for small frequent writes that need
        no session: inline on a SQLite file when its write lock is free (see `inline_tx`),
        else through the async engine."""
        if self.has_inline:
            try:
                with self.inline_tx() as s:
                    return fn(s.connection())
            except InlineBusy:
                pass
        async with self.engine.begin() as c:
            return await c.run_sync(fn)

    async def upgrade(self) -> None:
        await asyncio.to_thread(upgrade, self.url)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._inline_engine is not None:
            self._inline_engine.dispose()
            self._inline_engine = self._inline = None
        if self.checkpointer is not None:
            await self.checkpointer.close()
            self.checkpointer = None


class WalCheckpointer:
    """WAL checkpoints on a worker thread, for connections that commit on the event loop.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold: it
    copies the WAL into the database and syncs both to disk, so now and then a short
    commit took many times longer with the whole loop waiting. Connections that write on the loop
    turn it off (`wal_autocheckpoint=0`) and call `soon()` after each commit; a checkpoint
    then runs on a thread, at most one at a time and one per `every_s`, in two steps:
    PASSIVE copies nearly all of the WAL beside the writers (never waiting for them); a
    RESTART then copies what they committed meanwhile, holding new writes off for that
    short while (the loop's writers find the lock taken and take the async path, which
    waits on its own thread), so that the next commit starts the WAL over. PASSIVE alone
    never catches up with a steady writer: the WAL grows without end and commits get
    slower with it (figures: docs/trackers.md).
    """

    def __init__(self, path: str, every_s: float = 0.5) -> None:
        self.path = path
        self.every_s = every_s
        self.done = 0
        self._conn: sqlite3.Connection | None = None
        self._running: asyncio.Future[None] | None = None
        self._last = 0.0

    def soon(self) -> None:
        now = time.monotonic()
        if (self._running is not None and not self._running.done()) or now - self._last < self.every_s:
            return
        self._last = now
        self._running = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        self._running.add_done_callback(_log_failure)

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            # RESTART waits (holding writers off) for readers of the old WAL: not for long;
            # a reader that stays just means the WAL starts over after a later checkpoint
            self._conn.execute("PRAGMA busy_timeout=200")
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        self.done += 1

    async def close(self) -> None:
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _log_failure(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("WAL checkpoint failed: %s", fut.exception())


WAL_LIMIT = 64 * 1024 * 1024  # bytes the WAL file keeps when it starts over


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
    dbapi_conn.execute("PRAGMA foreign_keys=ON")
    loop_writer_pragmas(dbapi_conn, checkpointed=True)


def loop_writer_pragmas(conn: sqlite3.Connection, *, checkpointed: bool) -> None:
    """For a sqlite3 connection that writes on the event loop: never wait for a lock there
    (see Database.inline_tx) and, when a WalCheckpointer checkpoints for it, never sync
    the disk there either."""
    conn.execute("PRAGMA synchronous=NORMAL")  # as the engine's connections
    conn.execute("PRAGMA busy_timeout=0")
    if checkpointed:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")


def is_locked(err: BaseException) -> bool:
    """SQLite's "database is locked" / "busy": another connection holds the write lock."""
    text = str(err)
    return "locked" in text or "busy" in text
