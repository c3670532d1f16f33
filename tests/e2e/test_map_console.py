"""The map page in a real browser: zones drawn with no tile server reachable,
and an alert raised by a simulated tracker (real Mosquitto, real MQTT driver)
appearing on the map and in its live feed without a reload."""

from __future__ import annotations

import asyncio
import threading
import uuid

from playwright.sync_api import expect

from simulators.tracker import run_tracker
from tests.gps.helpers import LAT0, LON0, forget_session, line, square


def test_tracker_alert_appears_on_map_and_in_feed(make_config, start_live_gateway, console_page, api_as, mqtt_url) -> None:
    tag = uuid.uuid4().hex[:8]
    cfg = make_config(
        mqtt={"url": mqtt_url, "client_id": f"gw-map-{tag}"},
        console={"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "map_center": [LAT0, LON0]},  # nothing listens there
        persons=[{"id": f"p-{tag}", "name": "王五"}],
        devices=[{"id": f"trk-{tag}", "kind": "tracker", "person_id": f"p-{tag}"}],
        zones=[
            {"id": f"home-{tag}", "name": "Home", "kind": "inclusion", "geometry": square(300), "dwell_s": 0, "person_ids": [f"p-{tag}"]},
            {"id": f"bar-{tag}", "name": "Bar", "kind": "exclusion", "geometry": {"type": "Point", "coordinates": [LON0 + 0.05, LAT0]}, "radius_m": 80},
        ],
    )
    live = start_live_gateway(cfg)
    try:
        page = console_page(live, "li", "officer")
        page.goto("/console/map")
        expect(page.locator("#page[data-ready='1']")).to_have_count(1)
        expect(page.locator("path.zone-inclusion")).to_have_count(1)
        expect(page.locator("path.zone-exclusion")).to_have_count(1)
        expect(page.locator("[data-role=alert-feed] li[data-id]")).to_have_count(0)

        walk = {"route": line((0, 0), (0, 800)), "speed_mps": 20, "interval_s": 5, "accuracy_m": 5}
        done = threading.Event()
        threading.Thread(target=lambda: (asyncio.run(run_tracker(walk, mqtt_url, speed=10, device_id=f"trk-{tag}", seed=1)), done.set()), daemon=True).start()

        item = page.locator("[data-role=alert-feed] li[data-kind=inclusion_exit][data-level=orange]")
        expect(item).to_have_count(1)  # updates of the same alert stay one entry
        expect(item).to_contain_text(f"p-{tag}")
        expect(page.locator("path.alert-marker.level-orange").first).to_be_visible()
        expect(page.locator("path.tracker")).to_have_count(1)  # live position marker
        assert done.wait(30)
        alerts = api_as(live, "admin").get("/api/alerts", params={"kind": "inclusion_exit", "person_id": f"p-{tag}"}).json()
        items = alerts["items"] if isinstance(alerts, dict) else alerts
        assert len(items) == 1 and items[0]["level"] == "orange"

        # The person's track over the period is drawn from the API.
        page.select_option("select[name=person]", f"p-{tag}")
        page.get_by_role("button", name="Show track").click()
        expect(page.locator("#gw-map[data-track-points]")).to_have_count(1)
        expect(page.locator("path.track-point").first).to_be_attached()
    finally:
        forget_session("127.0.0.1", 1883, f"gw-map-{tag}")
        forget_session("127.0.0.1", 1883, f"gw-map-{tag}-trackers")
        forget_session("127.0.0.1", 1883, f"sim-tracker-trk-{tag}")
