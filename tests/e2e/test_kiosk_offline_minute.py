"""A kiosk offline for a minute replays its queued check-in exactly once (Chromium, the kiosk
app /kiosk, a fake camera playing a clip made from the REAL photo
../shared/data/faces/obama.jpg, the face_recognition project's public sample; obama.jpg
enrolled).

Active liveness is required and the gateway asks `turn_left` only
(`thresholds.faces.active_liveness.kinds`), so the test knows what is asked; the camera plays
the person turning left (tests/kiosk/media.py `challenge_clip`).

The terminal is online and gets its challenge from the gateway; the network drops right
after the challenge's answer reaches it (a Playwright route that, from then on, aborts
everything under /api/kiosk), so the person's answer, filmed as asked, goes into the
terminal's IndexedDB outbox and the screen says it is kept. The terminal stays offline a
minute, its retries failing and its header saying so. Then the gateway is reachable again:
the queued check-in is sent with its gateway challenge, which has lapsed meanwhile (410); the
app sends it again as a terminal-chosen challenge of the same kind (`offline_challenge`, with
`lapsed_challenge_id`, docs/kiosk.md), which the gateway judges and accepts; that answer is
lost on its way back, so the terminal sends the same `client_ref` once more and gets the
first decision. On the
server: one check-in, accepted, its challenge judged (turn_left, passed, `issued_by:
terminal`, and `lapsed`: the gateway's challenge it answered, named by the app and confirmed
by the gateway, with when it was issued and expired); the terminal's queue is empty.

How "a minute offline" is represented, and why it is faithful:
- The terminal's minute is its own clock (Playwright's `clock.install()`): once the check-in
  is queued the test pauses the page's clock and runs it forward 5 s at a time, twelve times.
  Each step fires the app's own timers as a minute would (the outbox's 5 s retry, the 30 s
  heartbeat), and the test waits, per step, until the retry the step started has really
  failed in the page (a counter of failed check-in requests) and the screen says offline,
  with the check-in still queued. No timer of the app is shortened or called by hand.
- The gateway's side of the minute is what the gateway can notice of it: the challenge it
  issued has expired when the check-in finally arrives. The default `ttl_s` is 20 s, less
  than a minute; here it is 4 s and the test waits (polling the gateway's own clock against
  the challenge's `expires_at`) until the challenge has really expired before the network
  comes back. Nothing else the gateway keeps depends on how long the terminal was away
  within a minute: the claim of a `client_ref` is made only when a check-in arrives, and the
  kiosk watchdog (no heartbeat for `kiosks.offline_after_s`, 180 s by default) is not reached
  in a minute; so a lapse of 4 s and one of 60 s are the same to it.
This takes a few seconds of real time instead of a minute, on a loaded machine as well: every
wait is for a condition, none for a fixed time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import enroll, paired_kiosk
from tests.e2e.test_kiosk_challenge import MARKS, PROMPT
from tests.kiosk.media import challenge_clip, write_y4m
from tests.waiting import wait_for_blocking

SLOW_MS = 60_000  # a check-in is face analysis of eight frames on a loaded 2-core machine
TTL_S = 4.0  # the gateway's challenge lifetime here (default 20 s; either lapses in a minute)
CONFIG = {"faces": {"active_liveness": {"required": True, "kinds": ["turn_left"], "ttl_s": TTL_S}}}
RETRY_MS = 5_000  # the app's outbox retry (FLUSH_MS in static/kiosk/app.js)
MINUTE_MS = 60_000
# Failed check-in requests, as the page sees them: a retry counted here has finished in the app
# (its outbox run ends in the same microtask checkpoint as the failure).
COUNT_FAILURES = """
window.__checkinFailures = 0;
const realFetch = window.fetch;
window.fetch = function (input, init) {
  const p = realFetch.call(this, input, init);
  if (String(input).includes("/api/kiosk/checkins")) p.catch(() => { window.__checkinFailures += 1; });
  return p;
};
"""


def until_failed(page: Any, n: int, what: str) -> None:
    """Wait until `n` check-in requests have failed in the page (each one's outbox run over)."""
    count = "window.__checkinFailures"
    wait_for_blocking(lambda: page.evaluate(count) >= n, SLOW_MS / 1000, lambda: f"{what}: {n} failed check-in requests, saw {page.evaluate(count)}")


def form_field(body: bytes, name: str) -> str | None:
    m = re.search(rb'name="' + name.encode() + rb'"\r\n\r\n(.*?)\r\n', body)
    return m.group(1).decode() if m else None


@dataclass
class Network:
    """The terminal's way to the gateway: online until the challenge has reached the
    terminal, then every /api/kiosk request aborted until `back`; once back, the answer to
    the first check-in the gateway accepts is lost on its way to the terminal."""

    offline: bool = False
    challenge: dict[str, Any] | None = None
    aborted: list[str] = field(default_factory=list)  # "METHOD path" while offline
    sent: list[dict[str, Any]] = field(default_factory=list)  # check-ins that reached the gateway once back
    lost: int = 0

    def route(self, route: Any) -> None:
        req = route.request
        path = "/" + req.url.split("/", 3)[3]
        if self.offline:
            self.aborted.append(f"{req.method} {path}")
            route.abort()
        elif path == "/api/kiosk/challenges" and self.challenge is None:
            answer = route.fetch(timeout=SLOW_MS)
            self.challenge = answer.json()
            self.offline = True  # the network drops right after the challenge arrived
            route.fulfill(response=answer)
        elif path == "/api/kiosk/checkins" and req.method == "POST":
            body = req.post_data_buffer or b""
            answer = route.fetch(timeout=SLOW_MS)
            self.sent.append({"status": answer.status, "body": answer.json(), "client_ref": form_field(body, "client_ref"),
                              "challenge_id": form_field(body, "challenge_id"), "offline_challenge": form_field(body, "offline_challenge"),
                              "lapsed_challenge_id": form_field(body, "lapsed_challenge_id")})
            if answer.status == 200 and not self.lost:
                self.lost += 1
                route.abort()  # the gateway decided; the terminal never hears
            else:
                route.fulfill(response=answer)
        else:
            route.continue_()


def test_a_check_in_queued_for_a_minute_offline_is_replayed_once(make_config: Any, start_live_gateway: Any, api_as: Any, camera_browser: Any,
                                                                 shared_data: Path, tmp_path: Path) -> None:
    live = start_live_gateway(make_config(thresholds=CONFIG))
    admin = api_as(live, "chief")
    enroll(admin, "p-obama", "奥巴马", shared_data / "faces" / "obama.jpg")

    video = write_y4m(challenge_clip(shared_data / "faces" / "obama.jpg", "turn_left"), tmp_path / "turn-left.y4m")
    context = camera_browser(video).new_context(base_url=live.url, locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=live.url)
    paired_kiosk(admin, context)
    context.add_init_script(script=MARKS)
    context.add_init_script(script=COUNT_FAILURES)
    context.clock.install()  # the terminal's time: runs as usual until paused below
    net = Network()
    context.route("**/api/kiosk/**", net.route)
    kiosk = context.new_page()
    errors: list[str] = []
    kiosk.on("pageerror", lambda exc: errors.append(str(exc)))
    kiosk.goto("/kiosk")
    expect(kiosk.locator(".k-home[data-kiosk='kiosk-1']")).to_be_visible()
    expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "online")

    # online: the gateway's challenge; offline before the answer is sent
    kiosk.locator(".k-home .k-checkin").click()
    kiosk.locator(".k-form [name=person_id]").fill("p-obama")
    kiosk.locator(".k-form button[type=submit]").click()
    done = kiosk.locator(".k-done")
    expect(done).to_have_attribute("data-state", "queued", timeout=SLOW_MS)
    expect(done.locator(".k-big")).to_have_text("已保存，恢复连接后自动提交")
    shown = kiosk.evaluate("window.__marks")
    assert (shown["kind"], shown["text"]) == ("turn_left", PROMPT), shown  # the gateway's prompt, filmed after it
    assert net.challenge is not None and net.challenge["kind"] == "turn_left", net.challenge
    assert "POST /api/kiosk/checkins" in net.aborted, net.aborted
    expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "offline")
    expect(kiosk.locator("body")).to_have_attribute("data-queued", "1")
    failures = kiosk.evaluate("window.__checkinFailures")
    assert failures >= 1

    # a minute of the terminal's time, 5 s at a time: every retry fails, the screen says so
    started = kiosk.evaluate("Date.now()")
    kiosk.clock.pause_at((started + 1) / 1000)
    for _ in range(MINUTE_MS // RETRY_MS):
        kiosk.clock.run_for(RETRY_MS)
        failures += 1
        until_failed(kiosk, failures, "a retry failing in the page")
        expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "offline")
        expect(kiosk.locator("#k-net")).to_contain_text("离线")
        expect(kiosk.locator("body")).to_have_attribute("data-queued", "1")
    assert kiosk.evaluate("Date.now()") - started >= MINUTE_MS
    assert net.aborted.count("POST /api/kiosk/heartbeat") >= 2, net.aborted  # the 30 s heartbeats failed too
    assert net.sent == [], net.sent

    # the gateway's challenge has lapsed on the gateway's own clock
    expires_at = datetime.fromisoformat(net.challenge["expires_at"])
    wait_for_blocking(lambda: live.services.clock.now() > expires_at, 4 * TTL_S, f"the challenge to expire at {expires_at}")

    # back: the next retry sends the queue; its first accepted answer is lost
    net.offline = False
    kiosk.clock.run_for(RETRY_MS)
    until_failed(kiosk, failures + 1, "the replay whose answer is lost")
    assert [s["status"] for s in net.sent] == [410, 200], net.sent
    expect(kiosk.locator("body")).to_have_attribute("data-queued", "1")
    kiosk.clock.run_for(RETRY_MS)  # the next retry
    expect(kiosk.locator("body")).to_have_attribute("data-queued", "0", timeout=SLOW_MS)
    expect(kiosk.locator("#k-net")).to_have_attribute("data-state", "online")

    lapsed, first, replay = net.sent
    # one check-in, by one reference: first with the gateway's challenge (lapsed), then as the
    # terminal-chosen challenge of the same kind, twice (the first answer lost)
    assert len({s["client_ref"] for s in net.sent}) == 1 and lapsed["client_ref"], net.sent
    assert lapsed["challenge_id"] == net.challenge["challenge_id"] and "expired" in lapsed["body"]["detail"], lapsed
    gateway_challenge = net.challenge["challenge_id"]
    assert [(s["challenge_id"], s["offline_challenge"], s["lapsed_challenge_id"]) for s in (first, replay)] == [(None, "turn_left", gateway_challenge)] * 2, net.sent
    assert replay["status"] == 200 and replay["body"] == first["body"], net.sent  # the first decision, not a second check-in

    items = admin.get("/api/checkins", params={"person_id": "p-obama"}).json()
    assert len(items) == 1, items
    c = items[0]
    assert c["id"] == first["body"]["checkin_id"] and c["kiosk_id"] == "kiosk-1" and c["result"] == "accepted", c
    challenge = c["liveness"]["challenge"]
    assert (challenge["kind"], challenge["passed"], challenge["issued_by"]) == ("turn_left", True, "terminal"), challenge
    # ...answering the gateway's challenge, which lapsed while the check-in waited: named, and
    # confirmed by the gateway (this kiosk's, this person's, the same kind, not used before)
    lapsed = challenge["lapsed"]
    assert (lapsed["challenge_id"], lapsed["confirmed"]) == (gateway_challenge, True), lapsed
    assert datetime.fromisoformat(lapsed["expires_at"]) == expires_at, lapsed
    # it counts when it was made (after the gateway's challenge was issued), and says when it arrived (after the outage)
    assert datetime.fromisoformat(lapsed["issued_at"]) <= datetime.fromisoformat(c["at"]) < datetime.fromisoformat(c["received_at"]), (lapsed, c)
    assert datetime.fromisoformat(c["received_at"]) > expires_at, c
    assert errors == [], errors
