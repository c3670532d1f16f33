"""Bulk inserts through the database driver, for write paths too hot for Core.

A Core executemany builds a parameter dict per row and runs each column's
bind processor on it; for tracker positions that was a sixth of the
gateway's time. Here rows are tuples handed to the driver's own executemany
on the session's connection, so they commit or roll back with the session.
Values must come out exactly as SQLAlchemy would store them (tests compare
with its bind processors); column types that would need more than the
datetime conversion below, and other dialects, take the Core path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Float, Integer, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.types import UTCDateTime

# Stored as is by sqlite3 and psycopg, as SQLAlchemy stores them.
_PLAIN = (String, Integer, Float, Boolean)


async def insert_rows(session: AsyncSession, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """INSERT rows (tuples in `columns` order) in the session's transaction."""
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    types = [table.c[c].type for c in columns]
    plain = all(isinstance(t, (*_PLAIN, UTCDateTime)) for t in types)
    stamps = [i for i, t in enumerate(types) if isinstance(t, UTCDateTime)]
    quote = dialect.identifier_preparer
    names = ", ".join(quote.quote(c) for c in columns)
    if plain and dialect.name == "sqlite" and dialect.driver == "aiosqlite":
        raw = await conn.get_raw_connection()
        sql = f"INSERT INTO {quote.format_table(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"
        cursor = await raw.driver_connection.executemany(sql, _converted(rows, stamps, sqlite_datetime))  # type: ignore[union-attr]
        await cursor.close()
    elif plain and dialect.name == "postgresql" and dialect.driver == "psycopg":
        raw = await conn.get_raw_connection()
        sql = f"INSERT INTO {quote.format_table(table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        async with raw.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            await cur.executemany(sql, _converted(rows, stamps, _aware))
    else:
        await conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])


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
