"""A remote education session between three Chromium instances, each with a fake camera made
from real photos (../shared/data/faces, the face_recognition project's public samples):

- the officer signs in to the console, sets the session up on the video sessions page and is
  joined in the call window;
- the supervised person opens their join link on a phone-sized page; their camera shows them
  for six seconds and then someone else (Biden's photo) for six, looping: an impostor swapped
  in mid-session;
- a mediator opens theirs (a photo with two people).

The gateway verifies the enrolled person at the start, raises an impostor alert when the other
face sits there, the officer starts a verification and hangs up, and the session is one sealed
proceeding whose file decodes with every party in its tile and the parties' sound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import face_recognition
import numpy as np
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, enroll, signed_in
from tests.kiosk.media import letterboxed, write_y4m
from tests.waiting import wait_for_blocking

FPS = 5
SLOW_MS = 90_000  # three browsers encoding video and the gateway mixing them, on two loaded cores


def test_three_browsers_one_recorded_session_and_an_impostor(make_config: Any, start_live_gateway: Any, api_as: Any, camera_context: Any,
                                                             shared_data: Path, tmp_path: Path) -> None:
    faces = shared_data / "faces"
    live = start_live_gateway(make_config(calls={"check_min_s": 1, "check_max_s": 2, "impostor_after": 2, "absent_after": 3}))
    admin = api_as(live, "chief")
    enroll(admin, "p-obama", "奥巴马", faces / "obama.jpg")
    enroll(admin, "p-biden", "拜登", faces / "biden.jpg")

    officer_cam = write_y4m([np.full((480, 640, 3), (40, 90, 200), np.uint8)] * FPS, tmp_path / "officer.y4m", fps=FPS)
    person_cam = write_y4m([letterboxed(faces / "obama.jpg")] * (6 * FPS) + [letterboxed(faces / "biden.jpg")] * (6 * FPS), tmp_path / "person.y4m", fps=FPS)
    mediator_cam = write_y4m([letterboxed(faces / "two_people.jpg")] * FPS, tmp_path / "mediator.y4m", fps=FPS)

    live.add_user("officer-li", "officer", PASSWORD)
    errors: list[str] = []
    officer = signed_in(camera_context(live, officer_cam, SLOW_MS, viewport={"width": 1440, "height": 900}), "officer-li", errors)
    officer.goto("/console/calls")
    expect(officer.locator("#page")).to_have_attribute("data-ready", "1")
    form = officer.locator("form.call-new")
    form.locator("[name=kind]").select_option("education")
    form.locator("[name=person_id]").select_option("p-obama")
    form.locator(".call-party-row [name=label]").first.fill("矫正对象")
    form.locator(".call-party-row [name=is_person]").first.check()
    form.get_by_role("button", name="添加参与方").click()
    form.locator(".call-party-row [name=label]").nth(1).fill("调解员")
    form.locator("button[type=submit]").click()
    window = officer.locator("#call-dock .call-window")
    expect(window).to_have_attribute("data-state", "connected", timeout=SLOW_MS)
    links = {el.get_attribute("data-party"): el.input_value() for el in form.locator("input.call-link").all()}
    assert set(links) == {"矫正对象", "调解员"} and all("/call#" in u for u in links.values())

    phones = []
    for label, cam in (("矫正对象", person_cam), ("调解员", mediator_cam)):
        page = camera_context(live, cam, SLOW_MS, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(links[label])
        expect(page.locator(".c-invite")).to_contain_text("officer-li")
        assert "#" not in page.url  # the token left the address bar
        page.locator(".c-join").click()
        expect(page.locator(".c-state")).to_have_attribute("data-state", "connected", timeout=SLOW_MS)
        phones.append(page)

    expect(window.locator(".call-parties li[data-state=connected]")).to_have_count(3, timeout=SLOW_MS)
    # verified at the start (the person's camera begins with the enrolled face)
    expect(window.locator("li[data-role=link] .call-check[data-outcome=present]")).to_be_visible(timeout=SLOW_MS)

    def impostor_alerts() -> list[dict[str, Any]]:
        return [a for a in admin.get("/api/alerts").json() if a["kind"] == "call_impostor" and a["person_id"] == "p-obama"]

    wait_for_blocking(impostor_alerts, timeout=120, what="an impostor alert")
    assert impostor_alerts()[0]["level"] == "red"
    # the officer's own "start verification"
    window.locator(".call-verify").click()
    expect(window.locator(".call-note")).to_contain_text("矫正对象", timeout=SLOW_MS)
    window.locator(".call-hangup").click()
    expect(window.locator(".call-note")).to_contain_text("已封存为执法过程", timeout=SLOW_MS)
    proceeding_id = int(window.locator(".call-note").inner_text().rsplit("#", 1)[1])
    for page in phones:  # the parties hear that the session ended
        expect(page.locator(".c-state")).to_have_attribute("data-state", "failed", timeout=SLOW_MS)

    proc = admin.get(f"/api/proceedings/{proceeding_id}").json()
    assert proc["state"] == "sealed" and proc["kind"] == "education" and proc["person_id"] == "p-obama"
    [seg] = proc["manifest"]["segments"]
    outcomes = {c["outcome"] for c in proc["manifest"]["session"]["checks"]}
    assert {"present", "impostor"} <= outcomes
    verified = admin.post(f"/api/proceedings/{proceeding_id}/verify").json()
    assert verified["ok"] is True and verified["segments"] == 1, verified
    timeline = admin.get("/api/persons/p-obama/timeline").json()
    [item] = [i for i in timeline["items"] if i["kind"] == "proceeding" and i["proceeding_kind"] == "education"]
    assert item["state"] == "sealed" and item["camera_ids"] == [] and item["verified_minutes"] > 0, item
    # played on the recordings page, from the proceedings list
    officer.goto("/console/recordings")
    expect(officer.locator("#page")).to_have_attribute("data-ready", "1")
    officer.locator(f"tr[data-id='{proceeding_id}'] button", has_text="播放").click()
    officer.wait_for_function("() => { const v = document.querySelector('#page video'); return v && v.duration > 5 && v.videoWidth === 640; }")
    # and on the person's page, with the session's mark and its verified time
    officer.goto("/console/person?id=p-obama")
    expect(officer.locator("#page")).to_have_attribute("data-ready", "1")
    expect(officer.locator(".timeline")).to_contain_text("远程视频")
    expect(officer.locator(".timeline")).to_contain_text("核验在场")

    # the file plays: every party in its tile (officer 0, person 1, mediator 2) and their sound
    path = live.services.media_dir / seg["path"]
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % 5 == 0]
    with av.open(str(path)) as c:
        loud = max(float(np.abs(f.to_ndarray()).max()) for f in c.decode(audio=0))
    assert loud > 0.01  # Chromium's fake microphones beep
    known = [face_recognition.face_encodings(face_recognition.load_image_file(str(faces / n)))[0] for n in ("obama.jpg", "biden.jpg")]

    def everyone_in(frame: np.ndarray) -> bool:
        h, w = frame.shape[0] // 2, frame.shape[1] // 2
        tile = [np.ascontiguousarray(frame[(i // 2) * h:(i // 2 + 1) * h, (i % 2) * w:(i % 2 + 1) * w]) for i in range(3)]
        blue = tile[0][40:180, 60:260].mean(axis=(0, 1))
        person = face_recognition.face_encodings(tile[1])
        return bool(blue[2] > 150 and blue[0] < 90 and person and min(np.linalg.norm(k - e) for k in known for e in person) < 0.6
                    and len(face_recognition.face_locations(tile[2])) >= 1)

    assert any(everyone_in(f) for f in frames[len(frames) // 3:]), "no frame shows all three parties"
    assert not errors, errors
