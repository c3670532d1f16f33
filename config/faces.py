"""Face recognition settings (owned by the faces area).

Distances are face_recognition's Euclidean distances between 128-d encodings:
on the project's real photos the same person measures 0.33-0.43 and different
persons 0.82-0.87, so the default threshold sits in the wide gap between them.
`gateway faces calibrate` reports the distributions of a site's own enrollment.
"""

from typing import Literal, get_args

from pydantic import Field, model_validator

from config.base import Section

ChallengeKind = Literal["turn_left", "turn_right", "blink", "closer"]


class LivenessSettings(Section):
    min_frames: int = Field(3, ge=2, le=50, description="Fewest frames a kiosk burst must carry for a liveness decision.")
    max_frames: int = Field(20, ge=2, le=100, description="Most frames read from a burst or clip; the rest are ignored.")
    still_diff: float = Field(1.5, ge=0, le=50, description="Mean grey-level change of the face between frames below which the burst is a still image.")
    blink_ratio: float = Field(0.75, gt=0, lt=1, description="A blink: the smallest eye opening of the burst is below this fraction of the largest.")
    pose_change: float = Field(0.06, gt=0, lt=1, description="Head movement: change of the nose position relative to the eyes (fraction of the eye distance).")


class ActiveLivenessSettings(Section):
    """Challenge-response liveness for kiosk check-ins (recognition/challenge.py, docs/faces.md).

    Distances are in inter-ocular distances (IOD, between the eye centres), so they do not
    depend on the camera's resolution or how far the person stands. Defaults were set on
    sequences made from the project's real photos (tests/faces/test_active_liveness.py)."""

    required: bool = Field(True, description="Kiosk check-ins must carry a challenge issued by POST /api/kiosk/challenges; false: passive liveness only.")
    allow_offline: bool = Field(True, description="A check-in the terminal made while the gateway was out of reach may answer a challenge the terminal chose "
                                                  "(`offline_challenge`); it is judged the same way and marked as terminal-chosen. False: refused.")
    kinds: list[ChallengeKind] = Field(
        default_factory=lambda: list(get_args(ChallengeKind)), min_length=1, description="Challenges the server picks from, at random.")
    ttl_s: float = Field(20.0, gt=0, le=300, description="A challenge expires this long after it was issued (time to read the prompt and move).")
    frames_wanted: int = Field(8, ge=3, le=30, description="Frames the kiosk is asked to send, `interval_ms` apart.")
    interval_ms: int = Field(150, ge=20, le=2000, description="Time between the frames the kiosk sends.")
    identity_frames: int = Field(2, ge=2, le=30, description="Frames whose face is detected and encoded (first, last, evenly between); in the others it is tracked and gets landmarks only.")
    max_missing: int = Field(1, ge=0, le=10, description="Frames that may lack exactly one face (a head turned past the detector).")
    same_person: float = Field(0.5, gt=0, lt=2, description="Largest encoding distance between two frames of one sequence.")
    frontal_max: float = Field(0.3, gt=0, lt=1, description="Turns: |yaw| of the first frame must be at most this (yaw: nose position between the jaw edges, -1..1).")
    turn_min: float = Field(0.15, gt=0, lt=2, description="Turns: the yaw must move at least this far, in the asked direction, from the first frame.")
    turn_back_max: float = Field(0.5, ge=0, le=1, description="Turns: steps against the asked direction before the peak may add up to this fraction of the forward steps.")
    blink_ratio: float = Field(0.7, gt=0, lt=1, description="Blink: the eye aspect ratio must drop below this fraction of its median over the frames ...")
    blink_recover: float = Field(0.85, gt=0, le=1, description="... and come back above this fraction of it in a later frame.")
    closer_min: float = Field(0.15, gt=0, lt=5, description="Closer: the face (IOD) must grow by at least this fraction.")
    min_residual: float = Field(0.025, ge=0, lt=1, description="Turns: RMS landmark residual (IOD) after the best similarity transform between the first and peak frames; "
                                                              "a photo moved, scaled or rotated fits one almost exactly.")
    max_step: float = Field(0.6, gt=0, lt=10, description="Continuity: largest mean landmark displacement between consecutive frames (IOD).")
    max_shape_step: float = Field(0.08, gt=0, lt=10, description="Continuity: largest change of the face outline and nose (residual after a similarity transform) between consecutive frames (IOD).")
    jump_ratio: float = Field(5.0, gt=1, le=100, description="Continuity: a step this many times the median step ...")
    jump_min: float = Field(0.12, gt=0, lt=10, description="... and at least this large (IOD) is a jump: a slideshow, or still frames then a cut.")


class FaceSettings(Section):
    match_threshold: float = Field(0.6, gt=0, lt=2, description="Distance at or below which two faces are the same person.")
    retry_margin: float = Field(0.05, ge=0, lt=1, description="Distances within this margin of the threshold (either side) answer 'retry' instead of guessing.")
    sample_fps: float = Field(2.0, gt=0, le=30, description="Frames per second decoded per recognition camera.")
    sample_max_side: int = Field(960, ge=160, le=4096, description="Sampled camera frames are scaled so their longer side is at most this.")
    vote_window_s: float = Field(4.0, gt=0, le=60, description="Camera sightings are voted over this window before a face.seen is emitted.")
    min_votes: int = Field(2, ge=1, le=50, description="Frames within the window that must agree on a person.")
    seen_cooldown_s: float = Field(30.0, ge=0, description="Same person on the same camera is reported again only after this.")
    detect_max_side: int = Field(640, ge=160, le=4096, description="Faces are found on a copy scaled to this longer side; encodings use the full-resolution crop.")
    detect_upsample: int = Field(0, ge=0, le=3, description="HOG upsampling for detection (1 finds faces half as large, about 4x slower).")
    min_face_px: int = Field(80, ge=20, le=2000, description="Enrollment: the face box's shorter side in the original photo.")
    min_sharpness: float = Field(40.0, ge=0, description="Enrollment: variance of the Laplacian of the face scaled to 160 px; lower is blurred.")
    min_brightness: float = Field(50.0, ge=0, le=255, description="Enrollment: mean grey level of the face; lower is too dark.")
    duplicate_threshold: float | None = Field(None, gt=0, lt=2, description="Enrollment photos this close to another person are flagged as duplicates (default: match_threshold).")
    max_image_pixels: int = Field(25_000_000, ge=100_000, le=200_000_000, description="Larger images are refused before decoding (decompression bombs).")
    max_clip_pixels: int = Field(250_000_000, ge=1_000_000, le=10_000_000_000,
                                 description="A kiosk clip's width x height x frames (about 4 s of 1080p at 30 fps); larger clips are refused (413), "
                                             "before decoding when the container or its packets tell, else as soon as decoding reaches it.")
    max_clip_frames: int = Field(900, ge=2, le=100_000, description="Most frames in a kiosk clip (30 s at 30 fps); longer clips are refused (413).")
    max_photos: int = Field(10, ge=1, le=100, description="Check-in photos or frames accepted in one request.")
    workers: int = Field(1, ge=1, le=64, description="Processes for face detection and encoding, off the event loop.")
    liveness: LivenessSettings = Field(default_factory=LivenessSettings)
    active_liveness: ActiveLivenessSettings = Field(default_factory=ActiveLivenessSettings)

    @model_validator(mode="after")
    def _band_inside(self) -> "FaceSettings":
        if self.retry_margin >= self.match_threshold:
            raise ValueError("retry_margin must be smaller than match_threshold")
        return self
