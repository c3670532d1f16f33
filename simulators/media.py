"""Test media made with PyAV: H.264 clips of a chosen profile with a clock burned in.

`make_clip(path, seconds=4, fps=15, size=(320, 240), profile="high")` writes an MP4
(libx264, no B-frames, a keyframe every `gop` frames) whose frames show the frame number
and the wall-clock time at which they were made; `clock_frame(t, n, size)` draws one such
frame (a numpy BGR image) for generators that stream live. Used by the camera simulator,
the camera tests and the faces tests.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

PROFILES = {"baseline": "baseline", "main": "main", "high": "high"}


def clock_frame(t: float, n: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A frame with a moving bar (so motion is visible) and the time `t` (epoch s) in text."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :] = (40, 40, 40)
    x = int((n * 7) % max(w - 20, 1))
    img[h // 2 - 10:h // 2 + 10, x:x + 20] = (0, 200, 255)
    stamp = time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}"
    scale = max(w / 320 * 0.7, 0.4)
    cv2.putText(img, stamp, (8, int(30 * scale / 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2)
    cv2.putText(img, f"#{n}", (8, h - 12), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2)
    return img


def make_clip(path: Path | str, seconds: float = 4, fps: int = 15, size: tuple[int, int] = (320, 240),
              profile: str = "high", gop: int | None = None, audio: bool = False, start: float | None = None) -> Path:
    """Write an H.264 MP4 of `seconds` at `fps`, profile baseline/main/high, keyframe every `gop` (default fps)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gop = gop or fps
    t0 = time.time() if start is None else start
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        # ultrafast would silently drop to Constrained Baseline (no CABAC, no 8x8 transform).
        v.options = {"profile": PROFILES[profile], "bf": "0", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "preset": "ultrafast" if profile == "baseline" else "superfast", "tune": "zerolatency"}
        a = None
        if audio:
            a = out.add_stream("aac", rate=8000)
            a.layout = "mono"
        n_frames = int(seconds * fps)
        for n in range(n_frames):
            frame = av.VideoFrame.from_ndarray(clock_frame(t0 + n / fps, n, size), format="bgr24")
            frame.pts = n
            frame.time_base = Fraction(1, fps)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            samples = int(seconds * 8000)
            tone = (np.sin(np.arange(samples) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
            for i in range(0, samples, 1024):
                chunk = tone[i:i + 1024]
                af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
                af.sample_rate = 8000
                af.pts = i
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path
