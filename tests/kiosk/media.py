"""Camera input for kiosk tests made from real portraits (../shared/data/faces, the
face_recognition project's public samples): a head turning a little, as a y4m file that
Chromium plays as its camera (--use-file-for-fake-video-capture).

The turn is a smooth displacement of the nose region sideways (a Gaussian window around the
nose tip found by dlib's landmarks), back and forth: the nose moves relative to the eyes as it
does when a head turns, which a photo moved as a whole cannot do."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import face_recognition
import numpy as np


def letterboxed(photo: Path, width: int = 640, height: int = 480) -> np.ndarray:
    """The photo (RGB) scaled into width x height on grey, as a camera frame."""
    rgb = face_recognition.load_image_file(str(photo))
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    small = cv2.resize(rgb, (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, np.uint8)
    y0, x0 = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return canvas


def turning_frames(photo: Path, n: int = 20, amplitude_px: float = 16.0, width: int = 640, height: int = 480) -> list[np.ndarray]:
    """`n` RGB frames, letterboxed to width x height, the nose swinging ±amplitude_px."""
    canvas = letterboxed(photo, width, height)
    marks = face_recognition.face_landmarks(canvas)[0]
    nx, ny = np.mean(np.array(marks["nose_tip"] + marks["nose_bridge"], dtype=float), axis=0)
    eyes = np.array(marks["left_eye"] + marks["right_eye"], dtype=float)
    sigma = 0.6 * (eyes[:, 0].max() - eyes[:, 0].min()) / 2
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    window = np.exp(-((xs - nx) ** 2 + (ys - ny) ** 2) / (2 * sigma**2)).astype(np.float32)
    frames = []
    for i in range(n):
        shift = amplitude_px * math.sin(2 * math.pi * i / n)
        frames.append(cv2.remap(canvas, xs - shift * window, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return frames


def write_y4m(frames: list[np.ndarray], out: Path, fps: int = 10) -> Path:
    h, w = frames[0].shape[:2]
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
            f.write(b"FRAME\n" + yuv.tobytes())
    return out
