"""Issue 19's walk-through: every write path of the console as its users take it, in zh-CN and
in en, against a gateway started by the README's own command (`gateway demo`, what `./dev
demo` runs after installing; its simulators play meanwhile).

An officer registers a person and enrolls a photo from a file (a real portrait from
../shared/data/faces); an admin registers a tracker for them; the officer draws the area they
must stay in on the map and assigns it; the tracker simulator (over the demo's MQTT broker)
walks out of it; the alert appears on a monitor's dashboard and wall screen; the officer
acknowledges it with a note and resolves it. The admin adds a camera served by GStreamer's
RTSP server: live and recording within 10 s, without a restart; the officer starts and stops
an announcement from its live tile and the export verifies. A monitor sees no write control,
and the server refuses each write. Screenshots of the dashboard and wall in zh-CN."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import httpx
import pytest
from playwright.sync_api import expect

from simulators.tracker import run_tracker
from tests.cameras.conftest import gst_server  # noqa: F401  (the GStreamer RTSP server fixture)
from tests.conftest import SHARED_DATA, require_peer
from tests.e2e.conftest import SHOTS, sign_in
from tests.e2e.demo import running_demo
from tests.e2e.test_console_fonts import DRAW
from tests.faces.conftest import small_jpeg
from tests.gps.helpers import offset
from tests.waiting import wait_for_blocking


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """`gateway demo` in a subprocess, its printed passwords, its embedded broker's URL.
    Shorter recording segments (an environment override, as any setting can have) so that a
    proceeding has sealed segments within seconds."""
    require_peer(SHARED_DATA.is_dir(), f"real test data at {SHARED_DATA}")
    with running_demo(tmp_path_factory.mktemp("walk-demo"), env={"GATEWAY_RECORDING__SEGMENT_S": "2"}) as demo:
        tokens = {name: httpx.post(f"{demo.url}/api/auth/token", data={"username": name, "password": pw}).json()["access_token"]
                  for name, pw in demo.passwords.items()}
        demo.api = {name: httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {tok}"}, timeout=60) for name, tok in tokens.items()}
        demo.cookies = {}
        yield demo


def signed_in(anonymous_page: Any, demo: SimpleNamespace, user: str, lang: str) -> Any:
    """A page of `user` in a browser context of its own: signed in through the login form the
    first time, then with the session cookie it got (as a browser keeps it; the gateway allows
    only a few sign-ins a minute from one address)."""
    if user in demo.cookies:
        page = anonymous_page(demo, lang, storage_state={"cookies": demo.cookies[user], "origins": []})
        page.goto("/console")
    else:
        page = anonymous_page(demo, lang)
        page.goto("/login")
        sign_in(page, user, demo.passwords[user])
        page.wait_for_url(re.compile(r"/console/"))
        demo.cookies[user] = page.context.cookies()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    return page


def go(page: Any, path: str, ready: str = "1") -> None:
    page.goto(path)
    expect(page.locator("#page")).to_have_attribute("data-ready", ready)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_write_path_as_a_user_takes_it(lang: str, demo: SimpleNamespace, anonymous_page: Any, gst_server: Any, tmp_path: Path) -> None:  # noqa: F811
    zh = lang == "zh-CN"
    tag = "zh" if zh else "en"
    pid, trk, cam = f"p-walk-{tag}", f"trk-walk-{tag}", f"cam-walk-{tag}"
    admin_api, monitor_api = demo.api["admin"], demo.api["monitor"]
    officer = signed_in(anonymous_page, demo, "officer", lang)
    admin = signed_in(anonymous_page, demo, "admin", lang)
    monitor = signed_in(anonymous_page, demo, "monitor", lang)
    expect(monitor.locator("#page")).to_have_attribute("data-page", "dashboard")  # a monitor's landing page

    # -- a person, from the persons page, and a photo from a file on their page
    officer.locator("#nav a[href='/console/persons']").click()
    expect(officer.locator("#page")).to_have_attribute("data-ready", "1")
    officer.locator("details.person-add > summary").click()
    form = officer.locator("form.person-form")
    form.locator("[name=id]").fill(pid)
    form.locator("[name=name]").fill("周七" if zh else "Zhou Qi")
    form.locator("[name=category]").fill("社区矫正对象")
    form.locator("[name=supervision_level]").select_option("strict")
    form.locator("button[type=submit]").click()
    expect(officer.locator("#page")).to_have_attribute("data-page", "person")
    photo = tmp_path / "portrait.jpg"
    # one portrait per run: the second person with the same face would be refused as a duplicate
    photo.write_bytes(small_jpeg(SHARED_DATA / "faces" / ("obama.jpg" if zh else "biden.jpg")))
    officer.locator("input[type=file]").first.set_input_files(str(photo))
    expect(officer.locator("figure.photo")).to_have_count(1, timeout=60_000)
    expect(officer.locator("figure.photo")).to_contain_text("已采用" if zh else "Accepted")

    # -- a tracker for them, registered by the admin
    go(admin, "/console/devices")
    admin.locator("details.device-add > summary").click()
    form = admin.locator("form.device-register")
    form.locator("[name=kind]").select_option("tracker")
    form.locator("[name=id]").fill(trk)
    form.locator("[name=person_id]").select_option(pid)
    form.locator("button[type=submit]").click()
    expect(admin.locator(f"table.devices tr[data-id='{trk}']")).to_have_count(1)

    # -- the area they must stay in, drawn on the map and assigned to them
    go(officer, "/console/map")
    officer.locator("[data-role=draw-polygon]").click()
    box = officer.locator("#gw-map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-70, -70), (70, -70), (70, 70), (-70, 70), (-70, -70)):
        officer.mouse.click(cx + dx, cy + dy)
    form = officer.locator("form.zone-form")
    form.locator("[name=id]").fill(f"walk-{tag}")
    form.locator("[name=name]").fill("居住地" if zh else "Home area")
    form.locator("[name=person_ids]").select_option([pid])
    form.locator("[name=dwell_s]").fill("0")
    form.locator("button[type=submit]").click()
    expect(officer.locator(f"[data-role=zone-list] li[data-zone='walk-{tag}']")).to_have_count(1)
    zone = admin_api.get(f"/api/zones/walk-{tag}").json()
    assert zone["person_ids"] == [pid] and zone["kind"] == "inclusion"
    ring = zone["geometry"]["coordinates"][0]
    lat0, lon0 = sum(p[1] for p in ring[:-1]) / 4, sum(p[0] for p in ring[:-1]) / 4

    # -- the monitor's dashboard and wall screen are open when the tracker walks out
    wall = signed_in(anonymous_page, demo, "monitor", lang)
    go(wall, "/console/wall")
    route = {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in (offset(0, e, lat0, lon0) for e in (0, 1000, 2000, 4000))]}
    walk = {"route": route, "speed_mps": 20, "interval_s": 5, "accuracy_m": 5}
    done = threading.Event()
    threading.Thread(target=lambda: (asyncio.run(run_tracker(walk, demo.mqtt_url, speed=20, device_id=trk, seed=3)), done.set()), daemon=True).start()

    found: list[dict[str, Any]] = []

    def exit_alert() -> bool:
        found[:] = admin_api.get("/api/alerts", params={"person_id": pid, "kind": "inclusion_exit"}).json()
        return any(a["zone_id"] == f"walk-{tag}" for a in found)

    wait_for_blocking(exit_alert, 90, lambda: f"the exit alert of {pid}; so far {found}", interval=0.5)
    alert = next(a for a in found if a["zone_id"] == f"walk-{tag}")
    assert alert["level"] == "orange"
    expect(monitor.locator(f".newest-alerts li[data-id='{alert['id']}']")).to_be_visible()
    expect(wall.locator(f".wall-alerts li[data-id='{alert['id']}'][data-level=orange]")).to_be_visible()
    if zh:
        SHOTS.mkdir(parents=True, exist_ok=True)
        for page, name in ((monitor, "walk-dashboard-zh-CN.png"), (wall, "walk-wall-zh-CN.png")):
            same, blank = page.evaluate(DRAW, ["态", "势"])
            assert not same and not blank  # Chinese glyphs, not boxes, in this browser
            page.screenshot(path=str(SHOTS / name), full_page=True)
    assert done.wait(60)

    # -- acknowledged with a note, then resolved, by the officer
    go(officer, "/console/alerts")
    row = officer.locator(f"tr.alert-row[data-id='{alert['id']}']")
    row.locator("input.note").fill("已电话联系本人" if zh else "called him")
    row.locator(".btn-ack").click()
    expect(row.locator(".state")).to_have_text("已确认" if zh else "Acknowledged")
    row.locator(".btn-resolve").click()
    wait_for_blocking(lambda: admin_api.get(f"/api/alerts/{alert['id']}").json()["state"] == "resolved", 15, "the alert resolved")
    handled = admin_api.get(f"/api/alerts/{alert['id']}").json()
    assert handled["acknowledged_by"] == "officer" and handled["resolved_by"] == "officer"
    assert any(n["action"] == "acknowledged" and n["text"] == ("已电话联系本人" if zh else "called him") for n in handled["notes"])

    # -- a camera added from the console: live and recording within 10 s, no restart
    srv = gst_server("high", auth=("viewer", f"pw-{tag}-1"))
    go(admin, "/console/devices")
    admin.locator("details.device-add > summary").click()
    form = admin.locator("form.device-register")
    form.locator("[name=kind]").select_option("camera")
    form.locator("[name=id]").fill(cam)
    form.locator("[name=name]").fill("宣告室" if zh else "Announcement room")
    form.locator("[name=url]").fill(srv.url)
    form.locator("[name=username]").fill("viewer")
    form.locator("[name=password]").fill(f"pw-{tag}-1")
    form.locator("[name=room_kind]").select_option("announcement")
    form.locator("button[type=submit]").click()
    expect(admin.locator(f"table.devices tr[data-id='{cam}']")).to_have_count(1)
    wait_for_blocking(lambda: any(c["id"] == cam and c["state"] == "online" and c["recording"] for c in admin_api.get("/api/cameras").json()),
                      10, "the new camera online and recording", interval=0.2)
    go(officer, "/console/live")
    officer.wait_for_function(f"() => {{ const v = document.querySelector('.live-tile[data-camera=\"{cam}\"] video'); return v && v.videoWidth > 0; }}",
                              timeout=30_000)

    # -- an announcement started and stopped from its live tile; the export verifies
    tile = officer.locator(f".live-tile[data-camera='{cam}']")
    tile.locator("[name=kind]").select_option("announcement")
    tile.locator("[name=person_id]").select_option(pid)
    tile.locator("[name=case_ref]").fill(f"宣-{tag}")
    tile.locator(".btn-start").click()
    expect(tile.locator(".rec-badge")).to_be_visible()
    running = [p for p in admin_api.get("/api/proceedings").json() if p["state"] == "recording" and p["person_id"] == pid]
    assert len(running) == 1
    proceeding = running[0]["id"]
    wait_for_blocking(lambda: sum(1 for r in admin_api.get("/api/recordings", params={"camera_id": cam}).json() if r["sha256"]) >= 2, 60,
                      "segments recorded during the proceeding", interval=0.3)
    tile.locator(".btn-stop").click()
    sealed = tile.locator(f".sealed[data-proceeding='{proceeding}']")
    expect(sealed).to_be_visible()
    row = admin_api.get(f"/api/proceedings/{proceeding}").json()
    assert row["state"] == "sealed"
    r = admin_api.get(f"/api/proceedings/{proceeding}/export", timeout=120)
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        canonical = z.read("manifest.canonical.json")
        assert hashlib.sha256(canonical).hexdigest() == row["manifest_sha256"] == z.read("manifest.sha256").decode().split()[0]
        with av.open(io.BytesIO(z.read(f"proceeding-{proceeding}-{cam}.mp4"))) as c:
            assert sum(1 for _ in c.decode(video=0)) >= 15  # a second of video at least, from the export alone
    verified = admin_api.post(f"/api/proceedings/{proceeding}/verify").json()
    assert verified["ok"] is True

    # -- a monitor: no write control anywhere, and the server refuses each write
    for path, control in (("/console/persons", "details.person-add"), (f"/console/person?id={pid}", "details.person-edit"),
                          ("/console/devices", "details.device-add"), ("/console/map", "[data-role=draw-polygon]"),
                          ("/console/live", ".btn-start")):
        go(monitor, path)
        expect(monitor.locator(control)).to_have_count(0)
    go(monitor, "/console/users", ready="forbidden")  # and no menu entry for it
    expect(monitor.locator("#nav a[href='/console/users']")).to_have_count(0)
    refused = {
        "person": monitor_api.post("/api/persons", json={"name": "x"}).status_code,
        "person edit": monitor_api.patch(f"/api/persons/{pid}", json={"notes": "x"}).status_code,
        "device": monitor_api.post("/api/devices", json={"id": "x-1", "kind": "tracker"}).status_code,
        "zone": monitor_api.post("/api/zones", json={"kind": "inclusion", "geometry": zone["geometry"]}).status_code,
        "zone edit": monitor_api.patch(f"/api/zones/walk-{tag}", json={"level": "red"}).status_code,
        "proceeding": monitor_api.post("/api/proceedings", json={"kind": "talk", "person_id": pid, "camera_ids": [cam]}).status_code,
        "resolve": monitor_api.post(f"/api/alerts/{alert['id']}/resolve", json={}).status_code,
        "user": monitor_api.post("/api/users", json={"username": "x", "password": "correct-horse-1", "role": "admin"}).status_code,
    }
    assert set(refused.values()) == {403}, refused
