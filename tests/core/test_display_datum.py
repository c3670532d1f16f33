"""With GCJ-02 map tiles (console.tile_datum: gcj02, what Chinese tile providers draw in), the
server gives the console where to draw things: an alert's place carries `display` both in the
list and in the WebSocket push, converted by the one GCJ-02 formula (drivers/gps/geo.py); with
WGS-84 tiles nothing is added. Stored and MQTT/webhook coordinates stay WGS-84."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from drivers.gps.geo import wgs84_to_gcj02
from tests.gps.helpers import LAT0, LON0
from tests.waiting import wait_for_blocking


@pytest.mark.parametrize("datum", ["gcj02", "wgs84"])
def test_alert_places_come_with_display_coordinates(datum: str, make_config: Any, start_live_gateway: Any) -> None:
    gw = start_live_gateway(make_config(console={"tile_datum": datum}, persons=[{"id": "p1", "name": "p"}]))
    gw.add_user("chief", "admin")
    token = gw.token("chief")
    ws = connect(gw.url.replace("http", "ws") + f"/api/events?token={token}")
    assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    ws.send(json.dumps({"subscribe": ["alert"]}))
    wait_for_blocking(lambda: any(c.topics == {"alert"} for c in gw.services.push.clients), 30, "the subscription")

    gw.call(gw.services.alerts.raise_alert, "sos", person_id="p1", lat=LAT0, lon=LON0)
    pushed = json.loads(ws.recv(timeout=15))["alert"]["position"]
    listed = httpx.get(f"{gw.url}/api/alerts", headers={"Authorization": f"Bearer {token}"}).json()[0]["position"]
    ws.close()
    for pos in (pushed, listed):
        assert (pos["lat"], pos["lon"]) == (LAT0, LON0)  # WGS-84 as stored
        if datum == "gcj02":
            assert pos["display"] == pytest.approx(list(wgs84_to_gcj02(LAT0, LON0)), abs=1e-9)
            assert abs(pos["display"][0] - LAT0) + abs(pos["display"][1] - LON0) > 1e-3
        else:
            assert pos.get("display") is None
