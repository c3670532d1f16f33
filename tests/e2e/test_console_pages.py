"""Devices, persons and audit pages in a real browser against a real gateway."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from gateway.events import DeviceState, DeviceStatus
from tests.waiting import wait_for_blocking


def publish(live, event) -> None:
    live.call(live.services.bus.publish, event)


def test_devices_show_state_changes_pushed_live(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "admin")
    admin.post("/api/persons", json={"id": "p1", "name": "张三"}).raise_for_status()
    for body in ({"id": "trk-1", "kind": "tracker", "name": "手环 1", "person_id": "p1"}, {"id": "cam-1", "kind": "camera", "name": "谈话室", "enabled": False, "settings": {"url": "rtsp://127.0.0.1:9/talk"}}, {"id": "kiosk-1", "kind": "kiosk"}):
        admin.post("/api/devices", json=body).raise_for_status()
    page = console_page(live, "he", "monitor")
    page.locator("#nav").get_by_role("link", name="Devices").click()
    rows = page.locator("table.devices tbody tr")
    expect(rows).to_have_count(3)
    tracker = page.locator("table.devices tr[data-id='trk-1']")
    expect(tracker).to_have_attribute("data-state", "unknown")
    expect(tracker).to_contain_text("Tracker")
    expect(tracker).to_contain_text("张三")  # the person it is worn by, by name

    publish(live, DeviceState(device_id="trk-1", kind="tracker", state="online"))
    expect(tracker).to_have_attribute("data-state", "online")
    expect(tracker.locator(".dstate")).to_have_text("Online")
    expect(page.locator(".toolbar .muted")).to_have_text("1 online · 0 offline · 2 unknown")

    publish(live, DeviceStatus(device_id="trk-1", battery=15))
    expect(tracker.locator("td.battery-low")).to_have_text("15%")

    publish(live, DeviceState(device_id="trk-1", kind="tracker", state="offline", reason="last will"))
    expect(tracker.locator(".dstate")).to_have_text("Offline")
    # The page shows what the server holds (its store is another subscriber of the same
    # event: it may commit a moment after the push reached the page).
    wait_for_blocking(lambda: admin.get("/api/devices/trk-1").json()["state"] == "offline", 15, "the server to hold trk-1 offline")

    page.select_option("select[name=state]", "offline")
    expect(rows).to_have_count(1)


def test_persons_list_searches_and_opens_a_person(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "admin")
    for pid, name in (("p1", "张三"), ("p2", "李四"), ("p3", "Li Lei")):
        admin.post("/api/persons", json={"id": pid, "name": name, "category": "probation"}).raise_for_status()
    page = console_page(live, "ma", "officer", lang="zh-CN")
    page.locator("#nav").get_by_role("link", name="人员", exact=True).click()
    rows = page.locator("table.persons tbody tr")
    expect(rows).to_have_count(3)
    page.fill("input[name=q]", "李")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("李四")
    rows.first.locator("td").nth(2).click()
    expect(page).to_have_url(re.compile(r"/console/person\?id=p2$"))
    expect(page.locator("#page")).to_have_attribute("data-page", "person")
    expect(page.locator("#nav a[aria-current=page]")).to_have_text("人员")


def test_admin_reads_the_audit_log(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "root")
    admin.post("/api/persons", json={"id": "p9", "name": "钱七"}).raise_for_status()
    page = console_page(live, "auditor", "admin")
    page.locator("#nav").get_by_role("link", name="Audit log").click()
    table = page.locator("table.audit")
    expect(table.locator("tr", has_text="auth.login").first).to_contain_text("auditor")
    page.fill("input[name=action]", "person.")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text("person:p9")
    expect(table.locator("tbody tr")).to_contain_text("root")
