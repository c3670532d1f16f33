"""`gateway demo` (the README's first command, minus the install) serves the
console; a person logs in through Chromium with the printed password and sees
every device of the demo site come online as the simulators report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx

from tests.conftest import free_port
from tests.e2e.conftest import sign_in

ROOT = Path(__file__).resolve().parents[2]


def test_demo_serves_console_and_login_works(anonymous_page, tmp_path: Path, shared_data: Path) -> None:
    # `--faces`: one folder per demo person; the kiosk enrolls the first photo and checks in
    faces = tmp_path / "faces" / "p-0001"
    faces.mkdir(parents=True)
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama-480p.jpg"):
        (faces / name).symlink_to(shared_data / "faces" / name)
    port = free_port()
    env = {**os.environ, "GATEWAY_DEMO_MQTT_PORT": str(free_port()), "GATEWAY_DEMO_RTSP_PORT": str(free_port())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--data-dir", str(tmp_path / "demo"),
         "--faces", str(faces.parent)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env,
    )
    try:
        passwords: dict[str, str] = {}
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while len(passwords) < 3:
            assert time.monotonic() < deadline, "demo did not print its passwords"
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "demo exited early"
            m = re.match(r"\s+(admin|officer|monitor):\s+(\S+)$", line)
            if m:
                passwords[m.group(1)] = m.group(2)
        assert len(set(passwords.values())) == 3  # one each: a monitor does not know the admin's
        # keep reading its log, or the demo blocks on a full pipe
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        url = f"http://127.0.0.1:{port}"
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
        want = {"trk-0001", "trk-0002", "trk-0003", "cam-mediation", "cam-announce", "kiosk-hall", "bwc-017"}
        deadline = time.monotonic() + 120
        while True:
            devices = httpx.get(f"{url}/api/devices", headers={"Authorization": f"Bearer {token}"}).json()
            online = {d["id"] for d in devices if d["state"] == "online"}
            if want <= online:
                break
            assert time.monotonic() < deadline, f"not online after 120 s: {sorted(want - online)}"
            time.sleep(1)
        # The kiosk's live burst is accepted and its still-photo spoof refused (at 20 s and 80 s).
        deadline = time.monotonic() + 120
        while True:
            checkins = httpx.get(f"{url}/api/checkins", headers={"Authorization": f"Bearer {token}"}).json()
            results = {(c["person_id"], c["result"]) for c in checkins}
            if {("p-0001", "accepted"), ("p-0001", "rejected")} <= results:
                break
            assert time.monotonic() < deadline, f"kiosk check-ins so far: {checkins}"
            time.sleep(1)
        assert any(c["result"] == "rejected" and "liveness" in c["reason"] for c in checkins), checkins
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
