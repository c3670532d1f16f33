"""The console push over a real WebSocket carries to each user only what their unit may
see: alerts of their units (or assigned to them), device states of their devices. Two
sibling offices and their county; the units, persons and devices are made through the API
(as an admin would), so the push learns of them from the change events, without a restart.

Each client's messages arrive in order, so a message that should not reach a client would
arrive before the one it waits for: the first message each client gets is the proof."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from gateway.events import DeviceState
from tests.waiting import wait_for_blocking


@pytest.mark.postgres
def test_each_office_is_pushed_only_its_own(any_db_url: str, make_config: Any, start_live_gateway: Any) -> None:
    gw = start_live_gateway(make_config(storage={"database_url": any_db_url}))
    gw.add_user("chief", "admin")
    root = {"Authorization": f"Bearer {gw.token('chief')}"}
    api = httpx.Client(base_url=gw.url, headers=root)
    for uid, parent in (("county", "root"), ("office-a", "county"), ("office-b", "county")):
        assert api.post("/api/units", json={"id": uid, "name": uid, "parent_id": parent}).status_code == 201
    for o in ("a", "b"):
        assert api.post("/api/persons", json={"id": f"p{o}", "name": o, "unit_id": f"office-{o}"}).status_code == 201
        assert api.post("/api/devices", json={"id": f"t{o}", "kind": "tracker", "person_id": f"p{o}", "unit_id": f"office-{o}"}).status_code == 201
        assert api.post("/api/users", json={"username": f"o{o}", "password": "correct-horse-1", "role": "officer",
                                            "unit_id": f"office-{o}"}).status_code == 201
    assert api.post("/api/users", json={"username": "oc", "password": "correct-horse-1", "role": "officer", "unit_id": "county"}).status_code == 201
    index = gw.services.push.units
    wait_for_blocking(lambda: index.devices.get("tb") == "office-b" and "office-b" in index.paths, 30, "the push to learn the new units")

    sockets = {}
    for name in ("oa", "ob", "oc"):
        ws = connect(gw.url.replace("http", "ws") + f"/api/events?token={gw.token(name)}")
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        ws.send(json.dumps({"subscribe": ["alert", "device.state"]}))
        sockets[name] = ws
    wait_for_blocking(lambda: sum(c.topics == {"alert", "device.state"} for c in gw.services.push.clients) == 3, 30, "the subscriptions")

    def recv(name: str) -> dict[str, Any]:
        return json.loads(sockets[name].recv(timeout=15))  # type: ignore[no-any-return]

    alerts = gw.services.alerts
    b1 = gw.call(alerts.raise_alert, "tamper", person_id="pb", device_id="tb")
    a1 = gw.call(alerts.raise_alert, "tamper", person_id="pa", device_id="ta")
    b2 = gw.call(alerts.raise_alert, "sos", person_id="pb", device_id="tb")
    assert recv("oa")["alert"]["id"] == a1["id"]
    assert [recv("ob")["alert"]["id"] for _ in range(2)] == [b1["id"], b2["id"]]
    assert [recv("oc")["alert"]["id"] for _ in range(3)] == [b1["id"], a1["id"], b2["id"]]

    # the device states of each office's own trackers
    gw.call(gw.services.bus.publish, DeviceState(device_id="tb", kind="tracker", state="offline", reason="test"))
    gw.call(gw.services.bus.publish, DeviceState(device_id="ta", kind="tracker", state="offline", reason="test"))
    assert recv("oa")["device_id"] == "ta"
    assert recv("ob")["device_id"] == "tb"
    assert [recv("oc")["device_id"] for _ in range(2)] == ["tb", "ta"]

    # an alert of office A assigned to office B reaches B from then on
    gw.call(alerts.assign, a1["id"], "chief", unit_id="office-b")
    msg = recv("ob")
    assert msg["alert"]["id"] == a1["id"] and msg["change"] == "assigned"
    assert recv("oa")["change"] == "assigned"
    for ws in sockets.values():
        ws.close()


async def test_mqtt_unit_topics_let_a_broker_acl_give_an_office_its_subtree(make_config: Any, mqtt_url: str) -> None:
    """Alerts are also published under `<unit prefix>/<unit path>/alerts/...` (Mosquitto here):
    a subscriber to office A's subtree gets A's alerts (and one assigned to A), never B's;
    one to the county's subtree gets both."""
    import asyncio
    import uuid

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.conftest import running

    node = f"u{uuid.uuid4().hex[:8]}"
    prefix = f"test-{node}/units"
    loop = asyncio.get_running_loop()
    got: dict[str, asyncio.Queue[tuple[str, dict[str, Any]]]] = {"a": asyncio.Queue(), "county": asyncio.Queue()}
    subs = []
    for who, filt in (("a", f"{prefix}/root/county/office-a/#"), ("county", f"{prefix}/root/county/#")):
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{who}-{node}")
        ready = asyncio.Event()
        sub.on_message = lambda c, u, m, q=got[who]: loop.call_soon_threadsafe(q.put_nowait, (m.topic, json.loads(m.payload)))
        sub.on_subscribe = lambda *a, ev=ready: loop.call_soon_threadsafe(ev.set)
        sub.on_connect = lambda c, *a, f=filt: c.subscribe(f, qos=1)
        sub.connect("127.0.0.1", 1883)
        sub.loop_start()
        await asyncio.wait_for(ready.wait(), 10)
        subs.append(sub)
    try:
        cfg = make_config(mqtt={"url": mqtt_url, "client_id": f"gw-{node}"}, gateway={"node_id": node}, alerts={"mqtt_unit_topic_prefix": prefix})
        async with running(cfg) as gw:
            from gateway.auth.passwords import hash_password
            from gateway.db.models import User

            async with gw.services.db.session() as s:
                s.add(User(username="chief", password_hash=hash_password("correct-horse-1"), role="admin"))
                await s.commit()
            tok = (await gw.client.post("/api/auth/token", data={"username": "chief", "password": "correct-horse-1"})).json()["access_token"]
            h = {"Authorization": f"Bearer {tok}"}
            for uid, parent in (("county", "root"), ("office-a", "county"), ("office-b", "county")):
                assert (await gw.client.post("/api/units", headers=h, json={"id": uid, "name": uid, "parent_id": parent})).status_code == 201
            for o in ("a", "b"):
                assert (await gw.client.post("/api/persons", headers=h, json={"id": f"p{o}", "name": o, "unit_id": f"office-{o}"})).status_code == 201
            from tests.waiting import wait_for
            await wait_for(lambda: gw.services.push.units.persons.get("pb") == "office-b" and "office-b" in gw.services.push.units.paths, 30, "the index")
            b = await gw.services.alerts.raise_alert("tamper", person_id="pb", device_id="tb")
            a = await gw.services.alerts.raise_alert("sos", person_id="pa", device_id="ta")
            topic, body = await asyncio.wait_for(got["a"].get(), 15)
            assert topic == f"{prefix}/root/county/office-a/alerts/red/sos/pa" and body["id"] == a["id"]
            seen = [(await asyncio.wait_for(got["county"].get(), 15))[1]["id"] for _ in range(2)]
            assert seen == [b["id"], a["id"]]
            await gw.services.alerts.assign(b["id"], "chief", unit_id="office-a")
            topic, body = await asyncio.wait_for(got["a"].get(), 15)
            assert body["id"] == b["id"] and body["change"] == "assigned" and topic.startswith(f"{prefix}/root/county/office-a/alerts/")
    finally:
        for sub in subs:
            sub.loop_stop()
            sub.disconnect()
