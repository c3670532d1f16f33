"""The face pipeline proper: pure functions on pixels, run in worker processes.

Detection runs on a copy scaled down to `detect_max_side` (HOG cost grows with
pixels, and a kiosk face is large); the boxes are scaled back and the 128-d
encoding is computed on the full-resolution image at that box, so the
encoding keeps the detail the downscaled copy lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from recognition.images import decode, to_jpeg

Box = tuple[int, int, int, int]  # top, right, bottom, left (face_recognition's order)
# Why an input was refused: over a pixel limit (HTTP 413) or not usable (HTTP 422).
ErrorKind = Literal["too_large", "bad_input"]


# face_recognition's landmark parts in the order `Face.points` holds them (17+5+5+4+5+6+6+12+12 = 72 points;
# the first 48 are dlib's 68-point indices, the lips repeat two corner points each).
POINT_PARTS = ("chin", "left_eyebrow", "right_eyebrow", "nose_bridge", "nose_tip", "left_eye", "right_eye", "top_lip", "bottom_lip")


@dataclass(frozen=True)
class Params:
    max_pixels: int = 25_000_000
    detect_max_side: int = 640
    upsample: int = 0
    encode: bool = True
    landmarks: bool = False  # eye opening and head pose, for liveness
    thumbnail: bool = True
    max_faces: int = 20
    max_clip_pixels: int = 250_000_000  # width x height x frames decoded from one clip
    max_clip_frames: int = 900


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
    points: np.ndarray | None = None  # the 68-point landmarks as (72, 2) float32 in POINT_PARTS order (active liveness)


@dataclass
class Analysis:
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    thumbnail: bytes | None = None
    error: str | None = None  # set when the input could not be used: the message
    error_kind: ErrorKind | None = None  # and why, for the status code (never read from the message)


def refused(kind: ErrorKind, message: str) -> Analysis:
    return Analysis(0, 0, error=message, error_kind=kind)


def analyse_bytes(data: bytes, p: Params) -> Analysis:
    from recognition.images import BadImage, TooLarge

    try:
        rgb = decode(data, p.max_pixels)
    except TooLarge as e:
        return refused("too_large", str(e))
    except BadImage as e:
        return refused("bad_input", str(e))
    return analyse(rgb, p)


def analyse(rgb: np.ndarray, p: Params, boxes: list[Box] | None = None) -> Analysis:
    """Faces in one picture; `boxes` given: the faces are there (tracked), no detection."""
    import face_recognition  # dlib and its models load in the worker processes only

    h, w = rgb.shape[:2]
    if boxes is None:
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
            face.points = np.asarray([pt for part in POINT_PARTS for pt in marks[i][part]], dtype=np.float32)
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


def _box_offsets(f: Face) -> tuple[float, float, float, float]:
    """Where the detector's box lies around the landmarks, in landmark-box sizes."""
    assert f.points is not None
    x0, y0 = f.points.min(axis=0)
    x1, y1 = f.points.max(axis=0)
    bw, bh = max(float(x1 - x0), 1.0), max(float(y1 - y0), 1.0)
    t, r, b, lf = f.box
    return (t - y0) / bh, (r - x1) / bw, (b - y1) / bh, (lf - x0) / bw


def _tracked_box(points: np.ndarray, offsets: tuple[float, float, float, float], w: int, h: int) -> Box:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    bw, bh = float(x1 - x0), float(y1 - y0)
    ot, orr, ob, ol = offsets
    return (max(0, int(y0 + ot * bh)), min(w, int(x1 + orr * bw)), min(h, int(y1 + ob * bh)), max(0, int(x0 + ol * bw)))


def analyse_sequence(items: list[bytes], p: Params, encode: frozenset[int]) -> list[Analysis]:
    """A challenge's frames, oldest first: landmarks on every frame; detection and the (costly)
    encoding only on the frames in `encode` (and after a frame that lost the face). In the other
    frames the face is tracked: its box is placed on the previous frame's landmarks as the
    detector placed it on the last detected frame's. A face that jumps or changes between frames
    still shows: its landmarks then jump or lose their shape, which the continuity checks of
    recognition/challenge.py refuse."""
    from dataclasses import replace

    from recognition.images import BadImage, TooLarge

    out: list[Analysis] = []
    offsets: tuple[float, float, float, float] | None = None
    prev: np.ndarray | None = None
    for i, data in enumerate(items):
        q = replace(p, encode=p.encode and i in encode, thumbnail=p.thumbnail and i in encode)
        if i in encode or prev is None or offsets is None:
            a = analyse_bytes(data, q)
            detected = True
        else:
            try:
                rgb = decode(data, p.max_pixels)
            except TooLarge as e:
                a = refused("too_large", str(e))
            except BadImage as e:
                a = refused("bad_input", str(e))
            else:
                a = analyse(rgb, q, [_tracked_box(prev, offsets, rgb.shape[1], rgb.shape[0])])
            detected = False
        one = a.faces[0] if len(a.faces) == 1 and a.faces[0].points is not None else None
        if one is not None and detected:
            offsets = _box_offsets(one)
        prev = one.points if one is not None else None
        out.append(a)
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


