"""`gateway demo` (the README's first command, minus the install) serves the
console; a person logs in through Chromium with the printed password and sees
every device of the demo site come online as the simulators report."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import httpx

from tests.e2e.conftest import sign_in
from tests.e2e.demo import running_demo
from tests.waiting import wait_for_blocking


def test_demo_serves_console_and_login_works(anonymous_page, tmp_path: Path, shared_data: Path) -> None:
    # `--faces`: one folder per demo person; the kiosk enrolls the first photo and checks in
    faces = tmp_path / "faces" / "p-0001"
    faces.mkdir(parents=True)
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama-480p.jpg"):
        (faces / name).symlink_to(shared_data / "faces" / name)
    with running_demo(tmp_path / "demo", "--faces", str(faces.parent)) as demo:
        passwords, url = demo.passwords, demo.url
        assert len(set(passwords.values())) == 3  # one each: a monitor does not know the admin's
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"

        page = anonymous_page(SimpleNamespace(url=url), "zh-CN")
        page.goto("/")
        page.wait_for_url(re.compile(r"/login"))
        sign_in(page, "monitor", passwords["monitor"])
        page.wait_for_url(re.compile(r"/console/"))
        page.wait_for_selector("#page[data-ready]")
        page.goto("/console/devices")
        page.wait_for_selector("#page[data-ready]")
        # The demo site's devices, as configured in config/demo.yaml.
        for device in ("trk-0001", "kiosk-hall", "bwc-017", "cam-mediation"):
            page.wait_for_selector(f"text={device}")
        # Every simulator of the bundled scenario reaches the gateway: trackers over MQTT,
        # cameras over RTSP, the kiosk over HTTP, the body-cam by a tus upload (at 30 s).
        token = httpx.post(f"{url}/api/auth/token", data={"username": "admin", "password": passwords["admin"]}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        want = {"trk-0001", "trk-0002", "trk-0003", "cam-mediation", "cam-announce", "kiosk-hall", "bwc-017"}
        online: set[str] = set()

        def all_online() -> bool:
            online.clear()
            online.update(d["id"] for d in httpx.get(f"{url}/api/devices", headers=auth).json() if d["state"] == "online")
            return want <= online

        wait_for_blocking(all_online, 120, lambda: f"every demo device online; not yet: {sorted(want - online)}", interval=1)
        # The kiosk's live burst is accepted and its still-photo spoof refused (at 20 s and 80 s).
        checkins: list[dict] = []  # type: ignore[type-arg]

        def both_checkins() -> bool:
            checkins[:] = httpx.get(f"{url}/api/checkins", headers=auth).json()
            return {("p-0001", "accepted"), ("p-0001", "rejected")} <= {(c["person_id"], c["result"]) for c in checkins}

        wait_for_blocking(both_checkins, 120, lambda: f"an accepted and a refused check-in; so far: {checkins}", interval=1)
        assert any(c["result"] == "rejected" and "liveness" in c["reason"] for c in checkins), checkins
