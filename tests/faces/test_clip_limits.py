"""Kiosk clips and bad images (issue 16): a clip is decoded one frame at a time and only
its sampled frames are analysed; width × height × frames is capped (413 before decoding
when the container tells, else while decoding), and the worker's memory stays bounded.
Refusals are typed: "not an image" is 422, over a pixel limit 413 (never by message text)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from gateway.db.models import CheckInRow
from recognition.faces import Params, analyse_clip
from tests.conftest import running
from tests.faces.conftest import FACE_CONFIG, add_kiosk, burst, enroll, walking_clip

MB = 1024 * 1024
# the limits are the same whatever liveness asks: passive only (challenges: test_kiosk_challenges.py)
PASSIVE = {"faces": {"active_liveness": {"required": False}}}


def flat_clip(fmt: str, size: tuple[int, int], frames: int, fps: int = 30) -> bytes:
    """A clip that is tiny on the wire but large decoded (the finding: 300 frames at
    2560×1440 in ~50 KB). `fmt`: mp4 (states its frame count), matroska (does not),
    h264 (a raw stream: no container at all)."""
    w, h = size
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "51"}
        plane = np.full((h * 3 // 2, w), 120, np.uint8)
        for i in range(frames):
            plane[:16, :16] = i % 256
            f = av.VideoFrame.from_ndarray(plane, format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    return buf.getvalue()


@pytest.fixture(scope="module")
def huge_clips() -> dict[str, bytes]:
    return {fmt: flat_clip(fmt, (2560, 1440), 300) for fmt in ("mp4", "matroska")}


@pytest.fixture(scope="module")
def huge_frames_clip() -> bytes:
    """Ten 8192×8192 frames (67 MP each, over max_image_pixels) in 200 KB: FFmpeg decodes a
    few frames while it probes a stream at open, before any check of ours could run."""
    return flat_clip("matroska", (8192, 8192), 10)


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes: what a decode that keeps
    frames would have pushed up, whenever it happened and whatever was freed since."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def test_clip_over_the_budget_is_refused_before_decoding(huge_clips: dict[str, bytes]) -> None:
    for fmt, data in huge_clips.items():
        assert len(data) < 200_000, (fmt, len(data))  # small on the wire
        out = analyse_clip(data, 5, Params())
        assert len(out) == 1 and out[0].error_kind == "too_large", (fmt, out[0].error)
        assert "2560x1440" in (out[0].error or "") and "300 frames" in (out[0].error or ""), out[0].error


def test_budget_is_also_enforced_while_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw H.264 stream that starts small and switches to 2560×1440: the header and the
    packet count promise 320×240, so only counting while decoding catches it."""
    import recognition.faces as faces

    analysed: list[tuple[int, ...]] = []
    monkeypatch.setattr(faces, "analyse", lambda rgb, p: analysed.append(rgb.shape) or faces.Analysis(rgb.shape[1], rgb.shape[0]))
    data = flat_clip("h264", (320, 240), 10) + flat_clip("h264", (2560, 1440), 60)
    out = analyse_clip(data, 5, Params(max_clip_pixels=50_000_000))
    assert len(out) == 1 and out[0].error_kind == "too_large" and "while decoding" in (out[0].error or ""), out[0].error
    # a single frame over max_pixels is refused too, as soon as it is decoded
    out = analyse_clip(data, 5, Params(max_pixels=1_000_000))
    assert len(out) == 1 and out[0].error_kind == "too_large" and "2560x1440" in (out[0].error or ""), out[0].error
    # within both limits, only the sampled frames are analysed (spread over the whole clip)
    analysed.clear()
    out = analyse_clip(data, 5, Params())
    assert [a.error for a in out] == [None] * 5 and len(analysed) == 5
    assert analysed[0] == (240, 320, 3) and analysed[-1] == (1440, 2560, 3)


