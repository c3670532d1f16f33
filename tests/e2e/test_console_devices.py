"""Devices from the console against a real gateway: an admin adds a camera served by
GStreamer's RTSP server (with credentials; the password is write-only) and it plays live
and records within 10 s, without a restart; registers a kiosk, whose key is shown once and
works, and issues a new one (the old stops working); disables the camera. A monitor sees no
write control."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from tests.cameras.conftest import gst_server  # noqa: F401  (the GStreamer RTSP server fixture)
from tests.waiting import wait_for_blocking


def beat(live: Any, key: str) -> int:
    return httpx.post(f"{live.url}/api/kiosk/heartbeat", json={"state": "ok"}, headers={"X-Device-Key": key}).status_code


def test_an_admin_adds_a_camera_live_and_a_kiosk_with_its_key(make_config, start_live_gateway, console_page, api_as, gst_server) -> None:  # noqa: F811
    srv = gst_server("high", auth=("viewer", "s3cret-pass"))
    live = start_live_gateway(make_config(recording={"segment_s": 2, "pre_roll_s": 2, "stall_s": 3, "open_timeout_s": 3, "min_free_bytes": 0}))
    admin = api_as(live, "chief")
    page = console_page(live, "chief", "admin", lang="zh-CN")
    page.locator("#nav").get_by_role("link", name="设备").click()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    page.locator("details.device-add > summary").click()
    form = page.locator("form.device-register")
    form.locator("[name=kind]").select_option("camera")
    form.locator("[name=id]").fill("cam-new")
    form.locator("[name=name]").fill("谈话室摄像机")
    form.locator("[name=url]").fill(srv.url)
    form.locator("[name=username]").fill("viewer")
    form.locator("[name=password]").fill("s3cret-pass")
    form.locator("[name=room_kind]").select_option("counselling")
    form.locator("button[type=submit]").click()
    expect(page.locator("table.devices tr[data-id='cam-new']")).to_have_count(1)
    dev = admin.get("/api/devices/cam-new").json()
    assert dev["has_password"] is True and "s3cret-pass" not in str(dev)

    # live and recording within 10 s, without a restart
    wait_for_blocking(lambda: any(c["id"] == "cam-new" and c["state"] == "online" and c["recording"] for c in admin.get("/api/cameras").json()),
                      10, "the new camera online and recording", interval=0.2)
    page.goto("/console/live")
    page.wait_for_selector("#page[data-ready]")
    page.wait_for_function("() => { const v = document.querySelector('.live-tile[data-camera=\"cam-new\"] video'); return v && v.videoWidth > 0; }",
                           timeout=20_000)

    # a kiosk: the key is shown once, and works; a new key replaces it
    page.goto("/console/devices")
    page.wait_for_selector("#page[data-ready]")
    page.locator("details.device-add > summary").click()
    form = page.locator("form.device-register")
    form.locator("[name=kind]").select_option("kiosk")
    form.locator("[name=id]").fill("kiosk-new")
    form.locator("[name=location]").fill("一楼大厅")
    form.locator("button[type=submit]").click()
    key = page.locator("details.device-add .key-box code.device-key").inner_text()
    assert key.startswith("dk_") and beat(live, key) == 200
    assert key not in admin.get("/api/devices/kiosk-new").text
    page.once("dialog", lambda d: d.accept())
    page.locator("table.devices tr[data-id='kiosk-new'] .btn-newkey").click()
    new_key = page.locator(".key-shown code.device-key")
    expect(new_key).to_have_count(1)
    assert new_key.inner_text() != key and beat(live, new_key.inner_text()) == 200 and beat(live, key) == 401
    # the key shown at registration, which no longer works, is gone
    expect(page.locator("details.device-add .key-box")).to_have_count(0)

    # a bad setting is the server's 422, shown next to the form
    form.locator("[name=kind]").select_option("camera")
    form.locator("[name=id]").fill("cam-bad")
    form.locator("[name=url]").fill("rtsp://viewer:pw@127.0.0.1/cam")  # credentials in a URL are refused
    form.locator("button[type=submit]").click()
    error = form.locator(".field-error[data-field=url]")  # next to the field it is about
    expect(error).to_contain_text("username and password")
    # corrected, the message goes with the next try
    form.locator("[name=url]").fill("rtsp://127.0.0.1:9/cam")
    form.locator("[name=id]").fill("cam-ok")
    form.locator("button[type=submit]").click()
    expect(page.locator("table.devices tr[data-id='cam-ok']")).to_have_count(1)
    expect(form.locator(".field-error")).to_have_count(0)

    page.once("dialog", lambda d: d.accept())
    page.locator("table.devices tr[data-id='cam-new'] .btn-disable").click()
    wait_for_blocking(lambda: admin.get("/api/devices/cam-new").json()["enabled"] is False, 10, "the camera disabled")
    wait_for_blocking(lambda: not any(c["id"] == "cam-new" for c in admin.get("/api/cameras").json()), 15, "the camera gone from the grid")

    monitor = console_page(live, "zhou", "monitor")
    monitor.goto("/console/devices")
    expect(monitor.locator("#page")).to_have_attribute("data-ready", "1")
    expect(monitor.locator("details.device-add")).to_have_count(0)
    expect(monitor.locator(".btn-disable")).to_have_count(0)
