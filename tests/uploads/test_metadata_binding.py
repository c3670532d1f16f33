"""Body-cam metadata is not trusted (issue 16): the device's own binding (person, officer)
wins over the uploader's Upload-Metadata, metadata values are validated at creation, and
a value placed in an MQTT topic can never change the topic's structure."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.alerts.delivery import alert_topic
from tests.conftest import running
from tests.uploads.conftest import Cam, make_mp4
from tests.uploads.test_pipeline import upload
from tests.uploads.test_protocol import TUS, Gw, meta

PERSONS = """
persons:
  - {id: p1, name: Bound}
  - {id: p2, name: Someone else}
"""


async def _bodycam(r: Any, admin: dict[str, str], device_id: str, person_id: str | None, officer: str | None) -> Cam:
    body: dict[str, Any] = {"id": device_id, "kind": "bodycam", "settings": {"officer": officer} if officer else {}}
    if person_id:
        body["person_id"] = person_id
    resp = await r.client.post("/api/devices", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    return Cam(device_id, resp.json()["key"])


@pytest.fixture
async def gw(make_config):  # type: ignore[no-untyped-def]
    async with running(make_config(PERSONS, uploads={"max_size_bytes": 10 * 1024**2, "min_free_bytes": 0})) as r:
        admin = await r.login("adm", "admin")
        cams = [await _bodycam(r, admin, "bc-p1", "p1", "officer-7"), await _bodycam(r, admin, "bc-free", None, None)]
        yield Gw(r, cams, admin)


async def test_device_binding_wins_over_claimed_person_and_officer(gw: Gw, clip: Path, tmp_path: Path) -> None:
    ev = await upload(gw, clip.read_bytes(), person_id="p2", officer="boss", case_ref="C-1")
    assert ev["device_id"] == "bc-p1" and ev["person_id"] == "p1" and ev["officer"] == "officer-7", ev
    assert ev["case_ref"] == "C-1"
    received = ev["custody"][0]
    assert received["action"] == "received"
    assert received["details"]["metadata_ignored"] == {"person_id": "p2", "officer": "boss"}, received
    # Claims that agree with the binding are not noted.
    same = await upload(gw, make_mp4(tmp_path / "same.mp4", seconds=1, seed=31).read_bytes(), person_id="p1", officer="officer-7")
    assert same["person_id"] == "p1" and "metadata_ignored" not in same["custody"][0]["details"], same["custody"]
    # A body-cam bound to nobody files nothing under a person or an officer it names itself.
    free = await upload(gw, make_mp4(tmp_path / "free.mp4", seconds=1, seed=32).read_bytes(), cam_index=1, person_id="p2", officer="boss")
    assert free["device_id"] == "bc-free" and free["person_id"] is None and free["officer"] is None, free
    assert free["custody"][0]["details"]["metadata_ignored"] == {"person_id": "p2", "officer": "boss"}
    # A user uploading for a body-cam (docking station) gets the same rule.
    data = make_mp4(tmp_path / "dock.mp4", seconds=1, seed=33).read_bytes()
    r = await gw.c.post("/api/uploads/", headers={**TUS, **gw.admin, "Content-Type": "application/offset+octet-stream", "Upload-Length": str(len(data)),
                                                  "Upload-Metadata": meta(device_id="bc-p1", person_id="p2")}, content=data)
    assert r.status_code == 201 and r.headers["upload-offset"] == str(len(data)), r.text
    dock = (await gw.c.get("/api/evidence", params={"sha256": hashlib.sha256(data).hexdigest()}, headers=gw.admin)).json()
    assert [(e["person_id"], e["officer"]) for e in dock] == [("p1", "officer-7")], dock
    assert (await gw.c.get("/api/evidence", params={"person_id": "p2"}, headers=gw.admin)).json() == []


@pytest.mark.parametrize(("key", "value"), [
    ("person_id", "x/+/#"), ("person_id", "p1\x00"), ("person_id", "a" * 65), ("person_id", "p 1"),
    ("officer", "boss/+"), ("officer", "o\nx"), ("officer", "o" * 65),
    ("case_ref", "C-1\x00"), ("case_ref", "C" * 101), ("case_ref", "<script>"),
    ("device_id", "bc-p1/#"),
])
async def test_bad_metadata_values_are_refused_at_creation(gw: Gw, key: str, value: str) -> None:
    before = gw.rejected("bad_metadata")
    kv = {"device_id": gw.cams[0].id, key: value}
    r = await gw.c.post("/api/uploads/", headers={**TUS, **gw.cams[0].headers, "Upload-Length": "1000", "Upload-Metadata": meta(**kv)})
    assert r.status_code == 400, (key, value, r.status_code, r.text)
    assert key in r.text, r.text
    assert gw.rejected("bad_metadata") == before + 1


async def test_real_world_labels_are_accepted(gw: Gw) -> None:
    for kv in ({"case_ref": "（2026）沪0101刑初123号"}, {"case_ref": "C-2026/17 #3"}, {"officer": "赵警官"}, {"person_id": "p-0001.a_b"}):
        r = await gw.create(1000, **kv)
        assert r.status_code == 201, (kv, r.text)


def test_alert_topic_levels_cannot_be_changed_by_ids() -> None:
    for hostile in ("x/+/#", "#", "+", "a/b", "p\x00q", "/", "%2F", "", None):
        for field in ("person_id", "kind", "level"):
            alert = {"level": "yellow", "kind": "upload_quarantined", "person_id": "p1", field: hostile}
            topic = alert_topic("gateway/alerts", alert)
            levels = topic.split("/")
            assert len(levels) == 5 and levels[:2] == ["gateway", "alerts"], (hostile, field, topic)
            assert not any(c in topic for c in "+#\x00"), topic
            assert all(levels), topic  # no empty level either
    assert alert_topic("gateway/alerts", {"level": "red", "kind": "sos", "person_id": "p-0001"}) == "gateway/alerts/red/sos/p-0001"
    # distinct ids stay distinct topics (the escape is reversible)
    assert alert_topic("g", {"level": "red", "kind": "sos", "person_id": "a/b"}) != alert_topic("g", {"level": "red", "kind": "sos", "person_id": "a%2Fb"})


async def test_quarantined_upload_alert_arrives_on_the_bound_persons_topic(make_config: Any, mqtt_url: str) -> None:
    """Real Mosquitto: the alert of a quarantined upload from a body-cam bound to p1, whose
    metadata claims p2, is published on .../yellow/upload_quarantined/p1."""
    node = f"t{uuid.uuid4().hex[:8]}"
    prefix = f"test-{node}/alerts"
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    subscribed = asyncio.Event()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{node}")
    sub.on_message = lambda c, u, m: loop.call_soon_threadsafe(received.put_nowait, (m.topic, json.loads(m.payload)))
    sub.on_subscribe = lambda *a: loop.call_soon_threadsafe(subscribed.set)
    sub.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=1)
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    try:
        await asyncio.wait_for(subscribed.wait(), 30)
        cfg = make_config(PERSONS, mqtt={"url": mqtt_url, "client_id": f"gw-{node}"}, gateway={"node_id": node},
                          alerts={"mqtt_topic_prefix": prefix}, uploads={"max_size_bytes": 10 * 1024**2, "min_free_bytes": 0})
        async with running(cfg) as r:
            admin = await r.login("adm", "admin")
            cam = await _bodycam(r, admin, "bc-p1", "p1", "officer-7")
            data = b"not a video" * 300
            md = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                          {"filename": "x.mp4", "device_id": cam.id, "recorded_at": "2026-11-20T08:30:00Z", "person_id": "p2"}.items())
            resp = await r.client.post("/api/uploads/", content=data, headers={**TUS, **cam.headers, "Content-Type": "application/offset+octet-stream",
                                                                                "Upload-Length": str(len(data)), "Upload-Metadata": md})
            assert resp.status_code == 201, resp.text
            topic, body = await asyncio.wait_for(received.get(), 30)
            assert topic == f"{prefix}/yellow/upload_quarantined/p1", topic
            assert body["kind"] == "upload_quarantined" and body["person_id"] == "p1" and body["device_id"] == "bc-p1", body
    finally:
        sub.loop_stop()
        sub.disconnect()
