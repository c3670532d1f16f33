"""Driver-level bulk inserts store exactly what SQLAlchemy's Core insert stores,
on SQLite and PostgreSQL, and commit or roll back with the session."""

from __future__ import annotations

import functools
import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.dialects.sqlite import aiosqlite

from gateway.db.bulk import InlineSqliteWriter, insert_rows, sqlite_datetime
from gateway.db.engine import Database, sqlite_file
from gateway.db.models import PositionRow
from tests.waiting import wait_for

COLUMNS = ("device_id", "person_id", "fix_time", "received_at", "lat", "lon", "alt_m", "speed_mps", "course_deg",
           "accuracy_m", "satellites", "source", "in_order")
T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TIMES = [T, T + timedelta(microseconds=1), T.replace(microsecond=999_999), datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
         datetime(2026, 3, 1, 20, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=8))), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)]


def test_sqlite_format_is_sqlalchemys() -> None:
    process = PositionRow.__table__.c.fix_time.type._cached_bind_processor(aiosqlite.dialect())
    for t in TIMES:
        assert sqlite_datetime(t) == process(t) and isinstance(process(t), str)
    with pytest.raises(ValueError):
        sqlite_datetime(datetime(2026, 1, 1))


def _rows(dev: str) -> list[tuple]:
    received = T + timedelta(seconds=1)
    return [(dev, None if i % 2 else "p1", t, received, 31.2 + i / 1e6, 121.4, None if i % 3 else 12.5, 1.0, 90.0, 5.0, None if i % 2 else 9,
             "nmea", i % 4 != 0) for i, t in enumerate(TIMES)]


def _key(r: PositionRow) -> tuple:
    return (r.person_id, r.fix_time, r.received_at, r.lat, r.lon, r.alt_m, r.speed_mps, r.course_deg, r.accuracy_m, r.satellites, r.source, r.in_order)


@pytest.fixture
async def db(any_db_url: str):  # type: ignore[no-untyped-def]
    db = Database(any_db_url)
    await db.upgrade()
    yield db
    await db.close()


@pytest.mark.postgres
async def test_round_trips_through_the_orm_as_core_does(db: Database) -> None:
    async with db.session() as s:
        await insert_rows(s, PositionRow.__table__, COLUMNS, _rows("raw"))
        await s.execute(insert(PositionRow.__table__), [dict(zip(COLUMNS, r, strict=True)) for r in _rows("core")])
        await s.commit()
    async with db.session() as s:
        got = {d: [_key(r) for r in (await s.scalars(select(PositionRow).where(PositionRow.device_id == d).order_by(PositionRow.id))).all()]
               for d in ("raw", "core")}
        assert got["raw"] == got["core"] and len(got["raw"]) == len(TIMES)
        assert all(k[1].tzinfo is not None for k in got["raw"])
        # range queries at the exact boundaries match the same rows for both paths
        for lo, hi in ((T, T), (T, T + timedelta(microseconds=1)), (TIMES[4], TIMES[4]), (TIMES[3], T)):
            for dev in ("raw", "core"):
                q = select(PositionRow.fix_time).where(PositionRow.device_id == dev, PositionRow.fix_time >= lo, PositionRow.fix_time <= hi)
                got[dev] = sorted((await s.scalars(q)).all())
            assert got["raw"] == got["core"] == sorted(t for t in TIMES if lo <= t <= hi)
            assert got["raw"]


@pytest.mark.postgres
async def test_rolls_back_with_the_session(db: Database) -> None:
    async with db.session() as s:
        await insert_rows(s, PositionRow.__table__, COLUMNS, _rows("gone"))
        await s.rollback()
    async with db.session() as s:
        assert (await s.scalars(select(PositionRow).where(PositionRow.device_id == "gone"))).all() == []
        with pytest.raises(ValueError):
            await insert_rows(s, PositionRow.__table__, COLUMNS, [("naive", None, datetime(2026, 1, 1), T, 0.0, 0.0, None, None, None, None, None, "nmea", True)])


