"""Active liveness through the kiosk app (/kiosk) in Chromium, against a real gateway, with a
fake camera (--use-file-for-fake-video-capture) playing y4m clips made from REAL photos:
../shared/data/faces/obama.jpg, obama2.jpg and obama3.jpg (the face_recognition project's
public sample photos of one person), obama.jpg enrolled.

- the person turns their head as asked (a warp of obama.jpg, simulators/challenge_frames.py):
  accepted, on screen and on the server;
- a slideshow of their still photos (obama.jpg, obama2.jpg, obama3.jpg in turn), or one still
  photo: refused;
- a clip that turns right when the gateway asks for a left turn: refused as the wrong way.

The gateway picks the challenge at random: each test restricts
`thresholds.faces.active_liveness.kinds` to `turn_left` so it knows which one is asked.

Timing: the app shows the prompt, then opens the camera and films from its first frame;
Chromium's fake camera starts its file at frame 0 each time it is opened (the next camera
open after the tracks stop plays it from the start again), so what the app films is the clip
from its start, whatever the machine's load before. The clips (tests/kiosk/media.py) are built
so that a capture starting anywhere in their first 0.8 s, with frames 150 ms or more apart,
answers the same way, and they are far longer than a capture (the loop is never filmed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import enroll, paired_kiosk
from tests.kiosk.media import challenge_clip, slideshow, write_y4m

SLOW_MS = 60_000  # a check-in is face analysis on a loaded 2-core machine
TURN_LEFT_ONLY = {"faces": {"active_liveness": {"kinds": ["turn_left"]}}}  # so the test knows what is asked
PROMPT = "请慢慢把头转向左边"
# The prompt shown, and when it appears, filming starts and the answer is on screen
# (performance.now(), ms), for the figure in docs/kiosk.md (pytest --junitxml=... -o junit_family=xunit1: the test's
# properties).
MARKS = """
window.__marks = {};
new MutationObserver(() => {
  const asked = document.querySelector(".k-camera [data-challenge]");
  if (!__marks.prompt && asked?.dataset.challenge) Object.assign(__marks, { prompt: performance.now(), kind: asked.dataset.challenge, text: asked.textContent });
  if (!__marks.filming && document.querySelector("[data-filming]")) __marks.filming = performance.now();
  if (!__marks.answer && document.querySelector(".k-done")) __marks.answer = performance.now();
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


@dataclass
class Terminal:
    page: Any
    errors: list[str] = field(default_factory=list)  # uncaught JavaScript errors


def kiosk_with_camera(live: Any, admin: Any, camera_browser: Any, shared_data: Path, video: Path) -> Terminal:
    """obama.jpg enrolled as p-obama, a paired kiosk (its key in the terminal's storage, as
    pairing leaves it: tests/e2e/test_kiosk_app.py pairs through the keypad) whose camera plays
    `video`; the app's home screen."""
    enroll(admin, "p-obama", "奥巴马", shared_data / "faces" / "obama.jpg")
    context = camera_browser(video).new_context(base_url=live.url, locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=live.url)
    paired_kiosk(admin, context)
    context.add_init_script(script=MARKS)
    terminal = Terminal(context.new_page())
    terminal.page.on("pageerror", lambda exc: terminal.errors.append(str(exc)))
    terminal.page.goto("/kiosk")
    expect(terminal.page.locator(".k-home[data-kiosk='kiosk-1']")).to_be_visible()
    return terminal


def check_in(terminal: Terminal) -> Any:
    """Check in as p-obama on the terminal's screens; the decision screen, once shown."""
    kiosk = terminal.page
    kiosk.locator(".k-home .k-checkin").click()
    kiosk.locator(".k-form [name=person_id]").fill("p-obama")
    kiosk.locator(".k-form button[type=submit]").click()
    done = kiosk.locator(".k-done")
    expect(done).to_be_visible(timeout=SLOW_MS)
    assert terminal.errors == [], terminal.errors
    # the prompt was on screen (seen by the page's observer: the camera screen may be gone
    # before a poll from here would see it)
    shown = kiosk.evaluate("window.__marks")
    assert (shown["kind"], shown["text"]) == ("turn_left", PROMPT), shown
    return done


def the_checkin(admin: Any) -> dict[str, Any]:
    items = admin.get("/api/checkins", params={"person_id": "p-obama"}).json()
    assert len(items) == 1, items
    c: dict[str, Any] = items[0]
    assert c["kiosk_id"] == "kiosk-1" and c["liveness"]["challenge"]["kind"] == "turn_left", c
    return c


def test_the_person_turning_as_asked_is_checked_in(make_config: Any, start_live_gateway: Any, api_as: Any, camera_browser: Any, shared_data: Path,
                                                   tmp_path: Path, record_property: Any) -> None:
    live = start_live_gateway(make_config(thresholds=TURN_LEFT_ONLY))
    admin = api_as(live, "chief")
    video = write_y4m(challenge_clip(shared_data / "faces" / "obama.jpg", "turn_left"), tmp_path / "turn-left.y4m")
    kiosk = kiosk_with_camera(live, admin, camera_browser, shared_data, video)

    done = check_in(kiosk)
    expect(done).to_have_attribute("data-state", "accepted")
    expect(done.locator(".k-big")).to_have_text("签到成功")
    c = the_checkin(admin)
    assert c["result"] == "accepted" and c["liveness"]["challenge"]["passed"] is True, c
    marks = kiosk.page.evaluate("window.__marks")
    record_property("prompt_to_answer_ms", round(marks["answer"] - marks["prompt"]))
    record_property("prompt_to_filming_ms", round(marks["filming"] - marks["prompt"]))
    record_property("filmed_yaw", c["liveness"]["challenge"]["details"]["yaw"])  # starts at the clip's first frame (+0.005)


@pytest.mark.parametrize("photos", [["obama.jpg", "obama2.jpg", "obama3.jpg"], ["obama.jpg"]], ids=["three-photos", "one-photo"])
def test_a_slideshow_of_still_photos_is_refused(photos: list[str], make_config: Any, start_live_gateway: Any, api_as: Any, camera_browser: Any,
                                                shared_data: Path, tmp_path: Path) -> None:
    live = start_live_gateway(make_config(thresholds=TURN_LEFT_ONLY))
    admin = api_as(live, "chief")
    video = write_y4m(slideshow([shared_data / "faces" / p for p in photos]), tmp_path / "slideshow.y4m")
    kiosk = kiosk_with_camera(live, admin, camera_browser, shared_data, video)

    done = check_in(kiosk)
    expect(done).to_have_attribute("data-state", "rejected")
    expect(done.locator(".k-big")).to_contain_text("签到未通过：liveness:")
    c = the_checkin(admin)
    # the person is the enrolled one (the refusal is the liveness check's, not the match's)
    assert c["result"] == "rejected" and c["distance"] is not None and c["distance"] < 0.55, c
    assert c["reason"].startswith("liveness:") and c["liveness"]["challenge"]["passed"] is False, c


def test_a_clip_turning_the_other_way_is_refused(make_config: Any, start_live_gateway: Any, api_as: Any, camera_browser: Any, shared_data: Path,
                                                 tmp_path: Path) -> None:
    live = start_live_gateway(make_config(thresholds=TURN_LEFT_ONLY))
    admin = api_as(live, "chief")
    # a recording of the person turning right, played when the gateway asks for a left turn
    video = write_y4m(challenge_clip(shared_data / "faces" / "obama.jpg", "turn_right"), tmp_path / "turn-right.y4m")
    kiosk = kiosk_with_camera(live, admin, camera_browser, shared_data, video)

    done = check_in(kiosk)
    expect(done).to_have_attribute("data-state", "rejected")
    expect(done.locator(".k-big")).to_contain_text("challenge turn_left not met: the head turned right, not left as asked")
    c = the_checkin(admin)
    assert c["result"] == "rejected" and c["liveness"]["challenge"]["passed"] is False, c
