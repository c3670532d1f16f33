"""The live alert feed in a real browser against a real gateway: alerts raised
on the server appear without reload, and the buttons change them on the server."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import SHOTS


def raise_alert(live, kind: str, **kw):
    return live.call(live.services.alerts.raise_alert, kind, **kw)


def test_alert_appears_live_is_acknowledged_and_resolved(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "admin")
    assert admin.post("/api/persons", json={"id": "p1", "name": "张三"}).status_code == 201
    page = console_page(live, "chen", "officer")
    expect(page.locator("table.alerts tr.empty")).to_have_text("No alerts match these filters.")

    alert = raise_alert(live, "tamper", person_id="p1", device_id="trk-7", message="case opened")
    row = page.locator(f"tr.alert-row[data-id='{alert['id']}']")
    expect(row).to_be_visible()  # pushed over the WebSocket: no reload happened
    expect(row).to_have_attribute("data-level", "red")
    expect(row).to_have_class(re.compile(r"\bfresh\b"))  # new alerts pulse for a few seconds
    expect(row.locator(".level")).to_have_text("Red")
    expect(row.locator(".alert-kind")).to_have_text("Device tampered")
    expect(row.locator(".state")).to_have_text("Open")
    expect(row).to_contain_text("张三")
    expect(row).to_contain_text("trk-7")
    expect(row.locator(".count")).to_have_text("×1")
    expect(page.locator("#alert-badge")).to_have_text("1")
    expect(page.locator("#alert-badge")).to_have_attribute("data-level", "red")

    # The same condition again updates the row, it does not add one.
    raise_alert(live, "tamper", person_id="p1", device_id="trk-7")
    expect(row.locator(".count")).to_have_text("×2")
    expect(page.locator("tr.alert-row")).to_have_count(1)

    row.locator("input.note").fill("called the officer on duty")
    row.get_by_role("button", name="Acknowledge").click()
    expect(row.locator(".state")).to_have_text("Acknowledged")
    expect(row).to_contain_text("by chen")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.locator("#alert-badge")).to_be_hidden()
    on_server = admin.get(f"/api/alerts/{alert['id']}").json()
    assert on_server["state"] == "acknowledged"
    assert on_server["acknowledged_by"] == "chen"
    assert [n["text"] for n in on_server["notes"] if n["action"] == "acknowledged"] == ["called the officer on duty"]

    row.get_by_role("button", name="Resolve").click()
    # Resolved alerts leave the default "ongoing" view...
    expect(row).to_have_count(0)
    on_server = admin.get(f"/api/alerts/{alert['id']}").json()
    assert on_server["state"] == "resolved" and on_server["resolved_by"] == "chen"
    # ...and are listed under "resolved".
    page.select_option("select[name=state]", "resolved")
    expect(page.locator(f"tr.alert-row[data-id='{alert['id']}'] .state")).to_have_text("Resolved")


def test_monitor_acknowledges_but_cannot_resolve(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    page = console_page(live, "zhou", "monitor", lang="zh-CN")
    page.goto("/console/alerts")  # a monitor lands on the dashboard
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    alert = raise_alert(live, "sos", device_id="trk-1")
    row = page.locator(f"tr.alert-row[data-id='{alert['id']}']")
    expect(row.locator(".level")).to_have_text("红色")
    expect(row.locator(".alert-kind")).to_have_text("紧急求助")
    expect(row.get_by_role("button", name="确认")).to_be_visible()
    expect(row.get_by_role("button", name="解除")).to_have_count(0)
    # The server refuses too, whatever the page shows.
    monitor = api_as(live, "zhou", "monitor")
    assert monitor.post(f"/api/alerts/{alert['id']}/resolve", json={}).status_code == 403

    row.get_by_role("button", name="确认").click()
    expect(row.locator(".state")).to_have_text("已确认")
    assert monitor.get(f"/api/alerts/{alert['id']}").json()["acknowledged_by"] == "zhou"


def test_alerts_are_ordered_by_level_and_filtered(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "admin")
    for pid, name in (("p-01", "李四"), ("p-02", "王五"), ("p-03", "赵六")):
        admin.post("/api/persons", json={"id": pid, "name": name})
    raised = [
        raise_alert(live, "low_battery", device_id="trk-3", person_id="p-03", message="battery 12%"),
        raise_alert(live, "lost_contact", device_id="trk-2", person_id="p-02"),
        raise_alert(live, "inclusion_exit", device_id="trk-1", person_id="p-01", zone_id="z-home", message="outside 取保 area by 420 m"),
        raise_alert(live, "exclusion_breach", device_id="trk-2", person_id="p-02", zone_id="z-school"),
        raise_alert(live, "camera_offline", device_id="cam-hall"),
    ]
    live.call(live.services.alerts.acknowledge, raised[2]["id"], "admin", "on the phone with him")
    page = console_page(live, "wu", "admin")
    rows = page.locator("tr.alert-row")
    expect(rows).to_have_count(5)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.level)") == ["red", "orange", "orange", "yellow", "blue"]
    expect(page.locator(".summary .chip[data-level=orange]")).to_have_text("Orange 2")

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "alerts-page.png"), full_page=True)

    page.select_option("select[name=level]", "orange")
    expect(rows).to_have_count(2)
    # A new alert outside the filter does not appear; one inside does.
    raise_alert(live, "tamper", device_id="trk-9")
    other = raise_alert(live, "curfew", device_id="trk-8")
    expect(page.locator(f"tr.alert-row[data-id='{other['id']}']")).to_be_visible()
    expect(rows).to_have_count(3)
    assert "level=orange" in page.url


def test_a_refused_action_shows_the_server_reason(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    page = console_page(live, "tang", "officer")
    # Keep this console deaf to pushes, so it still shows the alert as open
    # after a colleague has acknowledged it elsewhere.
    page.route_web_socket("**/api/events", lambda ws: None)
    page.reload()
    page.wait_for_selector("#page[data-ready]")
    alert = raise_alert(live, "curfew", device_id="trk-4")
    page.reload()
    page.wait_for_selector("#page[data-ready]")
    row = page.locator(f"tr.alert-row[data-id='{alert['id']}']")
    expect(row.locator(".state")).to_have_text("Open")
    assert api_as(live, "colleague", "monitor").post(f"/api/alerts/{alert['id']}/ack", json={"note": "mine"}).status_code == 200

    row.get_by_role("button", name="Acknowledge").click()
    expect(row.locator(".row-error")).to_have_text(f"Error: alert {alert['id']} is acknowledged; only open alerts can be acknowledged")
    expect(row.get_by_role("button", name="Acknowledge")).to_be_enabled()
    assert api_as(live, "admin").get(f"/api/alerts/{alert['id']}").json()["acknowledged_by"] == "colleague"