async def test_inline_sqlite_writer_stores_what_core_stores_and_never_waits_for_a_lock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "inline.db"
    db = Database(f"sqlite:///{path}")
    await db.upgrade()
    writer = InlineSqliteWriter(str(path), PositionRow.__table__, COLUMNS)
    try:
        assert writer.insert(_rows("inline"))
        async with db.session() as s:
            await s.execute(insert(PositionRow.__table__), [dict(zip(COLUMNS, r, strict=True)) for r in _rows("core")])
            await s.commit()
        async with db.session() as s:
            got = {d: [_key(r) for r in (await s.scalars(select(PositionRow).where(PositionRow.device_id == d).order_by(PositionRow.id))).all()]
                   for d in ("inline", "core")}
        assert got["inline"] == got["core"] and len(got["inline"]) == len(TIMES)
        # Another connection holds the write lock: the writer gives the batch back at once
        # (the caller takes the async path) instead of blocking the event loop on it.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        assert writer.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0  # never waits for the lock...
        began = time.monotonic()
        assert writer.insert(_rows("blocked")) is False
        assert time.monotonic() - began < 2 and writer.busy == 1  # ...so well under any lock wait (a loaded machine is slow)
        holder.execute("ROLLBACK")
        holder.close()
        assert writer.insert(_rows("after"))
        async with db.session() as s:
            n = {d: len((await s.scalars(select(PositionRow.id).where(PositionRow.device_id == d))).all()) for d in ("blocked", "after")}
        assert n == {"blocked": 0, "after": len(TIMES)}
    finally:
        writer.close()
        await db.close()


def test_sqlite_file_only_for_file_databases() -> None:
    assert sqlite_file("sqlite:////data/gw.db") == "/data/gw.db"
    assert sqlite_file("sqlite+aiosqlite:///rel.db") == "rel.db"
    assert sqlite_file("sqlite://") is None and sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://postgres@127.0.0.1/test") is None


async def test_wal_checkpoints_off_the_loop_keep_the_wal_from_growing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Writers on the loop commit without SQLite's automatic checkpoint; the checkpointer
    copies the WAL into the database on a thread and starts it over. Without the RESTART
    step a steady writer outran it and the WAL grew without end (2 GB in a benchmark)."""
    import asyncio
    import os

    from gateway.db.engine import WalCheckpointer

    path = tmp_path / "wal.db"
    db = Database(f"sqlite:///{path}")
    await db.upgrade()
    async with db.session() as s:  # the engine's first connection puts the file in WAL mode
        await s.execute(select(1))
    ckpt = WalCheckpointer(str(path), every_s=0.05)
    writer = InlineSqliteWriter(str(path), PositionRow.__table__, COLUMNS, ckpt.soon)
    auto = sqlite3.connect(path)  # a connection of the default kind, for comparison
    try:
        assert writer.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        assert auto.execute("PRAGMA wal_autocheckpoint").fetchone()[0] > 0
        sizes, batches, base = [], 300, T
        for b in range(batches):
            rows = [(f"d{i}", "p1", base + timedelta(seconds=b, microseconds=i), base, 31.2, 121.4, None, None, None, 5.0, 8, "nmea", True)
                    for i in range(100)]
            # a RESTART holds writers off for a moment: the batch is given back, and tried again
            await wait_for(functools.partial(writer.insert, rows), interval=0.001, what=f"batch {b} written")
            await asyncio.sleep(0.002)  # the thing under test: a steady writer, paced, with the checkpointer running beside it
            sizes.append(os.path.getsize(f"{path}-wal"))
        await ckpt.close()
        assert ckpt.done >= 3
        # 30,000 rows with two indexes went through the WAL (~32,000 pages without the
        # RESTART step); it kept starting over, a slow disk's checkpoints included
        wal_pages = max(sizes) / 4096
        assert wal_pages < 10_000, f"WAL grew to {max(sizes) / 1e6:.1f} MB"
        async with db.session() as s:
            n = len((await s.scalars(select(PositionRow.id))).all())
        assert n == batches * 100  # every batch stored once, including those that found the lock taken
    finally:
        auto.close()
        writer.close()
        await db.close()
