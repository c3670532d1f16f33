"""The person page's timeline and track playback in a real browser: positions ingested
through the tracker driver's pipeline (NMEA, as a tracker sends them) show as two stays and
the trip between them among the person's alert and faces seen, newest first; the kind
boxes narrow the list, the dates empty it, "Load more" appends the next page; the time
slider moved to its end puts the marker at the last fix, and playing at 600× moves it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from gateway.db.models import FaceMatch
from gateway.mqtt import Message
from simulators.tracker import nmea_fix
from tests.gps.helpers import LAT0, LON0, offset
from tests.waiting import wait_for_blocking

PID, DEV = "p-tl", "trk-tl"
FACES = 60


def fixes(t0: datetime) -> list[tuple[datetime, float, float, float]]:
    """Home for 12 minutes, a 1.2 km walk in 10 (reporting 2 m/s), work for 12: a fix every 30 s."""
    out = [(t0 + timedelta(seconds=30 * k), *offset(k % 2, 0), 0.0) for k in range(25)]  # a metre of scatter
    out += [(t0 + timedelta(minutes=12, seconds=30 * (k + 1)), *offset(0, 60 * (k + 1)), 2.0) for k in range(20)]
    out += [(t0 + timedelta(minutes=23, seconds=30 * k), *offset(k % 2, 1260), 0.0) for k in range(25)]
    return out


def test_timeline_and_track_playback(make_config: Any, start_live_gateway: Any, console_page: Any, api_as: Any) -> None:
    cfg = make_config(
        console={"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "map_center": [LAT0, LON0]},  # nothing listens there
        persons=[{"id": PID, "name": "赵六"}],
        devices=[{"id": DEV, "kind": "tracker", "person_id": PID}],
    )
    live = start_live_gateway(cfg)
    t0 = (datetime.now(UTC) - timedelta(minutes=40)).replace(microsecond=0)
    track = fixes(t0)
    batch = [Message(f"trackers/{DEV}/nmea", nmea_fix(t, lat, lon, speed_mps=v).encode(), 1, False, n + 1) for n, (t, lat, lon, v) in enumerate(track)]
    live.call(live.areas.trackers.handle, batch)

    async def faces_seen() -> None:  # older than the positions: the second page
        async with live.services.db.session() as s:
            s.add_all(FaceMatch(camera_id="cam-door", person_id=PID, at=t0 - timedelta(minutes=1, seconds=30 * k), distance=0.4) for k in range(FACES))
            await s.commit()
    live.call(faces_seen)
    live.call(live.services.alerts.raise_alert, "curfew", person_id=PID, device_id=DEV, message="out after 22:00")
    api = api_as(live, "admin")
    wait_for_blocking(lambda: len(api.get(f"/api/devices/{DEV}/positions", params={"limit": 500}).json()) == len(track), 30, "the positions stored")

    page = console_page(live, "li", "officer")
    page.goto(f"/console/person?id={PID}")
    expect(page.locator("#page[data-ready='1']")).to_have_count(1)
    items = page.locator("[data-role=timeline] > li")
    expect(items).to_have_count(50)
    # newest first: the alert, work, the walk, home, then the faces seen before
    expect(items.nth(0)).to_have_attribute("data-kind", "alert")
    assert [items.nth(k).get_attribute("data-kind") for k in range(1, 5)] == ["stay", "trip", "stay", "face"]
    ats = items.evaluate_all("els => els.map(e => Date.parse(e.dataset.at))")
    assert ats == sorted(ats, reverse=True)
    # the trip: from home's last fix to work's first (each took in the walk's first or last 60 m: within 100 m)
    expect(items.nth(2)).to_contain_text("1.14 km in 10 min · top speed 7.2 km/h · 18 positions")
    expect(items.nth(3)).to_contain_text("stayed 13 min")  # home: 12 minutes, and the half minute to the first 60 m
    expect(items.nth(0)).to_contain_text("out after 22:00")

    # Load more: the rest of the faces seen, appended; then no more
    more = page.locator("[data-role=more]")
    expect(more).to_be_visible()
    more.click()
    expect(items).to_have_count(4 + FACES)
    expect(more).to_be_hidden()
    ats = items.evaluate_all("els => els.map(e => Date.parse(e.dataset.at))")
    assert ats == sorted(ats, reverse=True) and len(set(items.evaluate_all("els => els.map(e => e.dataset.kind + e.dataset.id)"))) == 4 + FACES

    # the kinds: stays only
    for kind in ("alert", "checkin", "face", "proceeding", "evidence", "trip"):
        page.locator(f"[data-role=kinds] label[data-kind={kind}] input").uncheck()
    expect(page.locator("[data-role=timeline] > li:not([data-kind=stay])")).to_have_count(0)
    expect(items).to_have_count(2)
    page.locator("[data-role=kinds] label[data-kind=face] input").check()
    expect(items).to_have_count(50)
    expect(page.locator("[data-role=timeline] > li[data-kind=alert]")).to_have_count(0)
    # dates: a day long after: nothing; cleared: everything again
    page.locator("[data-role=since]").fill("2099-01-01")
    expect(items).to_have_count(0)
    page.locator("[data-role=since]").fill("")
    expect(items).to_have_count(50)

    # playback: the slider at its end puts the marker at the last fix
    player = page.locator("[data-role=playback]")
    expect(player).to_have_attribute("data-fixes", str(len(track)))
    expect(player).to_have_attribute("data-index", "0")
    slider = page.locator("[data-role=slider]")
    slider.evaluate("el => { el.value = el.max; el.dispatchEvent(new Event('input', { bubbles: true })); }")
    last = len(track) - 1
    expect(player).to_have_attribute("data-index", str(last))
    assert datetime.fromisoformat(player.get_attribute("data-fix-time") or "") == track[-1][0]
    lat, lon = float(player.get_attribute("data-lat") or 0), float(player.get_attribute("data-lon") or 0)
    assert abs(lat - track[-1][1]) < 1e-5 and abs(lon - track[-1][2]) < 1e-5  # NMEA keeps 1e-5 minutes
    marker = page.locator("path.track-marker")
    expect(marker).to_have_count(1)
    end_box = marker.bounding_box()
    # ... and back to the start, then played at 600×: the marker moves along, to the end
    slider.evaluate("el => { el.value = 0; el.dispatchEvent(new Event('input', { bubbles: true })); }")
    expect(player).to_have_attribute("data-index", "0")
    start_box = marker.bounding_box()
    assert start_box and end_box and start_box != end_box
    page.locator("[data-role=speed]").select_option("600")
    page.locator("[data-role=play]").click()
    expect(player).to_have_attribute("data-index", re.compile(r"^[1-9]\d*$"))
    expect(player).to_have_attribute("data-playing", "0")  # 34 minutes of track at 600×: about 3.5 s
    expect(player).to_have_attribute("data-index", str(last))

    # the newest stay's "play on the map": the player shows that stay's fixes only (work, and the walk's last)
    page.locator("[data-role=timeline] > li[data-kind=stay]").first.locator("[data-role=play-item]").click()
    expect(player).to_have_attribute("data-fixes", "26")


def test_timeline_in_chinese(make_config: Any, start_live_gateway: Any, console_page: Any) -> None:
    cfg = make_config(persons=[{"id": PID, "name": "赵六"}], devices=[{"id": DEV, "kind": "tracker", "person_id": PID}])
    live = start_live_gateway(cfg)
    t0 = (datetime.now(UTC) - timedelta(minutes=40)).replace(microsecond=0)
    live.call(live.areas.trackers.handle, [Message(f"trackers/{DEV}/nmea", nmea_fix(t, lat, lon, speed_mps=v).encode(), 1, False, n + 1)
                                           for n, (t, lat, lon, v) in enumerate(fixes(t0))])
    page = console_page(live, "zhang", "officer", lang="zh-CN")
    page.goto(f"/console/person?id={PID}")
    expect(page.locator("[data-role=timeline] > li")).to_have_count(3)
    expect(page.locator("[data-role=timeline] > li[data-kind=stay]").first).to_contain_text("停留")
    expect(page.locator("[data-role=timeline] > li[data-kind=trip]")).to_contain_text("公里")
    expect(page.locator("[data-role=kinds]")).to_contain_text("行程")
    expect(page.locator("[data-role=play]")).to_have_text("播放")
