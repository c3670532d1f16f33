"""A proceeding started and stopped from a live tile, in a real browser against a real
gateway and a simulated RTSP camera: the tile shows the recording badge while it runs (to
other consoles too), and once sealed, the export link and the manifest's hash; the export
verifies (the manifest's SHA-256 and a playable MP4 of the camera). A monitor sees the
badge but no control."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import av
from playwright.sync_api import expect

from simulators.media import make_clip
from simulators.rtsp.server import ThreadedCameraServer
from tests.cameras.conftest import camera_config
from tests.waiting import wait_for_blocking


def test_start_and_stop_a_proceeding_from_a_live_tile(tmp_path: Path, make_config: Any, start_live_gateway: Any, console_page: Any, api_as: Any) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=3, profile="main")
    sim = ThreadedCameraServer({"a": clip})
    try:
        live = start_live_gateway(camera_config(make_config, {"cam1": sim.url("a")}, segment_s=2))
        admin = api_as(live, "chief")
        assert admin.post("/api/persons", json={"id": "p-7", "name": "张三"}).status_code == 201
        wait_for_blocking(lambda: any(c["state"] == "online" and c["recording"] for c in admin.get("/api/cameras").json()), 30, "cam1 recording", interval=0.2)
        page = console_page(live, "wang", "officer", lang="zh-CN")
        monitor = console_page(live, "zhou", "monitor")
        for p in (page, monitor):
            p.goto("/console/live")
            p.wait_for_selector("#page[data-ready]")
        tile = page.locator(".live-tile[data-camera='cam1']")
        tile.locator("[name=kind]").select_option("announcement")
        tile.locator("[name=person_id]").select_option("p-7")
        tile.locator("[name=case_ref]").fill("宣-2026-12")
        tile.locator(".btn-start").click()
        expect(tile.locator(".rec-badge")).to_contain_text("宣告")
        expect(monitor.locator(".live-tile[data-camera='cam1'] .rec-badge")).to_be_visible()  # pushed to the other console
        expect(monitor.locator(".live-tile[data-camera='cam1'] .btn-stop")).to_have_count(0)
        running = [p for p in admin.get("/api/proceedings").json() if p["state"] == "recording"]
        assert len(running) == 1 and running[0]["person_id"] == "p-7" and running[0]["case_ref"] == "宣-2026-12"
        pid = running[0]["id"]
        wait_for_blocking(lambda: sum(1 for r in admin.get("/api/recordings", params={"camera_id": "cam1"}).json() if r["sha256"]) >= 2, 60,
                          "segments recorded during the proceeding", interval=0.3)
        tile.locator(".btn-stop").click()
        sealed = tile.locator(f".sealed[data-proceeding='{pid}']")
        expect(sealed).to_be_visible()
        expect(tile.locator(".rec-badge")).to_have_count(0)
        expect(monitor.locator(".live-tile[data-camera='cam1'] .rec-badge")).to_have_count(0)
        row = admin.get(f"/api/proceedings/{pid}").json()
        assert row["state"] == "sealed"
        expect(sealed).to_contain_text(row["manifest_sha256"][:16])
        href = sealed.locator("a").get_attribute("href")
        assert href == f"/api/proceedings/{pid}/export"
        r = admin.get(href, timeout=60)
        assert r.status_code == 200
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            canonical = z.read("manifest.canonical.json")
            assert hashlib.sha256(canonical).hexdigest() == row["manifest_sha256"] == z.read("manifest.sha256").decode().split()[0]
            mp4 = z.read(f"proceeding-{pid}-cam1.mp4")
        with av.open(io.BytesIO(mp4)) as c:
            frames = sum(1 for _ in c.decode(video=0))
        assert frames >= 15  # at least a second of video, decodable from the export alone
    finally:
        sim.close()


def test_a_proceeding_from_the_persons_page_verified_then_tampered(tmp_path: Path, make_config: Any, start_live_gateway: Any, console_page: Any,
                                                                  api_as: Any) -> None:
    """Started and stopped from the person's page; on the recordings page "Verify" re-hashes
    the sealed files (intact), and after a segment file is changed on disk it says so."""
    clip = make_clip(tmp_path / "c.mp4", seconds=3, profile="main")
    sim = ThreadedCameraServer({"a": clip})
    try:
        live = start_live_gateway(camera_config(make_config, {"cam1": sim.url("a")}, segment_s=2))
        admin = api_as(live, "chief")
        assert admin.post("/api/persons", json={"id": "p-8", "name": "李四"}).status_code == 201
        wait_for_blocking(lambda: any(c["state"] == "online" and c["recording"] for c in admin.get("/api/cameras").json()), 30, "cam1 recording", interval=0.2)
        page = console_page(live, "wang", "officer")
        page.goto("/console/person?id=p-8")
        page.wait_for_selector("#page[data-ready]")
        section = page.locator(".person-proceedings")
        section.locator("[name=kind]").select_option("talk")
        section.locator("[name=case_ref]").fill("T-8")
        section.locator(".btn-start").click()
        item = section.locator("li[data-state=recording]")
        expect(item).to_have_count(1)
        pid = int(item.get_attribute("data-id") or 0)
        wait_for_blocking(lambda: sum(1 for r in admin.get("/api/recordings", params={"camera_id": "cam1"}).json() if r["sha256"]) >= 2, 60,
                          "segments recorded", interval=0.3)
        item.locator(".btn-stop").click()
        expect(section.locator(f"li[data-id='{pid}']")).to_have_attribute("data-state", "sealed")

        page.goto("/console/recordings?camera=cam1")
        page.wait_for_selector("#page[data-ready]")
        row = page.locator(f"tr[data-id='{pid}']")
        row.locator(".btn-verify").click()
        expect(row.locator(".verify-result")).to_have_attribute("data-ok", "1")
        manifest = admin.get(f"/api/proceedings/{pid}").json()["manifest"]
        seg = live.services.media_dir / manifest["segments"][0]["path"]
        with open(seg, "r+b") as f:  # one byte changed on disk, as tampering would
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0xFF]))
        row.locator(".btn-verify").click()
        expect(row.locator(".verify-result")).to_have_attribute("data-ok", "0")
        expect(row.locator(".verify-result")).to_contain_text("has changed")
        assert any(e["action"] == "proceeding.verified" for e in admin.get("/api/audit", params={"action": "proceeding."}).json())
    finally:
        sim.close()
