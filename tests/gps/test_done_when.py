"""The issue's "done when": the real Mosquitto, the real simulator, the whole
gateway (MQTT adapter → decoder → filter → store → rules → alerts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.clock import FakeClock
from simulators.tracker import TrackerClient, nmea_fix, run_tracker
from tests.conftest import free_port, require_peer, running
from tests.gps.helpers import (
    LAT0,
    LON0,
    PrivateBroker,
    alerts,
    forget_session,
    have_mosquitto,
    line,
    offset,
    positions,
    square,
    uid,
    wait_for,
)

# Fake wall time: 00:00 in Shanghai, inside a 22:00-06:00 curfew.
NOW = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
START = "2026-11-22T15:55:00+00:00"  # fix time of the simulators' t=0 (23:55 in Shanghai), a few minutes before NOW


def gps_config(make_config: Any, mqtt_url: str, tag: str, **extra: Any) -> Any:
    persons = [{"id": f"p{i}-{tag}", "name": f"Person {i}"} for i in range(1, 5)]
    devices = [{"id": f"t{i}-{tag}", "kind": "tracker", "person_id": f"p{i}-{tag}", "report_interval_s": 60} for i in range(1, 5)]
    zones = [
        {"id": f"home-{tag}", "kind": "inclusion", "geometry": square(300), "buffer_m": 30, "dwell_s": 20, "person_ids": [f"p1-{tag}", f"p2-{tag}"]},
        {"id": f"curfew-{tag}", "kind": "inclusion", "geometry": {"type": "Point", "coordinates": [LON0, LAT0]}, "radius_m": 150,
         "schedule": [{"days": [1, 2, 3, 4, 5, 6, 7], "start": "22:00", "end": "06:00"}], "timezone": "Asia/Shanghai",
         "buffer_m": 30, "dwell_s": 0, "person_ids": [f"p3-{tag}"]},
    ]
    return make_config(mqtt={"url": mqtt_url, "client_id": f"gw-test-{tag}"}, persons=persons, devices=devices, zones=zones,
                       thresholds={"gps": {"alert_update_s": 0, "liveness_check_s": 3600}}, **extra)


@pytest.fixture
def tag() -> str:
    return uid()


async def test_exit_raises_one_orange_alert_and_border_jitter_none(make_config: Any, mqtt_url: str, tag: str) -> None:
    cfg = gps_config(make_config, mqtt_url, tag)
    try:
        async with running(cfg, clock=FakeClock(NOW)) as r:
            svc = r.services
            await wait_for(svc.mqtt.connected.is_set, what="gateway connected")
            # p1 walks from home 700 m east (out of the 300 m square) and back.
            out_and_back = {"route": line((0, 0), (0, 700), (0, 0)), "speed_mps": 10, "interval_s": 5, "accuracy_m": 5, "start_time": START}
            # p2 walks along the square's east border, 30 m jitter, 30 m accuracy.
            border = {"route": line((-250, 300), (250, 300), (-250, 300)), "speed_mps": 5, "interval_s": 5, "jitter_m": 30, "accuracy_m": 30, "start_time": START}
            sent = await asyncio.gather(
                run_tracker(out_and_back, mqtt_url, speed=20, device_id=f"t1-{tag}", seed=1),
                run_tracker(border, mqtt_url, speed=20, device_id=f"t2-{tag}", seed=2),
            )
            await wait_for(lambda: _count(svc, f"t1-{tag}", sent[0]), what="every t1 position stored")
            await wait_for(lambda: _count(svc, f"t2-{tag}", sent[1]), what="every t2 position stored")
            exits = await wait_for(lambda: _resolved(svc, "inclusion_exit", f"p1-{tag}"), what="the exit alert resolved")
            assert len(exits) == 1, [(a.id, a.state) for a in exits]
            a = exits[0]
            assert a.level == a.original_level == "orange" and a.zone_id == f"home-{tag}" and a.device_id == f"t1-{tag}"
            assert a.count > 1  # updated while outside, never duplicated
            assert [n.action for n in a.notes][0] == "opened" and a.notes[-1].action == "resolved"
            assert await alerts(svc, person_id=f"p2-{tag}") == []
            # the API shows the same single alert
            h = await r.login()
            body = (await r.client.get("/api/alerts", params={"kind": "inclusion_exit", "person_id": f"p1-{tag}"}, headers=h)).json()
            items = body["items"] if isinstance(body, dict) else body
            assert [x["id"] for x in items] == [a.id]
    finally:
        forget_session("127.0.0.1", 1883, f"gw-test-{tag}")
        forget_session("127.0.0.1", 1883, f"gw-test-{tag}-trackers")
        for i in (1, 2):
            forget_session("127.0.0.1", 1883, f"sim-tracker-t{i}-{tag}")


async def test_curfew_miss_no_fix_and_lost_contact_raised_and_resolved(make_config: Any, mqtt_url: str, tag: str) -> None:
    cfg = gps_config(make_config, mqtt_url, tag)
    clock = FakeClock(NOW)
    try:
        async with running(cfg, clock=clock) as r:
            svc = r.services
            driver = r.areas.trackers
            await wait_for(svc.mqtt.connected.is_set, what="gateway connected")
            # p3 leaves home (150 m circle) during curfew and comes back.
            trip = {"route": line((0, 0), (0, 500), (0, 0)), "speed_mps": 10, "interval_s": 5, "start_time": START}
            n = await run_tracker(trip, mqtt_url, speed=20, device_id=f"t3-{tag}", seed=3)
            await wait_for(lambda: _count(svc, f"t3-{tag}", n), what="every t3 position stored")
            curfew = await wait_for(lambda: _resolved(svc, "curfew", f"p3-{tag}"), what="curfew alert resolved")
            assert len(curfew) == 1 and curfew[0].level == "orange"

            # Nothing from anyone for 4 report intervals: lost contact (wall clock), and no fix in curfew for p3.
            clock.advance(240)
            await driver.check_liveness()
            lost = await alerts(svc, kind="lost_contact", device_id=f"t4-{tag}")
            assert len(lost) == 1 and lost[0].state == "open" and lost[0].level == "yellow"
            nofix = await alerts(svc, kind="no_fix", person_id=f"p3-{tag}")
            assert len(nofix) == 1 and nofix[0].state == "open" and nofix[0].zone_id == f"curfew-{tag}"
            await driver.check_liveness()  # still silent: no second alert
            assert len(await alerts(svc, kind="lost_contact", device_id=f"t4-{tag}")) == 1

            # t4 speaks again (a void fix: contact, not a position); t3 sends a real fix from home.
            client4 = TrackerClient(mqtt_url, f"t4-{tag}")
            client3 = TrackerClient(mqtt_url, f"t3-{tag}")
            try:
                assert await asyncio.to_thread(client4.connected.wait, 30), "t4's simulator did not connect"
                assert await asyncio.to_thread(client3.connected.wait, 30), "t3's simulator did not connect"
                t = datetime(2026, 11, 22, 15, 59, tzinfo=UTC)
                client4.publish(f"trackers/t4-{tag}/nmea", nmea_fix(t, LAT0, LON0, valid=False))
                client3.publish(f"trackers/t3-{tag}/nmea", nmea_fix(t, *offset(10, 10)))
                await wait_for(lambda: _resolved(svc, "lost_contact", None, device_id=f"t4-{tag}"), what="lost contact resolved")
                await wait_for(lambda: _resolved(svc, "no_fix", f"p3-{tag}"), what="no fix resolved")
            finally:
                client4.close()
                client3.close()
            assert await positions(svc, f"t4-{tag}") == []  # a void fix is never a position
    finally:
        forget_session("127.0.0.1", 1883, f"gw-test-{tag}")
        forget_session("127.0.0.1", 1883, f"gw-test-{tag}-trackers")
        for i in (3, 4):
            forget_session("127.0.0.1", 1883, f"sim-tracker-t{i}-{tag}")


async def test_broker_restart_mid_run_loses_no_qos1_position(make_config: Any, tmp_path: Any, tag: str) -> None:
    require_peer(have_mosquitto(), "mosquitto binary at /usr/sbin/mosquitto")
    broker = PrivateBroker(tmp_path, free_port())
    broker.start()
    try:
        cfg = gps_config(make_config, broker.url, tag)
        cfg.mqtt.reconnect_min_s = 1
        cfg.mqtt.reconnect_max_s = 1
        async with running(cfg, clock=FakeClock(NOW)) as r:
            svc = r.services
            await wait_for(svc.mqtt.connected.is_set, what="gateway connected")
            stop = asyncio.Event()
            walk = {"route": line((0, 0), (0, 200)), "speed_mps": 1, "interval_s": 1, "start_time": START, "duration_s": 120}
            player = asyncio.create_task(run_tracker(walk, broker.url, speed=40, device_id=f"t1-{tag}", seed=9, stop=stop))
            await wait_for(lambda: _count(svc, f"t1-{tag}", 20), what="the first positions")
            await asyncio.to_thread(broker.restart)
            sent = await asyncio.wait_for(player, 60)
            assert sent == 121
            stored = await wait_for(lambda: _count(svc, f"t1-{tag}", sent), timeout=30, what=f"all {sent} positions after the restart")
            times = [p.fix_time for p in stored]
            assert len(set(times)) == sent  # each fix exactly once
    finally:
        broker.stop()


async def _count(svc: Any, device: str, n: int) -> list[Any] | None:
    rows = await positions(svc, device)
    return rows if len(rows) >= n else None


async def _resolved(svc: Any, kind: str, person: str | None, **where: Any) -> list[Any] | None:
    if person:
        where["person_id"] = person
    rows = await alerts(svc, kind=kind, **where)
    return rows if rows and all(a.state == "resolved" for a in rows) else None
