"""Names on the map are text, never HTML: Leaflet's tooltips (and its attribution control)
take strings as markup, so a zone, a person or a tile attribution whose name carries
tags must show those tags literally and create no element from them."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import expect

from gateway.db.models import PositionRow
from tests.gps.helpers import LAT0, LON0, offset, square

# Each would do something visible if parsed: fetch an image, redirect the page, add a link.
ZONE_NAME = '<img src="/static/injected-zone.png" onerror="document.title=1">School <b>zone</b>'
PERSON_NAME = '<meta http-equiv="refresh" content="0;url=/login?injected=person"><img src="/static/injected-person.png">Li'
ATTRIBUTION = '<img src="/static/injected-attribution.png"><a href="/login?injected=attribution">Tiles</a>'


async def add_position(services, device_id: str, person_id: str, lat: float, lon: float) -> None:  # type: ignore[no-untyped-def]
    async with services.db.session() as s:
        s.add(PositionRow(device_id=device_id, person_id=person_id, fix_time=datetime.now(UTC), lat=lat, lon=lon, accuracy_m=5.0, source="nmea", in_order=True))
        await s.commit()


def test_zone_person_and_attribution_markup_show_as_text(make_config, start_live_gateway, console_page, api_as) -> None:
    live = start_live_gateway(make_config(console={
        "tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png",  # nothing listens there
        "tile_attribution": ATTRIBUTION, "map_center": [LAT0, LON0],
    }))
    admin = api_as(live, "chief")
    admin.post("/api/zones", json={"id": "school", "name": ZONE_NAME, "kind": "exclusion", "geometry": square(400)}).raise_for_status()
    admin.post("/api/persons", json={"id": "p-li", "name": PERSON_NAME}).raise_for_status()
    admin.post("/api/devices", json={"id": "trk-li", "kind": "tracker", "person_id": "p-li"}).raise_for_status()
    lat, lon = offset(0, 0)  # the middle of the zone
    live.call(add_position, live.services, "trk-li", "p-li", lat, lon)

    page = console_page(live, "chief", "admin")
    injected: list[str] = []
    page.on("request", lambda r: injected.append(r.url) if "injected" in r.url else None)
    page.goto("/console/map")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator("#gw-map")).to_have_attribute("data-positions", "1")
    map_url = page.url

    # The zone's tooltip (pointer on a corner of the square, away from the tracker in its middle).
    page.locator("path.zone-exclusion").hover(position={"x": 8, "y": 8})
    tip = page.locator(".leaflet-tooltip", has_text="School")
    expect(tip).to_contain_text(ZONE_NAME)
    expect(tip.locator("img, b")).to_have_count(0)

    # The tracker's tooltip names the person wearing it.
    page.locator("path.tracker").hover()
    tip = page.locator(".leaflet-tooltip", has_text="trk-li")
    expect(tip).to_contain_text(PERSON_NAME)
    expect(tip.locator("meta, img")).to_have_count(0)

    # The configured attribution is shown as text too.
    attribution = page.locator(".leaflet-control-attribution")
    expect(attribution).to_contain_text(ATTRIBUTION)
    expect(attribution.locator("img, a[href*=injected]")).to_have_count(0)

    # Nothing from the names exists anywhere in the page, nothing was fetched, no redirect.
    assert page.locator("img[src*=injected], meta[http-equiv], a[href*=injected]").count() == 0
    assert page.url == map_url
    expect(page.locator("#page")).to_have_attribute("data-page", "map")
    assert injected == []