async def test_huge_clip_is_refused_and_the_worker_stays_small(make_config: Any, faces: dict[str, bytes], tmp_path: Path,
                                                               huge_clips: dict[str, bytes], huge_frames_clip: bytes) -> None:
    normal = walking_clip(tmp_path / "live.mp4", [["obama2.jpg", "obama-480p.jpg", "obama.jpg"]], seconds_each=3, fps=5)
    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        kh = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-1")}

        async def check_in(data: bytes) -> Any:
            return await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files={"clip": ("c.mp4", data, "video/mp4")}, headers=kh)

        ok = await check_in(normal.read_bytes())  # a normal short clip works (and warms the worker)
        assert ok.status_code == 200 and ok.json()["result"] == "accepted", ok.text
        pids = r.areas.recognition.workers.pids()
        assert len(pids) == 1
        before = peak_rss(pids[0])
        for fmt, data in huge_clips.items():
            resp = await check_in(data)
            assert resp.status_code == 413, (fmt, resp.status_code, resp.text)
            assert "limit" in resp.json()["detail"] and "2560x1440" in resp.json()["detail"], resp.text
        resp = await check_in(huge_frames_clip)
        assert resp.status_code == 413 and "8192x8192" in resp.json()["detail"], resp.text
        assert r.areas.recognition.workers.pids() == pids  # the same worker: not killed, not replaced
        grown = peak_rss(pids[0]) - before
        # Keeping the decoded frames took it up by 1.6 GB, probing the 8192×8192 clip by 290 MB.
        assert grown < 150 * MB, f"face worker peak RSS grew by {grown / MB:.0f} MB"
        again = await check_in(normal.read_bytes())
        assert again.status_code == 200 and again.json()["result"] == "accepted", again.text
        async with r.services.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(CheckInRow)) == 2  # refusals store nothing


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 200, 200)).save(out, "JPEG", quality=10)
    return out.getvalue()


async def test_not_an_image_is_422_and_too_many_pixels_413(make_config: Any, faces: dict[str, bytes]) -> None:
    not_image = b"%PDF-1.4 definitely not a photo"  # the message names BMP, which contains "MP"
    big = _jpeg((8660, 5774))  # 50 MP
    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        kh = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-1")}

        async def verify(data: bytes) -> Any:
            return await r.client.post("/api/faces/verify", data={"person_id": "p-obama"}, files={"file": ("x.jpg", data, "image/jpeg")}, headers=admin)

        async def identify(data: bytes) -> Any:
            return await r.client.post("/api/faces/identify", files={"file": ("x.jpg", data, "image/jpeg")}, headers=admin)

        async def enroll_(data: bytes) -> Any:
            return await enroll(r, admin, "p-obama", data)

        async def kiosk(data: bytes) -> Any:
            return await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files=burst(faces["obama2"], data, faces["obama3"]), headers=kh)

        async def clip_checkin(data: bytes) -> Any:
            return await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files={"clip": ("c.mp4", data, "video/mp4")}, headers=kh)

        for call in (verify, identify, enroll_, kiosk):
            bad = await call(not_image)
            assert bad.status_code == 422, (call.__name__, bad.status_code, bad.text)
            assert "not an image" in bad.text, bad.text
            large = await call(big)
            assert large.status_code == 413, (call.__name__, large.status_code, large.text)
            assert "50.0 MP" in large.text, large.text
        metrics = r.services.metrics.registry
        assert (metrics.get_sample_value("gateway_face_bad_input_total", {"reason": "too_large"}) or 0) >= 4

        # A clip: junk is 422; frames over max_image_pixels are 413 (checked from the header).
        junk = await clip_checkin(b"not a video at all" * 10)
        assert junk.status_code == 422 and "clip" in junk.json()["detail"], junk.text
        huge_frames = await clip_checkin(flat_clip("mp4", (5200, 5000), 3))
        assert huge_frames.status_code == 413 and "26.0 MP" in huge_frames.json()["detail"], huge_frames.text
