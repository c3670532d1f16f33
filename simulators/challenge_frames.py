"""Frame sequences that answer (or fake an answer to) an active-liveness challenge,
made from one real still photo with OpenCV. For tests and the bench; a kiosk
simulator can send them too.

Genuine-looking movements (non-rigid, as a live face moves):
- `turn`: a horizontal piecewise-linear warp of the face region that moves the
  nose towards one side while the jaw line stays put, progressively: the half of
  the face the head turns away from is compressed, as in a real yaw rotation.
- `blink`: the eye regions (from face_recognition's landmarks) squashed
  vertically for two frames, the lids filled from the skin above and below.
- `closer`: the whole frame scaled up progressively about the face (moving
  closer IS a scale change).

Attacks: `rigid` moves the whole photo (translate, scale, rotate) smoothly, as a
printed photo held in front of the camera.

Every generated frame drifts by a pixel or so and carries a little sensor
noise, as a real camera's frames do (no two frames of a live camera are
byte-identical).
"""

from __future__ import annotations

import cv2
import numpy as np

from config.faces import ChallengeKind as Kind


def _face(rgb: np.ndarray) -> tuple[tuple[int, int, int, int], dict[str, list[tuple[int, int]]]]:
    import face_recognition

    boxes = face_recognition.face_locations(rgb, model="hog")
    if not boxes:
        raise ValueError("no face in the source photo")
    box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    return box, face_recognition.face_landmarks(rgb, [box], model="large")[0]


