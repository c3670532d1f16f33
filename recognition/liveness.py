"""Liveness for kiosk check-ins, from a short burst of frames.

What it checks: the face must change between frames (a re-sent still image
does not), and the change must be non-rigid, i.e. a blink (eye opening drops)
or a head turn or nod (the nose moves relative to the eyes). A printed photo
or a phone screen held up to the camera and moved around moves as a whole, so
its landmarks keep their relative geometry.

What it does not stop (see docs/faces.md): a video of the person replayed on
a screen, a 3-D mask, or a photo bent or rotated strongly about a vertical
axis in front of the camera. Those need depth or infrared hardware or a
challenge-response (ask for a blink at a random moment), not pixels alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config.faces import LivenessSettings
from recognition.faces import Analysis


@dataclass
class LivenessResult:
    live: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def judge(frames: list[Analysis], s: LivenessSettings) -> LivenessResult:
    usable = [a.faces[0] for a in frames if len(a.faces) == 1 and a.faces[0].patch is not None]
    details: dict[str, Any] = {"frames": len(frames), "frames_with_one_face": len(usable)}
    if len(frames) < s.min_frames:
        return LivenessResult(False, f"liveness needs a burst of at least {s.min_frames} frames, got {len(frames)}", details)
    if len(usable) < s.min_frames:
        return LivenessResult(False, f"one face was visible in only {len(usable)} of {len(frames)} frames", details)
    change = max(float(np.abs(a.patch - b.patch).mean()) for a, b in zip(usable, usable[1:], strict=False))  # type: ignore[operator]
    eyes = [f.eye_opening or 0.0 for f in usable]
    poses = np.asarray([f.pose for f in usable], dtype=np.float64)
    pose_range = float(np.max(poses.max(axis=0) - poses.min(axis=0)))
    blink = max(eyes) > 0 and min(eyes) < s.blink_ratio * max(eyes)
    details.update(change=round(change, 3), eye_opening_min=round(min(eyes), 3), eye_opening_max=round(max(eyes), 3), pose_change=round(pose_range, 3), blink=blink, head_moved=pose_range >= s.pose_change)
    if change < s.still_diff:
        return LivenessResult(False, "still image: the face does not change between frames (a photo, not a person)", details)
    if not blink and pose_range < s.pose_change:
        return LivenessResult(False, "no blink or head movement between frames: the face moves as a whole, like a photo held up to the camera", details)
    return LivenessResult(True, "blink" if blink else "head movement", details)
