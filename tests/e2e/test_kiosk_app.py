"""The kiosk terminal's app (/kiosk) in Chromium against a real gateway, with a fake camera
playing a real portrait (../shared/data/faces/obama.jpg, the face_recognition project's public
sample) whose head turns a little (tests/kiosk/media.py).

An admin shows a pairing code in the console; typed on the terminal it gives the terminal its
key. A person checks in (accepted). Then the gateway is out of reach: the screen says so, a
check-in and an SOS wait in the terminal's IndexedDB. When the gateway is back the queue is
sent in order; the first answer is lost on the way back (the gateway made the check-in, the
terminal never heard), so the terminal sends it again, and the gateway answers with the first
decision: one check-in and one SOS alert on the server, not two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.kiosk.media import turning_frames, write_y4m
from tests.waiting import wait_for_blocking

SLOW_MS = 60_000  # a check-in is face analysis of five frames on a loaded 2-core machine


def test_pair_check_in_and_replay_after_an_outage(make_config: Any, start_live_gateway: Any, api_as: Any, console_page: Any, camera_browser: Any, shared_data: Path, tmp_path: Path) -> None:
    # passive liveness: this is about pairing and the queue (the challenges: tests/faces)
    live = start_live_gateway(make_config(thresholds={"faces": {"active_liveness": {"required": False}}}))
    admin = api_as(live, "chief")
    assert admin.post("/api/persons", json={"id": "p-obama", "name": "奥巴马"}).status_code == 201
    photo = (shared_data / "faces" / "obama.jpg").read_bytes()
    assert admin.post("/api/persons/p-obama/photos", files={"file": ("o.jpg", photo, "image/jpeg")}, timeout=60).status_code == 201
    assert admin.post("/api/devices", json={"id": "kiosk-1", "kind": "kiosk", "name": "大厅一号机", "settings": {"location": "一楼大厅"}}).status_code == 201

    console = console_page(live, "chief", "admin", lang="zh-CN")
    console.goto("/console/devices")
    expect(console.locator("#page")).to_have_attribute("data-ready", "1")
    console.locator("table.devices tr[data-id='kiosk-1'] .btn-pair").click()
    code = console.locator(".pairing-code").inner_text().replace(" ", "")
    assert len(code) == 8 and code.isdigit()

    video = write_y4m(turning_frames(shared_data / "faces" / "obama.jpg"), tmp_path / "turning.y4m")
    terminal_browser = camera_browser(video)
    context = terminal_browser.new_context(base_url=live.url, locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=live.url)
    kiosk = context.new_page()
    errors: list[str] = []
    kiosk.on("pageerror", lambda exc: errors.append(str(exc)))
    kiosk.on("dialog", lambda d: d.accept())
    kiosk.goto("/kiosk")
    for digit in code:  # on the terminal's own keypad
        kiosk.locator(".k-keypad .k-key", has_text=digit).first.click()
    kiosk.locator(".k-pair button[type=submit]").click()
    expect(kiosk.locator(".k-home[data-kiosk='kiosk-1']")).to_be_visible()
    expect(kiosk.locator("#k-title")).to_have_text("大厅一号机 · 一楼大厅")
    expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "online")
    assert api_as(live, "chief").post("/api/kiosk/pair", json={"code": code}).status_code == 409  # used once

    def check_in() -> None:
        kiosk.locator(".k-home .k-checkin").click()
        kiosk.locator(".k-form [name=person_id]").fill("p-obama")
        kiosk.locator(".k-form button[type=submit]").click()

    check_in()
    expect(kiosk.locator(".k-done")).to_have_attribute("data-state", "accepted", timeout=SLOW_MS)
    kiosk.locator(".k-done .k-btn").click()

    # the gateway out of reach
    context.route("**/api/kiosk/**", lambda route: route.abort())
    check_in()
    expect(kiosk.locator(".k-done")).to_have_attribute("data-state", "queued", timeout=SLOW_MS)
    expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "offline")
    kiosk.locator(".k-done .k-btn").click()
    kiosk.locator(".k-home .k-sos").click()
    expect(kiosk.locator(".k-done")).to_have_attribute("data-state", "queued")
    expect(kiosk.locator("body")).to_have_attribute("data-queued", "2")
    kiosk.reload()  # a power cut meanwhile: the queue is on disk
    expect(kiosk.locator("body")).to_have_attribute("data-queued", "2")

    # back, but the first answer is lost on its way to the terminal
    lost: list[int] = []

    def lose_first_answer(route: Any) -> None:
        if not lost:
            lost.append(route.fetch(timeout=SLOW_MS).status)  # the gateway makes the check-in...
            route.abort()  # ...and the terminal never hears
        else:
            route.continue_()

    # (routes registered later run first: check-ins reach the gateway from now on, with the
    # first answer lost; the rest stays out of reach until the outage route goes)
    context.route("**/api/kiosk/checkins", lose_first_answer)
    context.unroute("**/api/kiosk/**")
    kiosk.evaluate("window.dispatchEvent(new Event('online'))")
    expect(kiosk.locator("body")).to_have_attribute("data-queued", "0", timeout=SLOW_MS)
    expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "online")
    assert lost == [200]

    checkins = admin.get("/api/checkins", params={"person_id": "p-obama"}).json()
    items = checkins["items"] if isinstance(checkins, dict) else checkins
    assert len([c for c in items if c["kiosk_id"] == "kiosk-1"]) == 2, items  # the online one and the replayed one, once
    wait_for_blocking(lambda: len(admin.get("/api/alerts", params={"kind": "sos", "device_id": "kiosk-1"}).json()) == 1, 15, "the SOS alert")
    assert errors == [], errors
