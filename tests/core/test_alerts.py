"""Alert lifecycle, deduplication, escalation and delivery (WebSocket, MQTT, webhooks)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import paho.mqtt.client as paho
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from gateway.clock import FakeClock
from tests.conftest import free_port, running
from tests.waiting import wait_for, wait_for_blocking


async def test_ongoing_condition_updates_one_alert_then_clears(make_config) -> None:
    async with running(make_config(persons=[{"id": "p1", "name": "A"}])) as gw:
        alerts = gw.services.alerts
        first = await alerts.raise_alert("inclusion_exit", person_id="p1", device_id="t1", zone_id="z1", lat=31.2, lon=121.4)
        again = await alerts.raise_alert("inclusion_exit", person_id="p1", device_id="t1", zone_id="z1", lat=31.3, lon=121.5)
        assert again["id"] == first["id"] and again["count"] == 2 and again["level"] == "orange"
        assert again["position"] == {"lat": 31.3, "lon": 121.5}
        other_zone = await alerts.raise_alert("inclusion_exit", person_id="p1", device_id="t1", zone_id="z2")
        assert other_zone["id"] != first["id"]
        cleared = await alerts.clear("inclusion_exit", person_id="p1", device_id="t1", zone_id="z1", note="back inside")
        assert cleared and cleared["state"] == "resolved" and cleared["resolved_by"] == "system"
        assert await alerts.clear("inclusion_exit", person_id="p1", device_id="t1", zone_id="z1") is None
        reopened = await alerts.raise_alert("inclusion_exit", person_id="p1", device_id="t1", zone_id="z1")
        assert reopened["id"] not in (first["id"], other_zone["id"]) and reopened["count"] == 1


async def test_a_batch_of_changes_applies_in_order_and_survives_a_bad_one(make_config) -> None:
    from gateway.alerts.service import AlertCall
    from gateway.events import AlertChanged

    async with running(make_config(persons=[{"id": "p1", "name": "A"}])) as gw:
        alerts = gw.services.alerts
        seen: list[tuple[str, int]] = []
        states: list[tuple[str, int]] = []

        async def record(ev: AlertChanged) -> None:
            seen.append((ev.change, ev.alert["id"]))
            states.append((ev.alert["state"], ev.alert["count"]))

        sub = gw.services.bus.subscribe("test-batch", record, topics=("alert",))
        ongoing = await alerts.raise_alert("lost_contact", person_id="p1", device_id="t1")
        kw = {"person_id": "p1", "device_id": "t1", "zone_id": "z1"}
        # opened, updated and resolved inside one batch; the earlier alert resolved beside them
        await alerts.apply([AlertCall(True, "inclusion_exit", kw), AlertCall(True, "inclusion_exit", kw), AlertCall(False, "lost_contact", {"person_id": "p1", "device_id": "t1"}),
                            AlertCall(False, "inclusion_exit", kw), AlertCall(False, "tamper", {"device_id": "t1"})])
        await asyncio.wait_for(sub.queue.join(), 30)  # apply published its events before returning: all handled now
        exit_id = next(i for c, i in seen if c == "opened" and i != ongoing["id"])
        assert seen[1:] == [("opened", exit_id), ("updated", exit_id), ("resolved", ongoing["id"]), ("resolved", exit_id)]
        # each message shows the alert as that change left it, not as the batch ended
        assert states[1:] == [("open", 1), ("open", 2), ("resolved", 1), ("resolved", 2)]
        h = await gw.login("li", "officer")
        row = (await gw.client.get(f"/api/alerts/{exit_id}", headers=h)).json()
        assert row["state"] == "resolved" and row["count"] == 2
        # a change that cannot be applied (an unknown level) does not take the others of its batch down
        seen.clear()
        await alerts.apply([AlertCall(True, "tamper", {"device_id": "t2"}), AlertCall(True, "tamper", {"device_id": "t3", "level": "purple"})])
        await asyncio.wait_for(sub.queue.join(), 30)
        assert [c for c, _ in seen] == ["opened"]
        rows = (await gw.client.get("/api/alerts", params={"kind": "tamper"}, headers=h)).json()
        assert [r["device_id"] for r in rows] == ["t2"]
        assert await gw.services.audit.verify() == []


async def test_default_and_configured_levels(make_config) -> None:
    async with running(make_config(alerts={"levels": {"lost_contact": "orange"}})) as gw:
        a = gw.services.alerts
        assert (await a.raise_alert("tamper", device_id="t1"))["level"] == "red"
        assert (await a.raise_alert("exclusion_breach", device_id="t1"))["level"] == "red"
        assert (await a.raise_alert("curfew", device_id="t1"))["level"] == "orange"
        assert (await a.raise_alert("no_fix", device_id="t1"))["level"] == "yellow"
        assert (await a.raise_alert("low_battery", device_id="t1"))["level"] == "blue"
        assert (await a.raise_alert("lost_contact", device_id="t1"))["level"] == "orange"


async def test_api_lifecycle_with_notes_and_who(make_config) -> None:
    async with running(make_config()) as gw:
        officer = await gw.login("li", "officer")
        monitor = await gw.login("wang", "monitor")
        alert = await gw.services.alerts.raise_alert("tamper", device_id="t9", message="strap cut")
        r = await gw.client.post(f"/api/alerts/{alert['id']}/ack", headers=monitor, json={"note": "calling officer"})
        assert r.status_code == 200 and r.json()["state"] == "acknowledged" and r.json()["acknowledged_by"] == "wang"
        assert (await gw.client.post(f"/api/alerts/{alert['id']}/ack", headers=monitor)).status_code == 409
        assert (await gw.client.post(f"/api/alerts/{alert['id']}/resolve", headers=monitor)).status_code == 403
        r = await gw.client.post(f"/api/alerts/{alert['id']}/resolve", headers=officer, json={"note": "strap replaced"})
        body = r.json()
        assert r.status_code == 200 and body["state"] == "resolved" and body["resolved_by"] == "li"
        assert [(n["action"], n["author"], n["text"]) for n in body["notes"]] == [
            ("opened", "system", "strap cut"), ("acknowledged", "wang", "calling officer"), ("resolved", "li", "strap replaced")]
        assert (await gw.client.post(f"/api/alerts/{alert['id']}/resolve", headers=officer)).status_code == 409
        assert (await gw.client.post("/api/alerts/999/ack", headers=officer)).status_code == 404
        listed = (await gw.client.get("/api/alerts?state=resolved&level=red&kind=tamper", headers=monitor)).json()
        assert [a["id"] for a in listed] == [alert["id"]]
        assert (await gw.client.get("/api/alerts?state=open", headers=monitor)).json() == []


async def test_unacknowledged_alerts_escalate(make_config) -> None:
    clock = FakeClock()
    cfg = make_config(alerts={"escalate": {"yellow": {"after_s": 60}, "orange": {"after_s": 120}}})
    async with running(cfg, clock=clock) as gw:
        a = gw.services.alerts
        lost = await a.raise_alert("lost_contact", device_id="t1", at=clock.now())
        acked = await a.raise_alert("no_fix", device_id="t2", at=clock.now())
        await a.acknowledge(acked["id"], "wang")
        clock.advance(59)
        assert await a.escalate_due() == 0
        clock.advance(2)
        assert await a.escalate_due() == 1
        now = (await gw.client.get(f"/api/alerts/{lost['id']}", headers=await gw.login())).json()
        assert now["level"] == "orange" and now["original_level"] == "yellow" and now["notes"][-1]["action"] == "escalated"
        clock.advance(119)
        assert await a.escalate_due() == 0
        clock.advance(2)
        assert await a.escalate_due() == 1
        clock.advance(10_000)
        assert await a.escalate_due() == 0  # red is the top
        final = (await gw.client.get(f"/api/alerts/{lost['id']}", headers=await gw.login())).json()
        assert final["level"] == "red"
        assert (await gw.client.get(f"/api/alerts/{acked['id']}", headers=await gw.login())).json()["level"] == "yellow"


async def test_alerts_published_on_mqtt(make_config, mqtt_url) -> None:
    node = f"t{uuid.uuid4().hex[:8]}"
    received: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{node}")
    subscribed = asyncio.Event()
    sub.on_message = lambda c, u, m: loop.call_soon_threadsafe(received.put_nowait, (m.topic, json.loads(m.payload)))
    sub.on_subscribe = lambda *a: loop.call_soon_threadsafe(subscribed.set)
    prefix = f"test-{node}/alerts"
    sub.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=1)
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        cfg = make_config(mqtt={"url": mqtt_url, "client_id": f"gw-{node}"}, gateway={"node_id": node}, alerts={"mqtt_topic_prefix": prefix})
        async with running(cfg) as gw:
            a = await gw.services.alerts.raise_alert("exclusion_breach", person_id="p7", device_id="t7", zone_id="school")
            topic, body = await asyncio.wait_for(received.get(), 10)
            assert topic == f"{prefix}/red/exclusion_breach/p7"
            assert body["change"] == "opened" and body["id"] == a["id"] and body["state"] == "open"
            await gw.services.alerts.acknowledge(a["id"], "wang")
            topic, body = await asyncio.wait_for(received.get(), 10)
            assert body["change"] == "acknowledged" and body["acknowledged_by"] == "wang"
    finally:
        sub.loop_stop()
        sub.disconnect()


@asynccontextmanager
async def webhook_receiver(handler: Any) -> AsyncIterator[str]:
    """A real HTTP receiver (aiohttp) calling `handler` for each POST; yields its URL."""
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


async def test_webhook_retries_with_backoff_until_delivered(make_config) -> None:
    """A real HTTP receiver that fails twice, then accepts; the signature verifies."""
    import hashlib
    import hmac

    hits: list[tuple[int, bytes, str]] = []
    delivered = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        hits.append((len(hits), body, request.headers.get("X-Gateway-Signature", "")))
        if len(hits) < 3:
            return web.Response(status=503)
        delivered.set()
        return web.Response(status=204)

    async with webhook_receiver(hook) as url:
        cfg = make_config(alerts={"webhooks": [{"url": url, "secret": "s3cret", "levels": ["red"]}]},
                          delivery={"retry": {"base_delay_s": 0.05, "max_attempts": 5}})
        async with running(cfg) as gw:
            await gw.services.alerts.raise_alert("low_battery", device_id="t1")  # blue: filtered out
            await gw.services.alerts.raise_alert("tamper", device_id="t1")
            await asyncio.wait_for(delivered.wait(), 10)
        assert len(hits) == 3
        body = hits[-1][1]
        assert json.loads(body)["kind"] == "tamper"
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert hits[-1][2] == expected


def test_websocket_pushes_alert_changes(live_gateway) -> None:
    from websockets.sync.client import connect

    live_gateway.add_user("m1", "monitor")
    token = live_gateway.token("m1")
    ws_url = live_gateway.url.replace("http", "ws") + f"/api/events?token={token}"
    with connect(ws_url) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and hello["role"] == "monitor"
        ws.send(json.dumps({"subscribe": ["alert"]}))
        # The subscription message races the alert; wait until the server has it.
        wait_for_blocking(lambda: any(c.topics == {"alert"} for c in live_gateway.services.push.clients), what="the subscription at the server")
        live_gateway.call(live_gateway.services.alerts.raise_alert, "sos", person_id="p1", device_id="t1")
        msg = json.loads(ws.recv(timeout=10))
        assert msg["type"] == "alert" and msg["change"] == "opened" and msg["alert"]["kind"] == "sos" and msg["alert"]["level"] == "red"


async def test_alert_changes_commit_inline_and_wait_their_turn_behind_a_held_lock(any_db_url, make_config) -> None:
    """On SQLite an alert transaction runs on the loop itself (no thread hand-offs). It must
    never wait there for a lock another connection holds: it hands over to the async path,
    which waits on its own thread, so the alert is stored as soon as the lock is released.
    On PostgreSQL every change takes the async path."""
    import sqlite3

    async with running(make_config(storage={"database_url": any_db_url}, persons=[{"id": "p1", "name": "A"}])) as gw:
        alerts, db = gw.services.alerts, gw.services.db
        done0 = db.inline_done
        first = await alerts.raise_alert("tamper", person_id="p1", device_id="t1")
        path = db.sqlite_path
        if path is None:
            assert db.inline_done == done0 == 0  # PostgreSQL: never inline
        else:
            assert db.inline_done == done0 + 1 and db.inline_busy == 0
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            raising = asyncio.create_task(alerts.raise_alert("tamper", person_id="p1", device_id="t2"))
            await wait_for(lambda: db.inline_busy == 1, what="the inline transaction to find the lock taken")
            assert not raising.done()  # waiting for the lock, off the loop (wait_for's own sleeps ran meanwhile)
            other.execute("COMMIT")
            second = await asyncio.wait_for(raising, 10)
            assert db.inline_busy == 1 and second["state"] == "open"
            other.close()
        updated = await alerts.raise_alert("tamper", person_id="p1", device_id="t1")
        assert updated["id"] == first["id"] and updated["count"] == 2
        h = await gw.login("li", "officer")
        rows = (await gw.client.get("/api/alerts", params={"kind": "tamper"}, headers=h)).json()
        assert sorted(r["device_id"] for r in rows) == (["t1", "t2"] if path else ["t1"])
        assert await gw.services.audit.verify() == []


async def test_startup_objects_are_kept_out_of_full_collections_while_running(make_config) -> None:
    """What start-up built is frozen out of the cyclic collector (full collections walked
    all of it, stopping the loop for 50-80 ms under tracker load) and handed back at stop."""
    import gc

    def collectable(*objs: object) -> list[bool]:
        """For each object: is it in a generation the cyclic collector walks (not frozen)?"""
        walked = {id(o) for o in gc.get_objects()}  # generations 0-2; the permanent one is left out
        return [id(o) in walked for o in objs]

    gc.unfreeze()
    zones = [{"id": "home", "kind": "inclusion", "geometry": {"type": "Point", "coordinates": [121.47, 31.23]}, "radius_m": 200}]
    async with running(make_config(zones=zones)) as gw:
        assert gw.areas.trackers is not None
        # made by build_gateway (the core's database) and by start itself (the zone index
        # the trackers load from the database in their start()): both long-lived
        db, index = gw.services.db, gw.areas.trackers.rules.index
        assert "home" in index.by_id
        made_now = [db, index]  # something made while running, for comparison
        assert gc.get_freeze_count() > 10_000
        assert gc.is_tracked(db) and gc.is_tracked(index)  # container objects: the collector would walk them
        assert collectable(db, index, made_now) == [False, False, True]  # frozen, the rest is not
    assert gc.get_freeze_count() == 0
    assert collectable(db, index) == [True, True]  # handed back at stop: garbage once the gateway is


async def test_the_escalation_check_reads_alerts_only_when_one_may_be_due(make_config) -> None:
    """At rest the periodic check costs no query; an alert opened, or one coming due,
    brings it back."""
    from sqlalchemy import event

    clock = FakeClock()
    cfg = make_config(alerts={"escalate": {"yellow": {"after_s": 60}}})
    async with running(cfg, clock=clock) as gw:
        a = gw.services.alerts
        reads: list[str] = []

        def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if "FROM alerts" in statement and "state" in statement:
                reads.append(statement)

        # Every check from now on, the core's own (every 5 s) and this test's, goes through
        # here, so the test knows when none is running.
        running_checks = 0
        escalate_due = a.escalate_due

        async def counted() -> int:
            nonlocal running_checks
            running_checks += 1
            try:
                return await escalate_due()
            finally:
                running_checks -= 1

        a.escalate_due = counted  # type: ignore[method-assign]

        def idle() -> bool:
            # the start-up check has finished (it samples the gauge at its end) and none is running
            started = gw.services.metrics.registry.get_sample_value("gateway_alerts_ongoing", {"level": "red"}) is not None
            return started and running_checks == 0

        engine = gw.services.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        check = asyncio.create_task(a.run_escalation(interval_s=0.01))
        try:
            await wait_for(idle, what="the start-up escalation check to finish")
            before = len(reads)
            await asyncio.sleep(0.3)  # the thing under test: real time passing, 30 rounds of the check, nothing open
            assert len(reads) == before
            lost = await a.raise_alert("lost_contact", device_id="t1", at=clock.now())
            await wait_for(lambda: len(reads) > before and idle(), what="the new alert looked at by the check")
            before = len(reads)
            await asyncio.sleep(0.3)  # the thing under test: 30 more rounds; open, but not due for a minute
            assert len(reads) == before
            h = await gw.login()

            async def level() -> str:
                return str((await gw.client.get(f"/api/alerts/{lost['id']}", headers=h)).json()["level"])

            clock.advance(61)
            await wait_for(lambda: _eq(level(), "orange"), what="the alert escalated to orange")
            got = (await gw.client.get(f"/api/alerts/{lost['id']}", headers=h)).json()
            assert got["level"] == "orange" and got["notes"][-1]["action"] == "escalated"
        finally:
            check.cancel()
            event.remove(engine, "before_cursor_execute", count)


async def _eq(value: Any, want: object) -> bool:
    return bool(await value == want)


async def test_what_a_stop_left_undelivered_is_delivered_after_the_restart(make_config) -> None:
    """The webhook receiver is down while eight red alerts open and the gateway stops; the
    outbox holds them in the database, and the next start delivers each exactly once, with
    the link to the alert in the console and its idempotency key."""
    got: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(json.loads(await request.read()))
        return web.Response(status=204)

    port = free_port()
    cfg = make_config(gateway={"public_url": "https://gw.example.cn/"},
                      alerts={"webhooks": [{"url": f"http://127.0.0.1:{port}/hook", "levels": ["red"]}]},
                      delivery={"retry": {"base_delay_s": 0.05, "max_delay_s": 0.2}})
    async with running(cfg) as gw:
        for i in range(8):
            await gw.services.alerts.raise_alert("tamper", device_id=f"t{i}")
        await wait_for(lambda: b'gateway_outbox_failed_total{channel="webhook-0"}' in gw.services.metrics.render(), 30, "a failed attempt")
    assert got == []
    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with running(cfg):
            await wait_for(lambda: len(got) >= 8, 30, "the eight alerts delivered after the restart")
    finally:
        await runner.cleanup()
    assert sorted(m["device_id"] for m in got) == [f"t{i}" for i in range(8)]
    assert all(m["url"] == f"https://gw.example.cn/console/alerts?id={m['id']}" for m in got)
    assert len({m["idempotency_key"] for m in got}) == 8
