"""Camera input for kiosk tests made from real portraits (../shared/data/faces, the
face_recognition project's public samples): a head turning a little, as a y4m file that
Chromium plays as its camera (--use-file-for-fake-video-capture).

The turn is a smooth displacement of the nose region sideways (a Gaussian window around the
nose tip found by dlib's landmarks), back and forth: the nose moves relative to the eyes as it
does when a head turns, which a photo moved as a whole cannot do.

For active liveness: `challenge_clip` (a clip answering a challenge, made with
simulators/challenge_frames.sequence) and `slideshow` (still photos in turn)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import face_recognition
import numpy as np

from config.faces import ChallengeKind
from simulators.call_party import letterboxed
from simulators.challenge_frames import _camera, sequence


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


def challenge_clip(photo: Path, kind: ChallengeKind, fps: int = 10, lead_s: float = 0.2, moving_s: float = 1.5, seconds: float = 9.0,
                   amount: float = 0.3) -> list[np.ndarray]:
    """A camera's clip answering `kind` (simulators/challenge_frames.sequence on the letterboxed
    photo): still and frontal for `lead_s`, the movement over `moving_s`, then held to the end,
    `seconds` in all.

    Chromium's fake camera starts its file at frame 0 each time the camera is opened, and the
    kiosk app opens it after showing the prompt (docs/kiosk.md), so the app films this clip
    from its start. The movement is slow enough that a frame skipped by a loaded browser is no
    jump (a 350 ms gap moves the landmarks < 0.12 eye distances), and long enough that a
    capture of 8 frames 150 ms (or more) apart starting anywhere in the first 0.8 s sees a turn
    of ≥ 0.15 from a frontal first frame (`amount` 0.3: yaw 0 → 0.45; checked offline on the
    judge for starts 0 … 0.8 s and gaps up to 350 ms). The held end keeps a slow capture on
    the answer; `seconds` is far longer than any capture, so the loop's jump back to frame 0 is
    never filmed."""
    return sequence(letterboxed(photo), kind, n=round(seconds * fps), amount=amount, lead=round(lead_s * fps), moving=round(moving_s * fps))


def slideshow(photos: list[Path], per_photo: int = 3, seconds: float = 9.0, fps: int = 10) -> list[np.ndarray]:
    """Still photos shown in turn, `per_photo` frames each (one photo: the same photo throughout),
    with a live camera's drift and sensor noise on every frame."""
    stills = [letterboxed(p) for p in photos]
    return [_camera(stills[(i // per_photo) % len(stills)], i, 7) for i in range(round(seconds * fps))]
