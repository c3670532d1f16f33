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
