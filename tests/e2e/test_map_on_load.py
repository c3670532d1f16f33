"""The map shows what is already going on when it opens, not only what is pushed after: the
open alerts (feed and rings), each tracker in its person's state colour (the level of their
most severe ongoing alert), and a click on a tracker opens the person's page."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import expect

from gateway.db.models import PositionRow


def test_open_alerts_and_state_colours_on_load(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "admin")
    for pid in ("p-red", "p-calm"):
        assert admin.post("/api/persons", json={"id": pid, "name": f"人员 {pid}"}).status_code == 201
        assert admin.post("/api/devices", json={"id": f"trk-{pid}", "kind": "tracker", "person_id": pid}).status_code == 201

    async def positions() -> None:
        async with live.services.db.session() as s:
            s.add(PositionRow(device_id="trk-p-red", person_id="p-red", fix_time=datetime.now(UTC), lat=31.2304, lon=121.4737))
            s.add(PositionRow(device_id="trk-p-calm", person_id="p-calm", fix_time=datetime.now(UTC), lat=31.2310, lon=121.4750))
            await s.commit()
    live.call(positions)
    red = live.call(live.services.alerts.raise_alert, "exclusion_breach", person_id="p-red", device_id="trk-p-red", lat=31.2304, lon=121.4737)
    done = live.call(live.services.alerts.raise_alert, "sos", person_id="p-calm", device_id="trk-p-calm")
    live.call(live.services.alerts.resolve, done["id"], "admin")

    page = console_page(live, "zhou", "monitor")
    page.locator("#nav").get_by_role("link", name="Map").click()
    feed = page.locator("[data-role=alert-feed] li[data-id]")
    expect(feed).to_have_count(1)  # the resolved one is not listed
    expect(feed.first).to_have_attribute("data-id", str(red["id"]))
    expect(page.locator("path.alert-marker.level-red")).to_have_count(1)
    expect(page.locator("path.tracker[data-device='trk-p-red']")).to_have_attribute("data-level", "red")
    expect(page.locator("path.tracker[data-device='trk-p-calm']")).to_have_attribute("data-level", "none")

    # resolved while the page is open: the ring goes, the tracker turns calm
    live.call(live.services.alerts.resolve, red["id"], "admin")
    expect(page.locator("path.alert-marker")).to_have_count(0)
    expect(page.locator("path.tracker[data-device='trk-p-red']")).to_have_attribute("data-level", "none")

    page.locator("path.tracker[data-device='trk-p-red']").click(force=True)
    expect(page.locator("#page")).to_have_attribute("data-page", "person")
    assert "id=p-red" in page.url
