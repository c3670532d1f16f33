"""Active liveness: did the face in a short sequence of frames perform the movement the
server asked for? Pure functions on the landmarks of `recognition.faces.Analysis`.

Challenges: `turn_left`, `turn_right` (the person's left/right, camera not mirrored: the
nose moves towards the image's right/left), `blink`, `closer`. From each frame's 68-point
landmarks (dlib's, through face_recognition): a yaw proxy (the nose tip's position between
the two jaw edges along the eye line, -1..1, 0 frontal), the eye aspect ratio (EAR) and the
face size (inter-ocular distance, IOD; every distance below is in IODs).

A sequence passes only when all of these hold:
- the same person throughout (face encodings of the sampled frames close to each other);
- continuous motion: no large landmark step between consecutive frames, no sudden change of
  the face's shape, and no step far larger than the others (a slideshow of photos, or still
  frames followed by a cut);
- the asked movement, from the first frame: the yaw moves past `turn_min` in the asked
  direction (mostly monotonically, and not also the other way); the EAR dips below
  `blink_ratio` of its open value and recovers; the face grows by `closer_min`;
- a non-rigid change: for turns, after the best similarity transform (shift, scale,
  in-plane rotation) from the first to the peak frame, landmarks remain off by
  `min_residual` (a photo moved as a whole fits a similarity transform almost exactly);
  for a blink, the eye aspect ratio itself, which no similarity transform changes.
  `closer` is a scale change by nature and has no such test: it is the weakest challenge
  (the passive check, which wants a blink or a head movement, still runs first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np

from config.faces import ActiveLivenessSettings, ChallengeKind
from recognition.faces import Analysis, eye_aspect_ratio

Kind = ChallengeKind
KINDS: tuple[Kind, ...] = get_args(Kind)

PROMPTS: dict[Kind, dict[str, str]] = {
    "turn_left": {"zh-CN": "请慢慢把头转向左边", "en": "Slowly turn your head to your left"},
    "turn_right": {"zh-CN": "请慢慢把头转向右边", "en": "Slowly turn your head to your right"},
    "blink": {"zh-CN": "请眨眼", "en": "Blink your eyes"},
    # Moving closer is a change of scale, which a photo can imitate: the passive check that runs
    # first wants a blink or a head movement, so the prompt asks for a blink as well.
    "closer": {"zh-CN": "请慢慢靠近摄像头，并眨一下眼", "en": "Slowly move closer to the camera and blink"},
}

# Indices into Face.points (recognition.faces.POINT_PARTS order).
JAW = slice(0, 17)
NOSE_TIP = slice(31, 36)
LEFT_EYE = slice(36, 42)  # the eye on the image's left
RIGHT_EYE = slice(42, 48)
OUTLINE = np.r_[0:36]  # jaw, brows and nose: moves with the head, not with the eyes or mouth
EYES = np.r_[36:48]


@dataclass
class ChallengeResult:
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def iod(p: np.ndarray) -> float:
    return float(np.linalg.norm(p[RIGHT_EYE].mean(axis=0) - p[LEFT_EYE].mean(axis=0))) or 1.0


def yaw(p: np.ndarray) -> float:
    """Nose tip between the jaw edges along the eye line: -1 (image left) .. 1 (image right)."""
    axis = p[RIGHT_EYE].mean(axis=0) - p[LEFT_EYE].mean(axis=0)
    u = axis / (np.linalg.norm(axis) or 1.0)
    jl, jr, nose = float(p[0] @ u), float(p[16] @ u), float(p[NOSE_TIP].mean(axis=0) @ u)
    return 2 * (nose - jl) / ((jr - jl) or 1.0) - 1


def ear(p: np.ndarray) -> float:
    return (eye_aspect_ratio(p[LEFT_EYE]) + eye_aspect_ratio(p[RIGHT_EYE])) / 2


def similarity_residual(src: np.ndarray, dst: np.ndarray, fit: np.ndarray | None = None, measure: np.ndarray | None = None) -> float:
    """RMS distance (in IODs of `dst`) left after the best similarity transform (Umeyama)
    taking `src` to `dst`, fitted on the points `fit` and measured on `measure` (all by default)."""
    f = np.arange(len(src)) if fit is None else fit
    m = f if measure is None else measure
    a, b = src[f].astype(np.float64), dst[f].astype(np.float64)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - ma, b - mb
    cov = b0.T @ a0 / len(a)
    u, d, vt = np.linalg.svd(cov)
    sgn = np.diag([1.0, float(np.sign(np.linalg.det(u @ vt)) or 1.0)])
    rot = u @ sgn @ vt
    var = float((a0 ** 2).sum() / len(a)) or 1.0
    scale = float(np.trace(np.diag(d) @ sgn)) / var
    moved = (src[m].astype(np.float64) - ma) @ rot.T * scale + mb
    return float(np.sqrt(((moved - dst[m]) ** 2).sum(axis=1).mean())) / iod(dst)


def _fail(reason: str, details: dict[str, Any]) -> ChallengeResult:
    return ChallengeResult(False, reason, details)


def judge_challenge(kind: str, frames: list[Analysis], s: ActiveLivenessSettings) -> ChallengeResult:
    details: dict[str, Any] = {"kind": kind, "frames": len(frames)}
    if kind not in KINDS:
        return _fail(f"unknown challenge {kind!r}", details)
    faces = [(i, a.faces[0]) for i, a in enumerate(frames) if len(a.faces) == 1 and a.faces[0].points is not None]
    missing = [i for i in range(len(frames)) if i not in {j for j, _ in faces}]
    details["frames_without_one_face"] = missing
    if len(missing) > s.max_missing or len(faces) < 3:
        return _fail(f"exactly one face is needed in every frame; {len(missing)} of {len(frames)} frames had none or several", details)
    pts = [f.points for _, f in faces]
    assert all(p is not None for p in pts)
    P = [np.asarray(p, dtype=np.float64) for p in pts if p is not None]

    # Same person throughout.
    encs = [f.encoding for _, f in faces if f.encoding is not None]
    if len(encs) >= 2:
        e = np.asarray(encs)
        spread = float(np.max(np.linalg.norm(e[:, None, :] - e[None, :, :], axis=2)))
        details["identity_spread"] = round(spread, 3)
        if spread > s.same_person:
            return _fail(f"the face changed during the challenge (encodings {spread:.2f} apart, at most {s.same_person:.2f})", details)

    # Continuity.
    sizes = [iod(p) for p in P]
    steps = [float(np.linalg.norm(b - a, axis=1).mean()) / ((sa + sb) / 2) for a, b, sa, sb in zip(P, P[1:], sizes, sizes[1:], strict=False)]
    shape_steps = [similarity_residual(a, b, OUTLINE) for a, b in zip(P, P[1:], strict=False)]
    med = float(np.median(steps))
    details.update(steps=[round(x, 3) for x in steps], shape_steps=[round(x, 3) for x in shape_steps])
    worst = int(np.argmax(steps))
    if steps[worst] > s.max_step:
        return _fail(f"the face jumped between frames {faces[worst][0]} and {faces[worst + 1][0]} ({steps[worst]:.2f} eye distances): not one continuous movement", details)
    for k, (st, sh) in enumerate(zip(steps, shape_steps, strict=False)):
        if sh > s.max_shape_step:
            return _fail(f"the face changed shape at once between frames {faces[k][0]} and {faces[k + 1][0]} (by {sh:.3f}): a cut between photos, not a movement", details)
        others = steps[:k] + steps[k + 1:]
        base = float(np.median(others)) if others else med
        if st > s.jump_min and st > s.jump_ratio * base:
            return _fail(f"the face jumped between frames {faces[k][0]} and {faces[k + 1][0]} ({st:.2f} eye distances, {st / max(base, 1e-6):.0f}x the other steps): "
                         "a slideshow or a cut, not one continuous movement", details)

    # The asked movement.
    yaws = [yaw(p) for p in P]
    ears = [ear(p) for p in P]
    details.update(yaw=[round(y, 3) for y in yaws], ear=[round(x, 3) for x in ears], iod=[round(x, 1) for x in sizes])
    if kind in ("turn_left", "turn_right"):
        sign = 1.0 if kind == "turn_left" else -1.0
        y0 = yaws[0]
        if abs(y0) > s.frontal_max:
            return _fail(f"the head must start facing the camera (yaw {y0:+.2f}, at most ±{s.frontal_max:.2f})", details)
        moved = [sign * (y - y0) for y in yaws]
        peak = int(np.argmax(moved))
        details.update(turn=round(moved[peak], 3), turn_other_way=round(-min(moved), 3))
        if -min(moved) >= s.turn_min:
            other = "right" if kind == "turn_left" else "left"
            return _fail(f"the head turned {other}, not {kind.split('_')[1]} as asked (yaw {y0:+.2f} → {yaws[int(np.argmin(moved))]:+.2f})", details)
        if moved[peak] < s.turn_min:
            return _fail(f"no turn to the {kind.split('_')[1]}: yaw moved {moved[peak]:.2f} that way, at least {s.turn_min:.2f} needed", details)
        d = np.diff(moved[: peak + 1])
        back, fwd = float(-d[d < 0].sum()), float(d[d > 0].sum())
        if back > s.turn_back_max * fwd:
            return _fail(f"the turn went back and forth (back {back:.2f}, forward {fwd:.2f}): not one movement", details)
        residual = similarity_residual(P[0], P[peak])
    elif kind == "blink":
        # The eye aspect ratio is a ratio of lengths within the eye: a shift, scale or
        # in-plane rotation of a photo cannot change it, so its dip is the non-rigid test here.
        open_ = float(np.median(ears))
        low = int(np.argmin(ears))
        before, after = ears[:low], ears[low + 1:]
        details.update(ear_open=round(open_, 3), ear_min=round(ears[low], 3), eye_residual=round(similarity_residual(P[0], P[low], measure=EYES), 4))
        if ears[low] >= s.blink_ratio * open_:
            return _fail(f"no blink: the eye opening fell to {ears[low] / max(open_, 1e-6):.0%} of open, below {s.blink_ratio:.0%} needed", details)
        if not before or max(before) < s.blink_recover * open_:
            return _fail("the eyes must be open in the first frames, then blink", details)
        if not after or max(after) < s.blink_recover * open_:
            return _fail("the eyes closed but did not open again within the frames sent", details)
        return ChallengeResult(True, f"blink seen (eye opening down to {ears[low] / open_:.0%})", details)
    else:  # closer
        grow = max(sizes[1:]) / sizes[0] - 1
        details["growth"] = round(grow, 3)
        if grow < s.closer_min:
            return _fail(f"the face did not come closer: it grew {grow:.0%}, at least {s.closer_min:.0%} needed", details)
        return ChallengeResult(True, f"moved closer (face {grow:.0%} larger)", details)
    details["residual"] = round(residual, 4)
    if residual < s.min_residual:
        return _fail(f"the face moved as a whole (landmark residual {residual:.3f} after a similarity transform, at least {s.min_residual:.3f}): "
                     "a photo moved in front of the camera, not a live face", details)
    return ChallengeResult(True, f"{kind.replace('_', ' ')} seen", details)
