"""The face pipeline proper: pure functions on pixels, run in worker processes.

Detection runs on a copy scaled down to `detect_max_side` (HOG cost grows with
pixels, and a kiosk face is large); the boxes are scaled back and the 128-d
encoding is computed on the full-resolution image at that box, so the
encoding keeps the detail the downscaled copy lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from recognition.images import decode, to_jpeg

Box = tuple[int, int, int, int]  # top, right, bottom, left (face_recognition's order)


@dataclass(frozen=True)
class Params:
    max_pixels: int = 25_000_000
    detect_max_side: int = 640
    upsample: int = 0
    encode: bool = True
    landmarks: bool = False  # eye opening and head pose, for liveness
    thumbnail: bool = True
    max_faces: int = 20


@dataclass
class Face:
    box: Box
    size_px: int
    sharpness: float
    brightness: float
    encoding: np.ndarray | None = None
    eye_opening: float | None = None
    pose: tuple[float, float] | None = None  # nose offset from the eye midpoint, in eye distances
    patch: np.ndarray | None = None  # 64x64 grey face, for frame-to-frame change


@dataclass
class Analysis:
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    thumbnail: bytes | None = None
    error: str | None = None  # set when the image could not be decoded


def analyse_bytes(data: bytes, p: Params) -> Analysis:
    from recognition.images import BadImage

    try:
        rgb = decode(data, p.max_pixels)
    except BadImage as e:
        return Analysis(0, 0, error=str(e))
    return analyse(rgb, p)


def analyse(rgb: np.ndarray, p: Params) -> Analysis:
    import face_recognition  # dlib and its models load in the worker processes only

    h, w = rgb.shape[:2]
    boxes = detect(rgb, p.detect_max_side, p.upsample)
    out = Analysis(w, h)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[1] - b[3]))[: p.max_faces]
    encodings = face_recognition.face_encodings(rgb, boxes, num_jitters=1, model="small") if (p.encode and boxes) else []
    marks = face_recognition.face_landmarks(rgb, boxes, model="large") if (p.landmarks and boxes) else []
    for i, b in enumerate(boxes):
        t, r, bt, lf = b
        crop = grey[t:bt, lf:r]
        face = Face(box=b, size_px=int(min(bt - t, r - lf)), sharpness=sharpness(crop), brightness=float(crop.mean()) if crop.size else 0.0)
        if encodings:
            face.encoding = np.asarray(encodings[i], dtype=np.float64)
        if marks:
            face.eye_opening, face.pose = eye_opening(marks[i]), head_pose(marks[i])
            face.patch = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) if crop.size else None
        out.faces.append(face)
    if p.thumbnail:
        if len(boxes) == 1:
            t, r, bt, lf = boxes[0]
            m = (bt - t) // 2
            out.thumbnail = to_jpeg(rgb[max(0, t - m): min(h, bt + m), max(0, lf - m): min(w, r + m)], 200)
        else:
            out.thumbnail = to_jpeg(rgb, 320)
    return out


def detect(rgb: np.ndarray, max_side: int, upsample: int) -> list[Box]:
    import face_recognition

    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    found = face_recognition.face_locations(np.ascontiguousarray(small), number_of_times_to_upsample=upsample, model="hog")
    boxes = []
    for t, r, b, lf in found:
        boxes.append((max(0, int(t / scale)), min(w, int(r / scale)), min(h, int(b / scale)), max(0, int(lf / scale))))
    return boxes


def sharpness(grey_crop: np.ndarray) -> float:
    """Variance of the Laplacian on the face scaled to 160 px, so it does not depend on the photo's resolution."""
    if grey_crop.size == 0:
        return 0.0
    norm = cv2.resize(grey_crop, (160, 160), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(norm, cv2.CV_64F).var())


def _ear(eye: list[tuple[int, int]]) -> float:
    p = np.asarray(eye, dtype=np.float64)
    width = np.linalg.norm(p[0] - p[3])
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * width)) if width else 0.0


def eye_opening(marks: dict[str, list[tuple[int, int]]]) -> float:
    """Mean eye aspect ratio (Soukupová & Čech 2016): drops sharply during a blink."""
    return (_ear(marks["left_eye"]) + _ear(marks["right_eye"])) / 2


def head_pose(marks: dict[str, list[tuple[int, int]]]) -> tuple[float, float]:
    """Nose tip relative to the eye midpoint, in eye-distance units along and across
    the eye line. A photo moved or tilted as a whole keeps these nearly constant;
    a head that turns or nods changes them."""
    le = np.mean(marks["left_eye"], axis=0)
    re = np.mean(marks["right_eye"], axis=0)
    nose = np.mean(marks["nose_tip"], axis=0)
    axis = re - le
    d = float(np.linalg.norm(axis)) or 1.0
    ux = axis / d
    uy = np.array([-ux[1], ux[0]])
    v = nose - (le + re) / 2
    return float(v @ ux / d), float(v @ uy / d)


def distances(known: np.ndarray, probe: np.ndarray) -> np.ndarray:
    if len(known) == 0:
        return np.empty(0)
    return np.linalg.norm(known - probe, axis=1)


def analyse_clip(data: bytes, n: int, p: Params, max_decoded: int = 300) -> list[Analysis]:
    """`n` frames spread over a short clip (MP4/WebM/...), each analysed; one Analysis with
    `error` set when the clip cannot be used. Dimensions are checked before decoding."""
    import io

    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as c:
            if not c.streams.video:
                return [Analysis(0, 0, error="the clip has no video stream")]
            v = c.streams.video[0]
            w, h = v.codec_context.width, v.codec_context.height
            if w * h > p.max_pixels:
                return [Analysis(0, 0, error=f"clip frames are {w}x{h} ({w * h / 1e6:.1f} MP); the limit is {p.max_pixels / 1e6:.1f} MP")]
            frames = []
            for i, f in enumerate(c.decode(v)):
                if i >= max_decoded:
                    break
                frames.append(f)
    except (av.error.FFmpegError, ValueError, OSError) as e:
        return [Analysis(0, 0, error=f"clip could not be decoded: {e}")]
    if not frames:
        return [Analysis(0, 0, error="the clip has no decodable frames")]
    idx = sorted({round(i * (len(frames) - 1) / max(n - 1, 1)) for i in range(n)})
    return [analyse(frames[i].to_ndarray(format="rgb24"), p) for i in idx]
