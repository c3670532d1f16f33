"""Video calls between the console and a kiosk terminal, both in Chromium with fake cameras
(the terminal's plays a real portrait from ../shared/data/faces, the face_recognition
project's public samples).

An officer calls the kiosk from the video sessions page: it rings on the terminal, which
answers; the terminal hangs up. Then the person at the terminal presses "call the duty
officer": the call rings in the officer's console (whatever page is open), the officer
answers in the call window, and when the officer hangs up the terminal says the call ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, paired_kiosk, signed_in
from tests.kiosk.media import letterboxed, write_y4m

SLOW_MS = 60_000


def test_officer_calls_a_kiosk_and_a_kiosk_calls_the_officer(make_config: Any, start_live_gateway: Any, api_as: Any, camera_context: Any,
                                                               shared_data: Path, tmp_path: Path) -> None:
    live = start_live_gateway(make_config())
    admin = api_as(live, "chief")

    terminal_cam = write_y4m([letterboxed(shared_data / "faces" / "obama.jpg")] * 5, tmp_path / "terminal.y4m", fps=5)
    officer_cam = write_y4m([np.full((480, 640, 3), (40, 90, 200), np.uint8)] * 5, tmp_path / "officer.y4m", fps=5)
    errors: list[str] = []

    kctx = camera_context(live, terminal_cam, SLOW_MS, viewport={"width": 1280, "height": 900})
    paired_kiosk(admin, kctx, location="一楼大厅")
    kiosk = kctx.new_page()
    kiosk.on("pageerror", lambda exc: errors.append(str(exc)))
    kiosk.on("dialog", lambda d: d.accept())
    kiosk.goto("/kiosk")
    expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "online")  # its heartbeat went through

    live.add_user("officer-li", "officer", PASSWORD)
    officer = signed_in(camera_context(live, officer_cam, SLOW_MS, viewport={"width": 1440, "height": 900}), "officer-li", errors)

    # 1. the officer calls the kiosk; it rings there and is answered
    officer.goto("/console/calls")
    expect(officer.locator("#page")).to_have_attribute("data-ready", "1")
    form = officer.locator("form.call-new")
    form.locator("[name=device_id]").select_option("kiosk-1")
    form.locator("button[type=submit]").click()
    window = officer.locator("#call-dock .call-window")
    expect(window).to_have_attribute("data-state", "connected")
    kiosk.locator(".k-ringing .k-answer").click()
    expect(kiosk.locator(".k-call-state")).to_have_attribute("data-state", "connected")
    expect(window.locator(".call-parties li[data-role=kiosk][data-state=connected]")).to_be_visible()
    kiosk.locator(".k-hangup").click()
    expect(window.locator(".call-parties li[data-role=kiosk][data-state=left]")).to_be_visible()
    kiosk.locator(".k-done[data-state=ended] .k-primary").click()  # back to the home screen
    window.locator(".call-hangup").click()
    expect(window.locator(".call-note")).to_contain_text("已封存为执法过程")
    window.locator(".call-close").click()

    # 2. the terminal calls the duty officer: it rings on the console, on another page
    officer.goto("/console/alerts")
    kiosk.locator(".k-home .k-call").click()
    expect(kiosk.locator(".k-call")).to_be_visible()
    ring = officer.locator("#call-dock .call-ring")
    expect(ring).to_contain_text("大厅一号机")
    ring.locator(".call-answer").click()
    expect(window).to_have_attribute("data-state", "connected")
    expect(window.locator(".call-parties li[data-state=connected]")).to_have_count(2)
    expect(kiosk.locator(".k-call-state")).to_have_attribute("data-state", "connected")
    # the press is also an alert for the duty officer (through the outbox when offline)
    assert any(a["kind"] == "assistance_requested" for a in admin.get("/api/alerts").json())
    window.locator(".call-hangup").click()
    expect(window.locator(".call-note")).to_contain_text("已封存为执法过程")
    expect(kiosk.locator(".k-done[data-state=ended]")).to_be_visible(timeout=SLOW_MS)  # its connection lost, joining again is refused
    calls = admin.get("/api/calls").json()
    assert [c["state"] for c in calls] == ["ended", "ended"] and all(c["proceeding_id"] for c in calls)
    assert not errors, errors