def eye_aspect_ratio(eye: Any) -> float:
    """One eye's six landmarks (points or an array): its height over its width."""
    p = np.asarray(eye, dtype=np.float64)
    width = np.linalg.norm(p[0] - p[3])
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * width)) if width else 0.0


def eye_opening(marks: dict[str, list[tuple[int, int]]]) -> float:
    """Mean eye aspect ratio (Soukupová & Čech 2016): drops sharply during a blink."""
    return (eye_aspect_ratio(marks["left_eye"]) + eye_aspect_ratio(marks["right_eye"])) / 2


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


class ClipRefused(ValueError):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _check_frame_size(w: int, h: int, p: Params) -> None:
    if w * h > p.max_pixels:
        raise ClipRefused("too_large", f"clip frames are {w}x{h} ({w * h / 1e6:.1f} MP); the limit is {p.max_pixels / 1e6:.1f} MP")


def _check_budget(w: int, h: int, frames: int, p: Params) -> None:
    if frames > p.max_clip_frames:
        raise ClipRefused("too_large", f"clip has more than {p.max_clip_frames} frames; the limit is {p.max_clip_frames}")
    if w * h * frames > p.max_clip_pixels:
        raise ClipRefused("too_large", f"clip is {frames} frames of {w}x{h} ({w * h * frames / 1e6:.1f} MP decoded); "
                                       f"the limit is {p.max_clip_pixels / 1e6:.1f} MP (width x height x frames)")


def sample_clip(data: bytes, n: int, p: Params) -> Iterator[np.ndarray]:
    """Up to `n` RGB frames spread over a clip, yielded one at a time; ClipRefused when the
    clip cannot be used or is over the limits.

    Before a frame is decoded, the frame size (from the stream header) and width x height x
    frames are checked: with the frame count the container states (MP4), then with the
    video packets counted by demuxing (a header may lie or say nothing: Matroska, WebM, raw
    streams). The packet count chooses which frames to keep. Decoding then goes through the
    clip once, dropping every frame that is not sampled (at most one decoded picture and
    one RGB copy are alive), and counts again as it goes: a stream that changes its frame
    size mid-way is refused when it reaches a limit.

    libavcodec gets `max_pixels` too: FFmpeg decodes a few frames while it probes a stream
    at open, before any check here can run, and would otherwise allocate pictures of any
    size the codec allows (a 200 KB clip of 8192x8192 frames cost 290 MB that way)."""
    import io

    import av

    opts = {"max_pixels": str(p.max_pixels)}  # for the container's streams when probing, and for our decoder

    def video(c: av.container.InputContainer) -> av.VideoStream:
        if not c.streams.video:
            raise ClipRefused("bad_input", "the clip has no video stream")
        return c.streams.video[0]

    try:
        with av.open(io.BytesIO(data), mode="r", options=opts) as c:
            v = video(c)
            w, h = v.codec_context.width, v.codec_context.height
            _check_frame_size(w, h, p)
            if v.frames:
                _check_budget(w, h, v.frames, p)
            count = 0
            for pkt in c.demux(v):
                if pkt.size:
                    count += 1
                    if count > p.max_clip_frames:
                        _check_budget(w, h, count, p)
            _check_budget(w, h, count, p)
        if count == 0:
            raise ClipRefused("bad_input", "the clip has no video frames")
        wanted = {round(i * (count - 1) / max(n - 1, 1)) for i in range(n)}
        with av.open(io.BytesIO(data), mode="r", options=opts) as c:
            v = video(c)
            v.codec_context.options = dict(opts)
            pixels, kept, last = 0, 0, None
            try:
                for i, f in enumerate(c.decode(v)):
                    _check_frame_size(f.width, f.height, p)
                    pixels += f.width * f.height
                    if pixels > p.max_clip_pixels or i >= p.max_clip_frames:
                        raise ClipRefused("too_large", f"clip refused while decoding: its frames add up to more than {p.max_clip_pixels / 1e6:.1f} MP "
                                                       f"(width x height x frames) or {p.max_clip_frames} frames")
                    if i in wanted:
                        kept, last = kept + 1, None
                        yield f.to_ndarray(format="rgb24")
                    else:
                        last = f
            except av.error.FFmpegError:
                # the decoder refused a picture over max_pixels (a size change mid-stream): say so
                _check_frame_size(v.codec_context.width, v.codec_context.height, p)
                raise
            if kept < len(wanted) and last is not None:
                # fewer frames came out than packets went in: the clip's last frame stands for the missing ones
                yield last.to_ndarray(format="rgb24")
    except ClipRefused:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise ClipRefused("bad_input", f"clip could not be decoded: {e}") from None


def analyse_clip(data: bytes, n: int, p: Params) -> list[Analysis]:
    """`n` frames spread over a short clip (MP4/WebM/...), each analysed as soon as it is
    decoded (`sample_clip`); one Analysis with `error` and `error_kind` set when the clip
    cannot be used or is over the limits."""
    out: list[Analysis] = []
    try:
        for rgb in sample_clip(data, n, p):
            out.append(analyse(rgb, p))
    except ClipRefused as e:
        return [refused(e.kind, str(e))]
    if not out:
        return [refused("bad_input", "the clip has no decodable frames")]
    return out
