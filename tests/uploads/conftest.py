"""Fixtures for the uploads area: short real MP4s made with PyAV/libx264, a
registered body-cam with its key, and a live gateway for the real tus clients."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest


def make_mp4(path: Path, seconds: float = 2.0, size: tuple[int, int] = (320, 240), fps: int = 15, seed: int = 0,
             location: str | None = "+31.2304+121.4737+010.000/", faststart: bool = False) -> Path:
    """A real H.264 MP4 (noise frames, so it does not compress to nothing)."""
    rng = np.random.default_rng(seed)
    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=opts) as out:
        out.metadata["creation_time"] = "2026-11-20T08:30:00.000000Z"
        if location:
            out.metadata["location"] = location
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
        st.time_base = Fraction(1, fps)
        for i in range(int(seconds * fps)):
            img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp4(tmp_path_factory.mktemp("media") / "clip.mp4")


@pytest.fixture(scope="session")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Several MB, so that chunked and interrupted uploads have room to be cut."""
    return make_mp4(tmp_path_factory.mktemp("media") / "big.mp4", seconds=6, size=(640, 480), seed=7)


@dataclass
class Cam:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Device-Key": self.key}


def add_bodycam(post: Callable[..., Any], admin: dict[str, str], device_id: str, person_id: str | None = None) -> Cam:
    body: dict[str, Any] = {"id": device_id, "kind": "bodycam", "name": device_id, "settings": {"officer": "officer-7"}}
    if person_id:
        body["person_id"] = person_id
    r = post("/api/devices", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return Cam(device_id, r.json()["key"])


@pytest.fixture
def live(make_config, start_live_gateway):  # type: ignore[no-untyped-def]
    """A live gateway with a small Tus-Max-Size and two registered body-cams."""
    gw = start_live_gateway(make_config(uploads={"max_size_bytes": 64 * 1024**2, "min_free_bytes": 0}))
    gw.add_user("admin1", "admin")
    admin = {"Authorization": f"Bearer {gw.token('admin1')}"}
    with httpx.Client(base_url=gw.url) as c:
        gw.cams = [add_bodycam(c.post, admin, "bc-1"), add_bodycam(c.post, admin, "bc-2")]  # type: ignore[attr-defined]
    gw.admin = admin  # type: ignore[attr-defined]
    return gw
