"""Storage on SQLite and PostgreSQL: migrations match the models, upgrade and
downgrade cleanly, config is synced without deleting history."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select

from gateway.db.engine import alembic_config, sync_url, upgrade
from gateway.db.models import Base, Device
from tests.conftest import running
from tests.waiting import wait_for


def test_migrations_build_exactly_the_models(any_db_url) -> None:
    upgrade(any_db_url)
    engine = create_engine(sync_url(any_db_url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        tables = set(inspect(engine).get_table_names())
        for t in ("persons", "devices", "zones", "zone_persons", "positions", "alerts", "alert_notes", "recordings", "proceedings",
                  "evidence", "custody", "checkins", "face_encodings", "face_matches", "users", "audit", "audit_head", "kiosk_events"):
            assert t in tables
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(any_db_url) -> None:
    upgrade(any_db_url)
    command.downgrade(alembic_config(any_db_url), "base")
    engine = create_engine(sync_url(any_db_url))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(any_db_url)


async def test_config_sync_keeps_history(any_db_url, make_config) -> None:
    base = {"storage": {"database_url": any_db_url}, "persons": [{"id": "p1", "name": "Zhang"}]}
    devices = [{"id": "t1", "kind": "tracker", "person_id": "p1"}, {"id": "k1", "kind": "kiosk", "location": "hall"}]
    async with running(make_config(**base, devices=devices)) as gw:
        h = await gw.login()
        r = await gw.client.post("/api/devices", headers=h, json={"id": "bwc1", "kind": "bodycam"})
        assert r.status_code == 201 and r.json()["key"].startswith("dk_")
        assert "key" not in (await gw.client.get("/api/devices/bwc1", headers=h)).json()
    # Next start: k1 removed from the file, t1 renamed.
    devices2 = [{"id": "t1", "kind": "tracker", "person_id": "p1", "name": "wrist"}]
    async with running(make_config(**base, devices=devices2)) as gw:
        async with gw.services.db.session() as s:
            rows = {d.id: d for d in (await s.scalars(select(Device))).all()}
        assert rows["t1"].name == "wrist" and rows["t1"].enabled
        assert rows["k1"].enabled is False  # disabled, not deleted
        assert rows["bwc1"].enabled and rows["bwc1"].source == "api"  # API devices untouched
        assert rows["k1"].settings["location"] == "hall"  # kind-specific settings kept with the device


async def test_small_writes_go_inline_on_sqlite_and_wait_behind_a_held_lock(any_db_url, make_config) -> None:
    """`Database.write` (segment rows): on SQLite it runs on the loop itself; a write lock
    held elsewhere sends it to the async path, which waits off the loop and then writes.
    On PostgreSQL it always takes the async path. Both commit."""
    import asyncio
    import sqlite3
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from gateway.db.models import Recording

    def add(path: str):  # type: ignore[no-untyped-def]
        stmt = insert(Recording).values(camera_id="c1", kind="segment", path=path, started_at=datetime.now(UTC), hold=False).returning(Recording.id)
        return lambda c: int(c.execute(stmt).scalar_one())

    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        db = gw.services.db
        done0, busy0 = db.inline_done, db.inline_busy
        first = await db.write(add("a.mp4"))
        path = db.sqlite_path
        if path is None:
            assert db.inline_done == done0 == 0
        else:
            assert db.inline_done == done0 + 1 and db.inline_busy == busy0
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            writing = asyncio.create_task(db.write(add("b.mp4")))
            await wait_for(lambda: db.inline_busy == busy0 + 1, what="the inline write to find the lock taken")
            assert not writing.done()  # waiting for the lock, off the loop (wait_for's own sleeps ran meanwhile)
            other.execute("COMMIT")
            other.close()
            second = await asyncio.wait_for(writing, 10)
            assert db.inline_busy == busy0 + 1 and second > first
        async with db.session() as s:
            rows = (await s.scalars(select(Recording.path).where(Recording.camera_id == "c1").order_by(Recording.id))).all()
        assert rows == (["a.mp4"] if path is None else ["a.mp4", "b.mp4"])
