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
from websockets.sync.client import connect

from gateway.events import DeviceState
from tests.waiting import wait_for_blocking


def test_each_office_is_pushed_only_its_own(live_gateway: Any) -> None:
    gw = live_gateway
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
