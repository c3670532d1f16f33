"""Zones drawn on the map in a real browser (Leaflet-Geoman from npm), against a real gateway:
an officer draws an inclusion area with the mouse, names it, assigns a person and a curfew
window and saves it; the server's refusals (a polygon that crosses itself, a taken id) are
shown next to the field; the zone is edited (level, dragged corner) and deleted; a monitor
sees no drawing control and the server refuses their write. With GCJ-02 tiles the server
converts what is drawn and what is pushed: the browser has no datum code."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from drivers.gps.geo import wgs84_to_gcj02
from gateway.events import Position
from tests.gps.helpers import LAT0, LON0
from tests.waiting import wait_for_blocking


def map_centre(page) -> tuple[float, float]:
    box = page.locator("#gw-map").bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def click_polygon(page, corners: list[tuple[float, float]]) -> None:
    """Click each corner (pixels from the map's centre), then the first again to close it."""
    cx, cy = map_centre(page)
    for dx, dy in [*corners, corners[0]]:
        page.mouse.click(cx + dx, cy + dy)


def zone_by_name(admin, name: str) -> dict | None:
    return next((z for z in admin.get("/api/zones").json() if z["name"] == name), None)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_an_officer_draws_edits_and_deletes_a_zone(lang, make_config, start_live_gateway, console_page, api_as) -> None:
    tag = uuid.uuid4().hex[:6]
    cfg = make_config(
        console={"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "map_center": [LAT0, LON0]},  # nothing listens there
        persons=[{"id": f"p-{tag}", "name": "张三"}, {"id": f"q-{tag}", "name": "李四"}],
    )
    live = start_live_gateway(cfg)
    admin = api_as(live, "chief")
    page = console_page(live, "li", "officer", lang=lang)
    page.goto("/console/map")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator("[data-role=zones]")).to_have_attribute("data-zones", "0")

    page.locator("[data-role=draw-polygon]").click()
    click_polygon(page, [(-80, -80), (80, -80), (80, 80), (-80, 80)])
    form = page.locator("form.zone-form")
    expect(form).to_be_visible()
    form.locator("[name=name]").fill(f"居住地 {tag}")
    form.locator("[name=person_ids]").select_option([f"p-{tag}"])
    form.locator("[data-role=add-window]").click()
    row = form.locator(".schedule-row").first
    row.locator("input[name=start]").fill("22:00")
    row.locator("input[name=end]").fill("06:00")
    row.locator("input[name=day][value='7']").uncheck()
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-role=zones]")).to_have_attribute("data-zones", "1")
    expect(page.locator("path.zone-inclusion")).to_have_count(1)

    zone = zone_by_name(admin, f"居住地 {tag}")
    assert zone is not None and zone["kind"] == "inclusion" and zone["person_ids"] == [f"p-{tag}"]
    assert zone["schedule"] == [{"days": [1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00"}]
    ring = zone["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    # the map opened on the configured centre: the square drawn around it holds it
    assert min(lats) < LAT0 < max(lats) and min(lons) < LON0 < max(lons)

    # A bow-tie: the server refuses it and says why, next to the shape.
    page.locator("[data-role=draw-polygon]").click()
    click_polygon(page, [(-300, -60), (-200, 60), (-200, -60), (-300, 60)])
    form.locator("[name=name]").fill("crossed")
    form.locator("button[type=submit]").click()
    error = form.locator(".field-error[data-field=geometry]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Self-intersection")
    assert zone_by_name(admin, "crossed") is None
    form.get_by_role("button", name="取消" if lang == "zh-CN" else "Cancel").click()
    expect(page.locator("path.zone")).to_have_count(1)

    # A circle under an id that is taken: 409, next to the id.
    page.locator("[data-role=draw-circle]").click()
    cx, cy = map_centre(page)
    page.mouse.click(cx + 250, cy)
    page.mouse.click(cx + 290, cy)
    form.locator("[name=id]").fill(zone["id"])
    form.locator("[name=kind]").select_option("exclusion")
    form.locator("button[type=submit]").click()
    expect(form.locator(".field-error[data-field=id]")).to_contain_text("exists")
    form.locator("[name=id]").fill(f"bar-{tag}")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-role=zones]")).to_have_attribute("data-zones", "2")
    circle = admin.get(f"/api/zones/bar-{tag}").json()
    assert circle["kind"] == "exclusion" and circle["geometry"]["type"] == "Point" and circle["radius_m"] > 100

    # Edit: another level, the first corner dragged outwards.
    page.locator(f"[data-role=zone-list] li[data-zone='{zone['id']}'] [data-role=edit-zone]").click()
    form.locator("[name=level]").select_option("red")
    corner = page.locator(".marker-icon:not(.marker-icon-middle)").first
    expect(corner).to_be_visible()
    before = corner.bounding_box()
    assert before is not None
    page.mouse.move(before["x"] + before["width"] / 2, before["y"] + before["height"] / 2)
    page.mouse.down()
    page.mouse.move(before["x"] - 40, before["y"] - 40, steps=5)
    page.mouse.up()
    form.locator("button[type=submit]").click()
    wait_for_blocking(lambda: admin.get(f"/api/zones/{zone['id']}").json()["level"] == "red", 10, "the new level")
    edited = admin.get(f"/api/zones/{zone['id']}").json()
    assert edited["geometry"] != zone["geometry"]  # the dragged corner
    assert edited["schedule"] == zone["schedule"] and edited["person_ids"] == zone["person_ids"]

    page.on("dialog", lambda d: d.accept())
    page.locator(f"[data-role=zone-list] li[data-zone='bar-{tag}'] [data-role=edit-zone]").click()
    form.locator("[data-role=delete-zone]").click()
    expect(page.locator("[data-role=zones]")).to_have_attribute("data-zones", "1")
    assert admin.get(f"/api/zones/bar-{tag}").status_code == 404
    audit = admin.get("/api/audit", params={"limit": 50}).json()
    actions = {e["action"] for e in (audit["items"] if isinstance(audit, dict) else audit)}
    assert {"zone.created", "zone.updated", "zone.deleted"} <= actions

    # A monitor sees the zones but no control, and the server refuses the write.
    monitor = console_page(live, "watch", "monitor", lang=lang)
    monitor.goto("/console/map")
    expect(monitor.locator("[data-role=zones]")).to_have_attribute("data-zones", "1")
    expect(monitor.locator("[data-role=draw-polygon]")).to_have_count(0)
    expect(monitor.locator("[data-role=edit-zone]")).to_have_count(0)
    r = api_as(live, "watch", "monitor").post("/api/zones", json={"kind": "inclusion", "geometry": zone["geometry"]})
    assert r.status_code == 403


def test_with_gcj02_tiles_the_server_converts_drawn_zones_and_pushed_positions(make_config, start_live_gateway, console_page, api_as) -> None:
    tag = uuid.uuid4().hex[:6]
    cfg = make_config(
        console={"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "tile_datum": "gcj02", "map_center": [LAT0, LON0]},
        persons=[{"id": f"p-{tag}", "name": "王五"}],
        devices=[{"id": f"trk-{tag}", "kind": "tracker", "person_id": f"p-{tag}"}],
    )
    live = start_live_gateway(cfg)
    admin = api_as(live, "chief")
    page = console_page(live, "li", "officer")
    page.goto("/console/map")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")

    page.locator("[data-role=draw-circle]").click()
    cx, cy = map_centre(page)
    page.mouse.click(cx, cy)
    page.mouse.click(cx + 40, cy)
    form = page.locator("form.zone-form")
    form.locator("[name=id]").fill(f"home-{tag}")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-role=zones]")).to_have_attribute("data-zones", "1")
    z = admin.get(f"/api/zones/home-{tag}").json()
    # drawn on GCJ-02 tiles at the map's centre, which the server gave as GCJ-02 of the
    # configured WGS-84 centre: stored back in WGS-84, within a pixel of that centre
    assert z["datum"] == "gcj02" and z["geometry_input"] is not None
    lon, lat = z["geometry"]["coordinates"]
    assert abs(lat - LAT0) < 1e-4 and abs(lon - LON0) < 1e-4
    glat, glon = wgs84_to_gcj02(LAT0, LON0)
    assert abs(glat - LAT0) + abs(glon - LON0) > 1e-3  # the datums differ here by hundreds of metres

    # A position pushed live is drawn where the server says: GCJ-02 of the fix.
    fix_lat, fix_lon = LAT0 + 0.002, LON0 + 0.003
    fix = Position(device_id=f"trk-{tag}", person_id=f"p-{tag}", fix_time=datetime.now(UTC), lat=fix_lat, lon=fix_lon)
    live.call(live.services.bus.publish, fix)  # as the trackers area publishes a decoded fix
    marker = page.locator(f"path.tracker[data-device='trk-{tag}']")
    expect(marker).to_have_count(1)
    want = wgs84_to_gcj02(fix_lat, fix_lon)
    expect(marker).to_have_attribute("data-latlng", f"{want[0]:.6f},{want[1]:.6f}")