def _camera(rgb: np.ndarray, i: int, seed: int) -> np.ndarray:
    """A small drift and sensor noise, so consecutive frames differ as a live camera's do."""
    h, w = rgb.shape[:2]
    m = np.array([[1, 0, 0.6 * i], [0, 1, 0.3 * i]], dtype=np.float32)
    out = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    noise = np.random.default_rng(seed + i).normal(0, 2.0, out.shape)
    return np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _hwarp(rgb: np.ndarray, left: float, centre: float, right: float, shift: float) -> np.ndarray:
    """Move x=centre to centre+shift, keep x<=left and x>=right in place; linear in between."""
    h, w = rgb.shape[:2]
    xs = np.arange(w, dtype=np.float32)
    c2 = centre + shift
    src = xs.copy()
    a = (xs > left) & (xs <= c2)
    src[a] = left + (xs[a] - left) * (centre - left) / (c2 - left)
    b = (xs > c2) & (xs < right)
    src[b] = centre + (xs[b] - c2) * (right - centre) / (right - c2)
    mapx = np.repeat(src[None, :], h, axis=0)
    mapy = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1)
    return cv2.remap(rgb, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _close_eye(rgb: np.ndarray, eye: list[tuple[int, int]]) -> None:
    """A closed eye: the eye opening painted over with the skin just below it and a dark
    lash line from corner to corner."""
    p = np.asarray(eye, dtype=np.int32)
    w = int(p[:, 0].max() - p[:, 0].min())
    y1 = int(p[:, 1].max())
    skin = np.median(rgb[y1 + 3: y1 + 3 + max(3, w // 4), int(p[:, 0].min()): int(p[:, 0].max())].reshape(-1, 3), axis=0)
    hull = cv2.convexHull(p)
    mask: np.ndarray = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    rgb[mask > 0] = skin.astype(np.uint8)
    lash = np.array([p[0], (p[1] + p[2] + p[4] + p[5]) // 4, p[3]], dtype=np.int32)
    cv2.polylines(rgb, [lash], False, (40, 30, 30), max(1, w // 12), cv2.LINE_AA)


def _squash_eye(rgb: np.ndarray, eye: list[tuple[int, int]], keep: float) -> None:
    p = np.asarray(eye)
    x0, x1 = int(p[:, 0].min()) - 4, int(p[:, 0].max()) + 5
    y0, y1 = int(p[:, 1].min()) - 5, int(p[:, 1].max()) + 6
    region = rgb[y0:y1, x0:x1]
    hh = y1 - y0
    k = max(1, int(round(hh * keep)))
    squashed = cv2.resize(region, (x1 - x0, k), interpolation=cv2.INTER_AREA)
    top = (hh - k) // 2
    out: np.ndarray = np.empty_like(region)
    out[:top] = region[:1]  # upper lid: the skin just above the eye, stretched down
    out[top:top + k] = squashed
    out[top + k:] = region[-1:]  # lower lid
    rgb[y0:y1, x0:x1] = out


def sequence(rgb: np.ndarray, kind: Kind, n: int = 8, amount: float | None = None, seed: int = 0, also_turn: float = 0.0,
             lead: int = 0, moving: int | None = None) -> list[np.ndarray]:
    """`n` frames of the face in `rgb` performing `kind`, starting frontal and still;
    `also_turn`: turn the head slightly as well (this fraction of the face width), as people
    do when they step closer (the passive check wants a blink or a head movement).
    A turn or `closer` takes all but the last two frames, then holds; or, with `lead` and
    `moving`, starts after `lead` still frames and takes `moving` frames (then holds to the
    end: a camera's clip, tests/kiosk/media.py)."""
    (t, r, b, lf), marks = _face(rgb)
    frames: list[np.ndarray] = []
    width = r - lf
    span = moving or max(1, n - 3 - lead)
    for i in range(n):
        f = rgb.copy()
        ramp = min(1.0, max(0, i - lead) / span)
        if kind in ("turn_left", "turn_right") or also_turn:
            nose = np.mean(marks["nose_tip"], axis=0)
            chin = np.asarray(marks["chin"])
            left, right = float(chin[:, 0].min()), float(chin[:, 0].max())
            sign = 1.0 if kind == "turn_left" else -1.0  # the person's left is the image's right (camera not mirrored)
            f = _hwarp(f, left - 0.1 * width, float(nose[0]), right + 0.1 * width, sign * ramp * (also_turn or amount or 0.22) * width)
        if kind == "blink":
            mid = n // 2
            if i in (mid, mid + 1):
                for eye in ("left_eye", "right_eye"):
                    if i == mid:
                        _close_eye(f, marks[eye])
                    else:
                        _squash_eye(f, marks[eye], 0.4)
        if kind == "closer":
            s = 1.0 + ramp * (amount or 0.3)
            cx, cy = (lf + r) / 2, (t + b) / 2
            m = np.array([[s, 0, cx - s * cx], [0, s, cy - s * cy]], dtype=np.float32)
            f = cv2.warpAffine(f, m, (f.shape[1], f.shape[0]), borderMode=cv2.BORDER_REPLICATE)
        frames.append(_camera(f, i, seed))
    return frames


def rigid(rgb: np.ndarray, n: int = 8, shift: tuple[float, float] = (30, 10), scale: float = 0.15, angle: float = 8, seed: int = 0) -> list[np.ndarray]:
    """The same photo moved as a whole: translated, scaled and rotated smoothly (a printed photo held up)."""
    (t, r, b, lf), _ = _face(rgb)
    cx, cy = (lf + r) / 2, (t + b) / 2
    out = []
    for i in range(n):
        k = i / max(1, n - 1)
        m = cv2.getRotationMatrix2D((cx, cy), angle * k, 1 + scale * k)
        m[:, 2] += np.array([shift[0] * k, shift[1] * k])
        out.append(_camera(cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), borderMode=cv2.BORDER_REPLICATE), i, seed))
    return out


def answer(path: str, kind: Kind, n: int = 8, seed: int = 0) -> list[bytes]:
    """JPEG frames answering a challenge from one photo, as a kiosk would send them; for
    `closer`, with a slight head turn (the passive check wants a blink or a head movement)."""
    return [jpeg(f) for f in sequence(load(path), kind, n=n, seed=seed, also_turn=0.15 if kind == "closer" else 0.0)]


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def load(path: str, max_side: int = 640) -> np.ndarray:
    bgr = cv2.imread(path)
    if bgr is None:
        raise FileNotFoundError(path)
    h, w = bgr.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1:
        bgr = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
