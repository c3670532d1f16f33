"""Remote check-in from a phone, in Chromium against a real gateway. An officer sends a
check-in link from the person's page in the console (zh-CN); a phone (a mobile viewport,
zh-CN, its position granted, a fake camera playing a real portrait whose head turns a little:
../shared/data/faces/obama.jpg through tests/kiosk/media.py) opens it, sees whose link it is,
checks in, and is told it passed and where it stands against the person's zones. The console
then shows the link used, and the check-in with its position verdict on the person's
timeline and on the check-ins page. Passive liveness only: answering a random challenge with a
looping fake camera is another question (the kiosk's, tests/faces for the API)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.kiosk.media import turning_frames, write_y4m

SLOW_MS = 60_000  # a check-in is face analysis of five frames on a loaded 2-core machine
HOME = {"latitude": 31.2301, "longitude": 121.4702, "accuracy": 15}


def test_an_officer_sends_a_link_and_the_phone_checks_in(make_config: Any, start_live_gateway: Any, api_as: Any, console_page: Any, camera_browser: Any,
                                                         shared_data: Path, tmp_path: Path) -> None:
    live = start_live_gateway(make_config(thresholds={"faces": {"active_liveness": {"required": False}}}))
    admin = api_as(live, "chief")
    assert admin.post("/api/persons", json={"id": "p-obama", "name": "奥巴马"}).status_code == 201
    photo = (shared_data / "faces" / "obama.jpg").read_bytes()
    assert admin.post("/api/persons/p-obama/photos", files={"file": ("o.jpg", photo, "image/jpeg")}, timeout=60).status_code == 201
    zone = {"id": "home", "name": "居住地", "kind": "inclusion", "geometry": {"type": "Point", "coordinates": [121.47, 31.23]}, "radius_m": 1000,
            "person_ids": ["p-obama"]}
    assert admin.post("/api/zones", json=zone).status_code == 201

    console = console_page(live, "officer-li", "officer", lang="zh-CN")
    console.goto("/console/person?id=p-obama")
    expect(console.locator("#page")).to_have_attribute("data-ready", "1")
    section = console.locator(".checkin-links")
    section.locator("select[name=valid_minutes]").select_option("30")
    section.locator(".btn-send-link").click()
    expect(section.locator(".btn-send-link")).to_have_text("发送签到链接")
    url = section.locator("input.link-url").input_value()
    assert re.fullmatch(r"http://[^/]+/remote#[A-Za-z0-9_-]{43}", url), url
    expect(section.locator("[data-role=expiry]")).to_contain_text("有效至")
    link_id = section.locator(".link-made").get_attribute("data-id")
    row = section.locator(f"table.links tr[data-id='{link_id}']")
    expect(row).to_have_attribute("data-state", "unused")

    video = write_y4m(turning_frames(shared_data / "faces" / "obama.jpg"), tmp_path / "turning.y4m")
    phone_browser = camera_browser(video)
    context = phone_browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                        geolocation=HOME, permissions=["camera", "geolocation"])
    phone = context.new_page()
    errors: list[str] = []
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    phone.goto(url)
    expect(phone.locator(".r-intro")).to_contain_text("奥巴马")
    expect(phone).to_have_url(re.compile(r"/remote$"))  # the token left the address bar
    phone.locator(".r-start").tap()
    done = phone.locator(".r-done")
    expect(done).to_have_attribute("data-state", "accepted", timeout=SLOW_MS)
    expect(done.locator(".r-big")).to_have_text("签到成功")
    expect(done.locator(".r-where")).to_have_attribute("data-verdict", "ok")
    checkin_id = done.get_attribute("data-checkin")
    assert checkin_id

    # the link is used up: opened again, the phone is told so
    again = context.new_page()
    again.goto(url)
    expect(again.locator(".r-done")).to_have_attribute("data-status", "409")

    # the console: the link used (pushed), the check-in with its position on the timeline and the check-ins page
    expect(row).to_have_attribute("data-state", "used", timeout=SLOW_MS)
    item = console.locator(f"[data-role=timeline] li[data-kind=checkin][data-id='{checkin_id}']")
    expect(item.locator(".position-verdict")).to_have_attribute("data-verdict", "ok", timeout=SLOW_MS)
    expect(item).to_contain_text(f"手机（链接 #{link_id}）")
    console.goto("/console/checkins")
    checkin_row = console.locator(f"table.checkins tr[data-id='{checkin_id}']")
    expect(checkin_row.locator(".position-verdict")).to_have_attribute("data-verdict", "ok")
    expect(checkin_row).to_contain_text("位于规定区域内")
    assert errors == [], errors
