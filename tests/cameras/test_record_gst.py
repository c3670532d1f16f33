"""Driver + recorder + proceedings against GStreamer's RTSP server (x264enc, High profile)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import av
import pytest
import yaml
from sqlalchemy import select

from gateway.db.models import Recording
from gateway.evidence import sha256_file, verify_all
from tests.cameras.conftest import camera_config, playable_frames, wait_for
from tests.conftest import running


async def closed_segments(services: Any, camera_id: str) -> list[Recording]:
    async with services.db.session() as s:
        q = select(Recording).where(Recording.camera_id == camera_id, Recording.kind == "segment", Recording.sha256.is_not(None))
        return list((await s.scalars(q.order_by(Recording.id))).all())


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_records_high_profile_segments_that_play(gst_server: Any, make_config: Any, transport: str) -> None:
    srv = gst_server("high")
    cfg = camera_config(make_config, {"cam1": {"url": srv.url, "transport": transport}})
    async with running(cfg) as r:
        segs = await wait_for(lambda: _at_least(r.services, "cam1", 2), 30, "two closed segments")
        for seg in segs:
            path = r.services.media_dir / seg.path
            assert sha256_file(path) == seg.sha256
            assert playable_frames(path) >= 15  # >= 1 s of 15 fps video, decodable from the file alone
            with av.open(str(path)) as c:
                assert c.streams.video[0].codec_context.profile == "High"
        h = await r.login()
        cams = (await r.client.get("/api/cameras", headers=h)).json()
        assert cams[0]["state"] == "online" and cams[0]["profile"] == "High"
        snap = await r.client.get("/api/cameras/cam1/snapshot.jpg", headers=h)
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
        listed = (await r.client.get("/api/recordings", params={"camera_id": "cam1"}, headers=h)).json()
        rid = listed[0]["id"]
        part = await r.client.get(f"/api/recordings/{rid}/file", headers={**h, "Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        assert (await r.client.get("/api/recordings/999999/file", headers=h)).status_code == 404
        metrics = (await r.client.get("/metrics", headers=h)).text
        assert 'gateway_camera_online{camera="cam1"} 1.0' in metrics


async def _at_least(services: Any, cam: str, n: int) -> list[Recording] | None:
    segs = await closed_segments(services, cam)
    return segs if len(segs) >= n else None


async def test_proceeding_sealed_exported_verified_and_tamper_detected(gst_server: Any, make_config: Any, tmp_path: Path, any_db_url: str) -> None:
    srv = gst_server("main")
    cfg = camera_config(make_config, {"cam1": srv.url})
    cfg.storage.database_url = any_db_url
    async with running(cfg) as r:
        h = await r.login(role="officer", username="officer1")
        await wait_for(lambda: _at_least(r.services, "cam1", 1), 30, "pre-roll on disk")
        bad = await r.client.post("/api/proceedings", json={"camera_ids": ["cam1"], "kind": "party"}, headers=h)
        assert bad.status_code == 422
        missing = await r.client.post("/api/proceedings", json={"camera_ids": ["nope"], "kind": "talk"}, headers=h)
        assert missing.status_code == 404
        p1 = (await r.client.post("/api/proceedings", json={"camera_ids": ["cam1"], "kind": "talk", "person_id": None, "case_ref": "C-1"}, headers=h)).json()
        p2 = (await r.client.post("/api/proceedings", json={"camera_ids": ["cam1"], "kind": "warning", "case_ref": "C-2"}, headers=h)).json()
        # overlapping proceedings stopped out of order still chain (seal order)
        s2 = (await r.client.post(f"/api/proceedings/{p2['id']}/stop", headers=h)).json()
        s1 = (await r.client.post(f"/api/proceedings/{p1['id']}/stop", headers=h)).json()
        assert s1["state"] == "sealed" and s1["manifest"]["prev_manifest_sha256"] == s2["manifest_sha256"]
        assert s1["manifest"]["segments"], "pre-roll segments are in the manifest"
        assert (await r.client.post(f"/api/proceedings/{p1['id']}/stop", headers=h)).status_code == 409
        got = (await r.client.get(f"/api/proceedings/{p1['id']}", headers=h)).json()
        assert got["manifest"] == s1["manifest"]
        exp = await r.client.get(f"/api/proceedings/{p1['id']}/export", headers=h)
        assert exp.status_code == 200
        z = zipfile.ZipFile(io.BytesIO(exp.content))
        mp4 = z.read(f"proceeding-{p1['id']}-cam1.mp4")
        with av.open(io.BytesIO(mp4)) as c:
            assert sum(1 for _ in c.decode(video=0)) >= 15
        # two exports at once: each built in a folder of its own, both whole, neither left behind
        both = await asyncio.gather(*(r.client.get(f"/api/proceedings/{p1['id']}/export", headers=h) for _ in range(2)))
        assert [zipfile.ZipFile(io.BytesIO(x.content)).read(f"proceeding-{p1['id']}-cam1.mp4") for x in both] == [mp4, mp4]
        await wait_for(lambda: not list((r.services.media_dir / "tmp").glob("export-*")), 30, "the export folders removed")
        checked, problems = await verify_all(r.services.db, r.services.media_dir)
        assert problems == [] and checked >= 3
        seg = s1["manifest"]["segments"][0]
        path = r.services.media_dir / seg["path"]
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        checked, problems = await verify_all(r.services.db, r.services.media_dir)
        assert any("has changed" in p and seg["path"] in p for p in problems)
        # the command officers run
        conf = tmp_path / "gw.yaml"
        conf.write_text(yaml.safe_dump({"gateway": {"data_dir": str(r.services.config.gateway.data_dir)}, "storage": {"database_url": any_db_url}}))
        cli = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gateway.cli", "evidence", "verify", "-c", str(conf)],
                                      capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1 and "has changed" in cli.stdout, cli.stdout + cli.stderr
        path.unlink()
        checked, problems = await verify_all(r.services.db, r.services.media_dir)
        assert any("missing" in p for p in problems)


async def test_audio_is_copied_and_digest_auth_works(gst_server: Any, make_config: Any) -> None:
    srv = gst_server("high", auth=("admin", "pa:ss word"), audio=True)
    cfg = camera_config(make_config, {"cam1": {"url": srv.url, "username": "admin", "password": "pa:ss word"}})
    async with running(cfg) as r:
        segs = await wait_for(lambda: _at_least(r.services, "cam1", 1), 30, "a closed segment")
        assert segs[0].has_audio
        with av.open(str(r.services.media_dir / segs[0].path)) as c:
            assert c.streams.audio[0].codec_context.name == "aac"
            assert sum(1 for _ in c.decode(audio=0)) > 10
