"""Console pages of the cameras area: live grid (WHEP tiles, state, full view) and recordings
(time bar, playback, proceedings)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from simulators.media import make_clip
from simulators.rtsp.server import ThreadedCameraServer
from tests.cameras.conftest import camera_config
from tests.waiting import wait_for_blocking


def test_live_grid_plays_and_opens_full_view_then_recordings_play(tmp_path: Path, make_config: Any, start_live_gateway: Any, console_page: Any) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=3, profile="main")
    sim = ThreadedCameraServer({"a": clip, "b": clip})
    try:
        live = start_live_gateway(camera_config(make_config, {"cam1": sim.url("a"), "cam2": sim.url("b")}, segment_s=2))
        live.add_user("officer1", "officer")
        h = {"Authorization": f"Bearer {live.token('officer1')}"}
        wait_for_blocking(lambda: all(c["state"] == "online" for c in httpx.get(f"{live.url}/api/cameras", headers=h).json()),
                          what="both cameras online", interval=0.2)
        page = console_page(live, "officer1", "officer")
        page.goto("/console/live")
        page.wait_for_selector("#page[data-ready]")
        assert page.locator(".live-tile").count() == 2
        page.wait_for_function("() => [...document.querySelectorAll('.live-tile video')].every(v => v.videoWidth > 0 && v.currentTime > 0.5)", timeout=20_000)
        assert page.locator('.live-tile[data-camera="cam1"] .badge').get_attribute("data-state") == "online"
        page.click('.live-tile[data-camera="cam2"] video')
        page.wait_for_selector('.live-single[data-camera="cam2"]')
        page.wait_for_function("() => document.querySelector('.live-single video').videoWidth > 0", timeout=20_000)

        # a proceeding to list, and segments on the time bar
        wait_for_blocking(lambda: any(s["sha256"] for s in httpx.get(f"{live.url}/api/recordings", params={"camera_id": "cam1"}, headers=h).json()),
                          60, "a closed segment of cam1", interval=0.2)
        p = httpx.post(f"{live.url}/api/proceedings", json={"camera_ids": ["cam1"], "kind": "education", "case_ref": "E-9"}, headers=h).json()
        httpx.post(f"{live.url}/api/proceedings/{p['id']}/stop", headers=h, timeout=30).raise_for_status()
        page.goto("/console/recordings?camera=cam1")
        page.wait_for_selector("#page[data-ready]")
        page.wait_for_selector(f'tr[data-id="{p["id"]}"]')
        assert "E-9" in page.locator(f'tr[data-id="{p["id"]}"]').inner_text()
        page.locator(".timebar .seg-rec").first.click()
        page.wait_for_function("() => { const v = document.querySelector('video'); return v.src.startsWith('blob:') && v.videoWidth > 0; }", timeout=15_000)
        assert re.search(r"[0-9a-f]{64}", page.locator("video + p").inner_text())
    finally:
        sim.close()
