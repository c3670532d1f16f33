"""Zones CRUD (GCJ-02 input), tracks as GeoJSON, and the driver pipeline on
bad input, through the real app and database (MQTT messages handed to the
driver's batch handler exactly as the core adapter does)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.clock import FakeClock
from gateway.mqtt import Message
from simulators.tracker import nmea_fix
from tests.conftest import running
from tests.gps.helpers import LAT0, LON0, alerts, offset, positions, square
from tests.gps.test_geo import REFERENCE

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def cfg(make_config: Any, db_url: str | None = None) -> Any:
    extra = {"storage": {"database_url": db_url}} if db_url else {}
    return make_config(
        persons=[{"id": "p1", "name": "Zhang San"}, {"id": "p2", "name": "Li Si"}],
        devices=[{"id": "trk-1", "kind": "tracker", "person_id": "p1"}, {"id": "trk-2", "kind": "tracker", "person_id": "p2", "filter": {"max_accuracy_m": 2000}}],
        zones=[{"id": "town", "kind": "inclusion", "geometry": square(2000), "person_ids": ["p1"], "dwell_s": 0}],
        thresholds={"gps": {"alert_update_s": 0}}, **extra,
    )


def msg(topic: str, payload: bytes | str, mid: int = 1) -> Message:
    return Message(topic, payload.encode() if isinstance(payload, str) else payload, 1, False, mid)


async def test_zone_crud_with_gcj02(make_config: Any) -> None:
    async with running(cfg(make_config)) as r:
        officer = await r.login("officer1", role="officer")
        wlat, wlon, glat, glon = REFERENCE[0]
        body = {"id": "school", "kind": "exclusion", "geometry": {"type": "Point", "coordinates": [glon, glat]}, "radius_m": 200,
                "datum": "gcj02", "person_ids": ["p2"], "level": "red"}
        res = await r.client.post("/api/zones", json=body, headers=officer)
        assert res.status_code == 201, res.text
        z = res.json()
        assert z["geometry"]["coordinates"] == pytest.approx([wlon, wlat], abs=1e-7)  # stored in WGS-84
        assert z["geometry_input"]["coordinates"] == [glon, glat] and z["datum"] == "gcj02"
        shown = (await r.client.get("/api/zones/school", params={"datum": "gcj02"}, headers=officer)).json()
        assert shown["geometry"]["coordinates"] == pytest.approx([glon, glat], abs=1e-7)
        assert (await r.client.post("/api/zones", json=body, headers=officer)).status_code == 409
        res = await r.client.patch("/api/zones/school", json={"radius_m": 300, "person_ids": ["p1", "p2"]}, headers=officer)
        assert res.status_code == 200 and res.json()["radius_m"] == 300 and res.json()["person_ids"] == ["p1", "p2"]
        assert res.json()["geometry"]["coordinates"] == pytest.approx([wlon, wlat], abs=1e-7)
        ids = [x["id"] for x in (await r.client.get("/api/zones", headers=officer)).json()]
        assert ids == ["school", "town"]
        assert "school" in r.areas.trackers.rules.index.by_id  # the driver uses it at once
        assert (await r.client.delete("/api/zones/school", headers=officer)).status_code == 204
        assert (await r.client.get("/api/zones/school", headers=officer)).status_code == 404
        assert "school" not in r.areas.trackers.rules.index.by_id


@pytest.mark.parametrize(("body", "needle"), [
    ({"kind": "inclusion", "geometry": {"type": "Point", "coordinates": [121, 31]}}, "radius_m"),
    ({"kind": "inclusion", "geometry": {"type": "LineString", "coordinates": [[121, 31], [122, 31]]}}, "Polygon"),
    ({"kind": "inclusion", "geometry": {"type": "Polygon", "coordinates": [[[200, 31], [201, 31], [201, 32], [200, 31]]]}}, "range"),
    ({"kind": "inclusion", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}, "invalid"),
    ({"kind": "inclusion", "geometry": {"type": "Polygon", "coordinates": "nope"}}, "GeoJSON"),
    ({"kind": "inclusion", "geometry": {"type": "Polygon", "coordinates": [[[121, 31], [122, 31], [121, 31]]]}}, "at least 3 distinct corners"),
    ({"kind": "inclusion", "geometry": {"type": "Polygon", "coordinates": [[[121, 31], [122, 31]]]}}, "at least 3 distinct corners"),
    ({"kind": "inclusion", "geometry": square(100), "timezone": "Mars/Base"}, "time zone"),
    ({"kind": "sideways", "geometry": square(100)}, "kind"),
])
async def test_bad_zones_get_a_clear_422(make_config: Any, body: dict[str, Any], needle: str) -> None:
    async with running(cfg(make_config)) as r:
        h = await r.login()
        res = await r.client.post("/api/zones", json=body, headers=h)
        assert res.status_code == 422 and needle in res.text, res.text


async def test_a_zone_naming_an_unknown_person_is_a_404(make_config: Any) -> None:
    """As for a person outside the user's units (docs/units.md): never a hint of what exists."""
    async with running(cfg(make_config)) as r:
        res = await r.client.post("/api/zones", json={"kind": "inclusion", "geometry": square(100), "person_ids": ["ghost"]}, headers=await r.login())
        assert res.status_code == 404 and "no person ghost" in res.text, res.text


async def test_monitor_cannot_write_zones(make_config: Any) -> None:
    async with running(cfg(make_config)) as r:
        h = await r.login("mon", role="monitor")
        assert (await r.client.get("/api/zones", headers=h)).status_code == 200
        assert (await r.client.post("/api/zones", json={"kind": "inclusion", "geometry": square(10)}, headers=h)).status_code == 403
        assert (await r.client.get("/api/zones")).status_code == 401


