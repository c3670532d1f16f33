"""Kiosk protocol without faces: heartbeats → liveness and offline alerts,
idempotent event replay, scheduled check-ins that were missed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.db.models import Device, KioskEventRow
from tests.conftest import running
from tests.faces.conftest import add_kiosk
from tests.waiting import wait_for


async def test_heartbeat_liveness_offline_alert_and_recovery(make_config) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    async with running(make_config(), clock=clock) as r:
        admin = await r.login()
        key = await add_kiosk(r, admin, "kiosk-1", heartbeat_interval_s=30)
        kh = {"X-Device-Key": key}
        hb = await r.client.post("/api/kiosk/heartbeat", json={"state": "ok", "printer": "ok", "paper": "low", "software_version": "2.4.1"}, headers=kh)
        assert hb.status_code == 200 and hb.json()["state"] == "online" and "paper low" in hb.json()["status"]
        kiosks = r.areas.kiosks

        async def state() -> str:
            async with r.services.db.session() as s:
                return (await s.get(Device, "kiosk-1")).state  # type: ignore[union-attr]

        await wait_for(lambda: _eq(state(), "online"), what="kiosk-1 online")
        clock.advance(89)
        await kiosks.check_liveness()
        # not yet: the alert would have been raised by now (check_liveness awaits it), and the
        # device row, written by the core's state writer a moment later, is checked after that
        assert kiosks.kiosks["kiosk-1"].state == "online"
        assert (await r.client.get("/api/alerts?kind=kiosk_offline", headers=admin)).json() == []
        assert await state() == "online"
        clock.advance(2)
        await kiosks.check_liveness()
        await wait_for(lambda: _eq(state(), "offline"), what="kiosk-1 offline")
        alerts = (await r.client.get("/api/alerts?kind=kiosk_offline", headers=admin)).json()
        assert len(alerts) == 1 and alerts[0]["level"] == "yellow" and alerts[0]["device_id"] == "kiosk-1"
        await r.client.post("/api/kiosk/heartbeat", json={"state": "ok"}, headers=kh)
        await wait_for(lambda: _eq(state(), "online"), what="kiosk-1 online again")
        alerts = (await r.client.get("/api/alerts?kind=kiosk_offline", headers=admin)).json()
        assert alerts[0]["state"] == "resolved"
        dev = (await r.client.get("/api/devices/kiosk-1", headers=admin)).json()
        assert dev["settings"]["software_version"] == "2.4.1"
        # A tracker-kind key, a user token and no key are all refused.
        assert (await r.client.post("/api/kiosk/heartbeat", json={}, headers=admin)).status_code == 401
        assert (await r.client.post("/api/kiosk/heartbeat", json={})).status_code == 401


async def _eq(coro, value) -> bool:  # type: ignore[no-untyped-def]
    return (await coro) == value


async def test_replayed_events_are_applied_once_in_order(make_config, any_db_url) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as r:
        admin = await r.login()
        key = await add_kiosk(r, admin, "kiosk-1")
        other = await add_kiosk(r, admin, "kiosk-2")
        seen: list[str] = []

        async def collect(ev) -> None:  # type: ignore[no-untyped-def]
            seen.append(ev.event_id)

        r.services.bus.subscribe("test-kiosk-events", collect, topics=("kiosk.event",), maxsize=100)
        events = [{"event_id": f"e{i}", "kind": "receipt_printed" if i % 2 else "door_opened", "occurred_at": f"2026-03-02T01:0{i}:00Z", "payload": {"n": i}} for i in range(6)]
        first = await r.client.post("/api/kiosk/events", json={"events": events[:3]}, headers={"X-Device-Key": key})
        assert first.json() == {"applied": ["e0", "e1", "e2"], "duplicates": []}
        # After an outage the kiosk replays its whole buffer: the known ones are skipped.
        replay = await r.client.post("/api/kiosk/events", json={"events": events}, headers={"X-Device-Key": key})
        assert replay.json() == {"applied": ["e3", "e4", "e5"], "duplicates": ["e0", "e1", "e2"]}
        # The same event ids from another kiosk are that kiosk's own events.
        assert (await r.client.post("/api/kiosk/events", json={"events": events[:1]}, headers={"X-Device-Key": other})).json()["applied"] == ["e0"]
        async with r.services.db.session() as s:
            rows = (await s.scalars(select(KioskEventRow).where(KioskEventRow.kiosk_id == "kiosk-1").order_by(KioskEventRow.id))).all()
        assert [x.event_id for x in rows] == [f"e{i}" for i in range(6)]
        await wait_for(lambda: len(seen) == 7, what="7 kiosk events on the bus")
        assert seen[:6] == [f"e{i}" for i in range(6)]
        bad = await r.client.post("/api/kiosk/events", json={"events": [{"event_id": "", "kind": "x"}]}, headers={"X-Device-Key": key})
        assert bad.status_code == 422


async def test_missed_scheduled_checkin_raises_yellow_alert(make_config) -> None:
    cfg = make_config("""
persons: [{id: p1, name: One}]
devices:
  - id: kiosk-1
    kind: kiosk
    checkins: [{person_id: p1, days: [1], start: "09:00", end: "11:00", timezone: Asia/Shanghai}]
""")
    # Monday 2026-03-02 10:30 Shanghai = 02:30 UTC: the window is still open.
    clock = FakeClock(datetime(2026, 3, 2, 2, 30, tzinfo=UTC))
    async with running(cfg, clock=clock) as r:
        admin = await r.login()
        kiosks = r.areas.kiosks
        await kiosks.check_schedules()
        assert (await r.client.get("/api/alerts?kind=checkin_missed", headers=admin)).json() == []
        clock.advance(3600)
        await kiosks.check_schedules()
        await kiosks.check_schedules()
        alerts = (await r.client.get("/api/alerts?kind=checkin_missed", headers=admin)).json()
        assert len(alerts) == 1 and alerts[0]["level"] == "yellow" and alerts[0]["person_id"] == "p1" and alerts[0]["count"] == 1
