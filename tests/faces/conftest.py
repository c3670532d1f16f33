"""Faces test helpers: the real photos in ../shared/data/faces, scaled down once
per session (CPU is scarce; the pipeline's decisions do not depend on size
above the minimum face size)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import SHARED_DATA, require_peer

FACES = SHARED_DATA / "faces"


def small_jpeg(path: Path, max_side: int = 720, **transform: Any) -> bytes:
    im = Image.open(path).convert("RGB")
    im.thumbnail((max_side, max_side))
    if transform.get("shift"):
        dx, dy = transform["shift"]
        canvas = Image.new("RGB", (im.width + 40, im.height + 40), (128, 128, 128))
        canvas.paste(im, (20 + dx, 20 + dy))
        im = canvas
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="session")
def faces() -> dict[str, bytes]:
    require_peer(FACES.is_dir(), f"real face photos at {FACES}")
    names = ["obama", "obama2", "obama3", "obama-480p", "biden", "two_people", "obama_partial_face"]
    return {n: small_jpeg(FACES / f"{n}.jpg", 900 if n in ("biden", "obama3") else 720) for n in names}


FACE_CONFIG = """
persons:
  - {id: p-obama, name: Obama}
  - {id: p-biden, name: Biden}
  - {id: p-empty, name: Not enrolled}
"""


async def add_kiosk(r: Any, admin: dict[str, str], kiosk_id: str, **settings: Any) -> str:
    resp = await r.client.post("/api/devices", json={"id": kiosk_id, "kind": "kiosk", "settings": settings}, headers=admin)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


async def enroll(r: Any, admin: dict[str, str], person: str, data: bytes, name: str = "p.jpg") -> Any:
    return await r.client.post(f"/api/persons/{person}/photos", files={"file": (name, data, "image/jpeg")}, headers=admin)


def burst(*frames: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("frames", (f"f{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]


# Tall portraits are cropped to head and shoulders (top, bottom) so the face is large in the room.
CROPS = {"biden.jpg": (0, 900)}


def walking_clip(path: Path, people: list[list[str]], seconds_each: float = 5, fps: int = 10, size: tuple[int, int] = (640, 360), still: bool = False) -> Path:
    """Each entry of `people` walks left to right across a grey room; their photos alternate
    (different poses of one person) as they go. `still`: one photo, not moving (a spoof)."""
    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"profile": "high", "bf": "0", "g": str(fps), "preset": "superfast", "tune": "zerolatency"}
        n = 0
        for photos in people:
            ims = []
            for name in photos:
                im = Image.open(FACES / name).convert("RGB")
                if name in CROPS:
                    im = im.crop((0, CROPS[name][0], im.width, CROPS[name][1]))
                im.thumbnail((h, h))
                ims.append(im)
            frames = int(seconds_each * fps)
            for i in range(frames):
                im = ims[(i // fps) % len(ims)]
                canvas = Image.new("RGB", (w, h), (110, 110, 110))
                x = (w - im.width) // 2 if still else int((w - im.width) * i / max(frames - 1, 1))
                canvas.paste(im, (x, (h - im.height) // 2))
                frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
                frame.pts, frame.time_base = n, Fraction(1, fps)
                out.mux(v.encode(frame))
                n += 1
        out.mux(v.encode(None))
    return path
