"""Bulk inserts through the database driver, for write paths too hot for Core.

A Core executemany builds a parameter dict per row and runs each column's
bind processor on it, which for tracker positions costs more than the write
itself (docs/trackers.md). Here rows are tuples handed to the driver's own executemany
on the session's connection, so they commit or roll back with the session.
Values must come out exactly as SQLAlchemy would store them (tests compare
with its bind processors); column types that would need more than the
datetime conversion below, and other dialects, take the Core path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Float, Integer, String, Table, insert
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.engine import is_locked, loop_writer_pragmas
from gateway.db.types import UTCDateTime

# Stored as is by sqlite3 and psycopg, as SQLAlchemy stores them.
_PLAIN = (String, Integer, Float, Boolean)


async def insert_rows(session: AsyncSession, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """INSERT rows (tuples in `columns` order) in the session's transaction."""
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    stamps = _stamps(table, columns)
    if stamps is not None and dialect.name == "sqlite" and dialect.driver == "aiosqlite":
        raw = await conn.get_raw_connection()
        sql = _insert_sql(dialect.identifier_preparer, table, columns, "?")
        cursor = await raw.driver_connection.executemany(sql, _converted(rows, stamps, sqlite_datetime))  # type: ignore[union-attr]
        await cursor.close()
    elif stamps is not None and dialect.name == "postgresql" and dialect.driver == "psycopg":
        raw = await conn.get_raw_connection()
        sql = _insert_sql(dialect.identifier_preparer, table, columns, "%s")
        async with raw.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            await cur.executemany(sql, _converted(rows, stamps, _aware))
    else:
        await conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])


class InlineSqliteWriter:
    """Rows of one hot table written by a sqlite3 connection of their own, on the calling
    thread (the event loop), in one short transaction; never waits for a lock.

    Through aiosqlite every statement is a hand-off to the connection's thread, and each
    step of an executemany gives up the GIL and waits to get it back from a busy event
    loop: a batch of tracker positions waited many times longer than SQLite worked (WAL,
    synchronous=NORMAL: a commit does not wait for the disk; docs/trackers.md). Here the loop
    itself writes, between two awaits. It must never block on another connection, whose
    transaction may itself be waiting for this loop: with busy_timeout 0 a held write
    lock fails at once, `insert` returns False and the caller takes the async path.
    """

    def __init__(self, path: str, table: Table, columns: Sequence[str], after_commit: Callable[[], None] | None = None) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)  # transactions are ours
        # after_commit: the caller checkpoints off the loop (engine.WalCheckpointer)
        loop_writer_pragmas(self.conn, checkpointed=after_commit is not None)
        self.after_commit = after_commit
        stamps = _stamps(table, columns)
        if stamps is None:
            raise ValueError(f"{table.name}: only plain columns can be written inline")
        self.stamps = stamps
        self.sql = _insert_sql(sqlite_dialect().identifier_preparer, table, columns, "?")
        self.busy = 0  # batches handed back because another connection held the lock

    def insert(self, rows: list[tuple[Any, ...]]) -> bool:
        """Insert and commit; False (nothing written) when the database is locked."""
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")  # the write lock now, or "database is locked" now
            c.executemany(self.sql, _converted(rows, self.stamps, sqlite_datetime))
            c.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if c.in_transaction:
                c.execute("ROLLBACK")
            if not is_locked(e):
                raise
            self.busy += 1
            return False
        if self.after_commit is not None:
            self.after_commit()
        return True

    def close(self) -> None:
        self.conn.close()


def _stamps(table: Table, columns: Sequence[str]) -> list[int] | None:
    """Where the UTCDateTime columns are; None when a column is not plain enough to hand
    to the driver as it is (the Core path then does its bind processing)."""
    types = [table.c[c].type for c in columns]
    if not all(isinstance(t, (*_PLAIN, UTCDateTime)) for t in types):
        return None
    return [i for i, t in enumerate(types) if isinstance(t, UTCDateTime)]


def _insert_sql(quote: Any, table: Table, columns: Sequence[str], mark: str) -> str:
    names = ", ".join(quote.quote(c) for c in columns)
    return f"INSERT INTO {quote.format_table(table)} ({names}) VALUES ({', '.join([mark] * len(columns))})"


def _converted(rows: list[tuple[Any, ...]], stamps: list[int], convert: Any) -> list[tuple[Any, ...]]:
    if not stamps:
        return rows
    cols = list(zip(*rows, strict=True))
    for i in stamps:
        seen: dict[int, Any] = {}  # a batch shares its received_at: converted once
        out = []
        for v in cols[i]:
            if v is not None:
                c = seen.get(id(v))
                if c is None:
                    c = seen[id(v)] = convert(v)
                v = c
            out.append(v)
        cols[i] = tuple(out)
    return list(zip(*cols, strict=True))


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("naive datetime given to the database; use aware UTC")
    return v


def sqlite_datetime(v: datetime) -> str:
    """What UTCDateTime + SQLite's DATETIME store: naive UTC, always with microseconds."""
    if v.tzinfo is not UTC:
        if v.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        v = v.astimezone(UTC)
    return v.isoformat(" ", "microseconds")[:26]  # without the "+00:00"
