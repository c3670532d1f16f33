"""The command-centre dashboard and the wall screen, in zh-CN in a real browser against a
real gateway: the figures of the user's units (persons by category and level, open alerts
by colour with the oldest unacknowledged, devices by kind with the offline ones, today's
check-ins against those due, proceedings), the 30-day chart (ECharts), updates pushed over
the WebSocket; the wall screen full width without the menu, its newest red and orange
alerts, and its recovery after the gateway's socket drops. Screenshots in zh-CN."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import SHOTS, SocketGate
from tests.e2e.test_console_fonts import DRAW
from tests.waiting import page_pause, wait_for_blocking


def test_dashboard_and_wall_screen(live_gateway: Any, console_page: Any, api_as: Any) -> None:
    live = live_gateway
    admin = api_as(live, "chief")
    for pid, cat, level in (("p-1", "社区矫正对象", "strict"), ("p-2", "社区矫正对象", "ordinary"), ("p-3", "安置帮教对象", None)):
        assert admin.post("/api/persons", json={"id": pid, "name": f"人员{pid}", "category": cat, "supervision_level": level}).status_code == 201
    assert admin.post("/api/devices", json={"id": "trk-1", "kind": "tracker", "person_id": "p-1"}).status_code == 201
    assert admin.post("/api/devices", json={"id": "kiosk-1", "kind": "kiosk", "settings": {"checkins": [{"person_id": "p-2"}]}}).status_code == 201
    red = live.call(live.services.alerts.raise_alert, "exclusion_breach", person_id="p-1", device_id="trk-1")

    d = admin.get("/api/dashboard").json()
    assert d["persons"] == 3 and d["persons_by_category"] == {"社区矫正对象": 2, "安置帮教对象": 1}
    assert d["persons_by_level"] == {"strict": 1, "ordinary": 1, "none": 1}
    assert d["open_alerts"] == {"red": 1, "orange": 0, "yellow": 0, "blue": 0} and d["oldest_unacknowledged"]["id"] == red["id"]
    assert d["checkins_today"]["due"] == 1 and d["checkins_today"]["done"] == 0
    assert {x["id"] for x in d["offline_devices"]} == {"trk-1", "kiosk-1"}  # nothing heard from them yet
    assert sum(x["red"] for x in d["alerts_per_day"]) == 1 and len(d["alerts_per_day"]) == 30

    page = console_page(live, "zhou", "monitor", lang="zh-CN")
    page.locator("#nav").get_by_role("link", name="综合态势").click()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator(".dash-alerts [data-level=red]")).to_have_attribute("data-value", "1")
    expect(page.locator(".dash-persons .big")).to_have_text("3")
    expect(page.locator(".dash-chart canvas").first).to_be_visible()
    expect(page.locator(".dash-chart")).to_have_attribute("data-total", "1")
    expect(page.locator(".dash-alerts .oldest a")).to_contain_text("进入禁入区域")
    same, blank = page.evaluate(DRAW, ["态", "势"])
    assert not same and not blank  # Chinese has glyphs in this browser: the screenshot shows text
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard-zh-CN.png"), full_page=True)

    # pushed: a new orange alert shows without a reload
    live.call(live.services.alerts.raise_alert, "inclusion_exit", person_id="p-2", device_id="trk-2")
    expect(page.locator(".dash-alerts [data-level=orange]")).to_have_attribute("data-value", "1")

    wall = console_page(live, "zhou", "monitor", lang="zh-CN")
    gate = SocketGate(wall)
    wall.goto("/console/wall")
    expect(wall.locator("#page")).to_have_attribute("data-ready", "1")
    expect(wall.locator("body")).to_have_class("wall")
    expect(wall.locator("#nav")).to_be_hidden()
    expect(wall.locator(".wall-figures [data-level=red]")).to_have_attribute("data-value", "1")
    expect(wall.locator(".wall-alerts li[data-level]")).to_have_count(2)
    wall.screenshot(path=str(SHOTS / "wall-zh-CN.png"), full_page=True)
    # the socket drops (as in a gateway restart); an alert raised meanwhile is never pushed
    # to it; when the socket is back the wall reloads by itself and shows it
    expect(wall.locator("#conn")).to_have_attribute("data-state", "open")
    gate.hold = True
    gate.sockets[-1].close(code=1011, reason="gateway restarting")
    expect(wall.locator("#conn")).to_have_attribute("data-state", "connecting")
    live.call(live.services.alerts.raise_alert, "sos", person_id="p-3", device_id="kiosk-1")
    expect(wall.locator(".wall-alerts li[data-level=red]")).to_have_count(1)  # not pushed: the socket is down
    wait_for_blocking(lambda: gate.held, 30, "the wall screen retrying by itself", pause=page_pause(wall))
    gate.hold = False
    gate.held[-1].close(code=1011, reason="still down")
    expect(wall.locator(".wall-alerts li[data-level=red]")).to_have_count(2)
    expect(wall.locator(".wall-figures [data-level=red]")).to_have_attribute("data-value", "2")
