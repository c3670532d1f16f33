"""Enrolling a photo from the browser's camera (getUserMedia) on the person's page, in
Chromium with a fake camera that shows a real photograph: ../shared/data/faces/obama.jpg
(a public portrait, the face_recognition project's sample) written into a y4m file, which
Chromium plays as its camera (--use-file-for-fake-video-capture). The server checks the
frame like any uploaded photo and enrolls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, sign_in
from tests.kiosk.media import letterboxed, write_y4m


def test_an_officer_enrolls_a_photo_from_the_camera(live_gateway: Any, api_as: Any, camera_browser: Any, shared_data: Path, tmp_path: Path) -> None:
    live = live_gateway
    admin = api_as(live, "chief")
    assert admin.post("/api/persons", json={"id": "p-cam", "name": "奥巴马"}).status_code == 201
    live.add_user("wang", "officer", PASSWORD)
    video = write_y4m([letterboxed(shared_data / "faces" / "obama.jpg")] * 10, tmp_path / "face.y4m")
    context = camera_browser(video).new_context(base_url=live.url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=live.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    sign_in(page, "wang", PASSWORD)
    page.wait_for_selector("#page[data-ready]")  # signed in: the console's first page
    page.goto("/console/person?id=p-cam")
    page.wait_for_selector("#page[data-ready]")
    page.locator(".btn-camera").click()
    page.wait_for_function("() => { const v = document.querySelector('video.enroll-preview'); return v && v.videoWidth > 0 && v.currentTime > 0.2; }")
    page.locator(".btn-capture").click()
    expect(page.locator("[role=status][data-verdict]")).to_have_attribute("data-verdict", "accepted")
    expect(page.locator("figure.photo")).to_have_count(1)
    photos = admin.get("/api/persons/p-cam/photos").json()
    assert len(photos) == 1 and photos[0]["quality"]["face_px"] >= 80
    assert page.evaluate("() => document.querySelector('video.enroll-preview').hidden")  # the camera is released
    assert errors == [], errors