@pytest.mark.postgres
async def test_pipeline_bad_input_never_stored_good_beside_it_kept(make_config: Any, any_db_url: str) -> None:
    async with running(cfg(make_config, any_db_url), clock=FakeClock(NOW)) as r:
        svc = r.services
        driver = r.areas.trackers
        t = NOW - timedelta(minutes=5)
        lat, lon = offset(0, 2500)  # outside town
        batch = [
            msg("trackers/trk-1/nmea", b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*00"),  # bad checksum
            msg("trackers/trk-1/nmea", b"$GPRMC,1235"),  # truncated
            msg("trackers/trk-1/nmea", bytes(range(256)) * 4),  # binary garbage
            msg("trackers/trk-1/nmea", b"$GPGGA," + b"9" * (1024 * 1024)),  # 1 MB
            msg("owntracks/u/trk-1", b'{"hello": "world"}'),  # not OwnTracks
            msg("owntracks/u/trk-1", b'{"_type":"location","lat":123,"lon":9,"tst":1763784000}'),  # out of range
            msg("trackers/ghost/nmea", nmea_fix(t, LAT0, LON0)),  # unknown device
            msg("trackers/trk-1/status", b"[not a status]"),
            msg("trackers/trk-1/state", b"sideways"),
            msg("trackers/trk-1/nmea", nmea_fix(t, lat, lon)),  # the good one
            msg("trackers/trk-1/nmea", nmea_fix(t, lat, lon)),  # redelivered duplicate
            msg("trackers/trk-1/nmea", nmea_fix(t - timedelta(seconds=30), LAT0, LON0)),  # late: track only
            msg("owntracks/u/trk-2", f'{{"_type":"location","lat":{LAT0},"lon":{LON0},"tst":{int(t.timestamp())},"acc":1500,"batt":9}}'),
            msg("trackers/trk-2/status", b'{"tamper": true, "sos": true, "battery": 8}'),
        ]
        await driver.handle(batch)
        rows = await positions(svc, "trk-1")
        assert [(round(p.lat, 6), round(p.lon, 6), p.in_order) for p in rows] == [(LAT0, LON0, False), (round(lat, 6), round(lon, 6), True)]
        assert len(await positions(svc, "trk-2")) == 1  # accuracy 1500 m allowed by the per-device override
        assert await positions(svc, "ghost") == []
        text = svc.metrics.render().decode()
        for reason in ("checksum", "garbage", "too_large", "not_owntracks", "range", "unknown_device", "bad_status", "bad_state", "duplicate"):
            assert f'gateway_gps_rejected_total{{reason="{reason}"}}' in text, reason
        exits = await alerts(svc, kind="inclusion_exit")
        assert len(exits) == 1 and exits[0].person_id == "p1" and exits[0].level == "orange"  # the late fix did not clear it
        kinds = {(a.kind, a.level) for a in await alerts(svc, device_id="trk-2")}
        assert kinds == {("tamper", "red"), ("sos", "red"), ("low_battery", "blue")}
        await driver.handle([msg("trackers/trk-2/status", b'{"tamper": false, "battery": 80}')])
        states = {a.kind: a.state for a in await alerts(svc, device_id="trk-2")}
        assert states == {"tamper": "resolved", "sos": "open", "low_battery": "resolved"}  # SOS waits for an officer

        h = await r.login()
        track = (await r.client.get("/api/persons/p1/track", params={"since": (t - timedelta(hours=1)).isoformat()}, headers=h)).json()
        assert track["type"] == "FeatureCollection"
        pts = [f for f in track["features"] if f["geometry"]["type"] == "Point"]
        assert [f["properties"]["fix_time"] for f in pts] == sorted(f["properties"]["fix_time"] for f in pts) and len(pts) == 2
        assert any(f["geometry"]["type"] == "LineString" for f in track["features"])
        empty = (await r.client.get("/api/persons/p1/track", params={"until": (t - timedelta(hours=1)).isoformat()}, headers=h)).json()
        assert empty["features"] == []
        assert (await r.client.get("/api/persons/nobody/track", headers=h)).status_code == 404
        dev = (await r.client.get("/api/devices/trk-1/positions", headers=h)).json()
        assert len(dev) == 2 and dev[0]["in_order"] is True
        latest = (await r.client.get("/api/positions/latest", params={"datum": "gcj02"}, headers=h)).json()
        by_dev = {f["properties"]["device_id"]: f["geometry"]["coordinates"] for f in latest["features"]}
        assert set(by_dev) == {"trk-1", "trk-2"} and by_dev["trk-1"][0] != pytest.approx(lon, abs=1e-4)  # shifted for GCJ-02 tiles


async def test_positions_wait_for_a_database_that_is_down_and_are_stored_once_it_is_back(make_config: Any, pg_url: str) -> None:
    """PostgreSQL restarting (or failing over): the batch is neither lost nor acknowledged
    (the handler does not return) until its positions are stored."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL
    from tests.waiting import wait_for

    name = pg_url.rsplit("/", 1)[1]
    async with running(cfg(make_config, pg_url)) as r:
        driver, svc = r.areas.trackers, r.services
        t = datetime.now(UTC).replace(microsecond=0)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            # the database goes away: no new connection, and the gateway's are cut
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            handling = asyncio.create_task(driver.handle([msg("trackers/trk-1/nmea", nmea_fix(t, LAT0, LON0))]))
            await wait_for(lambda: driver.m_db_retries._value.get() >= 2, 30, "the write retried while the database is down")
            assert not handling.done(), "not acknowledged: the handler has not returned"
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await asyncio.wait_for(handling, 30)
        assert [p.fix_time for p in await positions(svc, "trk-1")] == [t]
