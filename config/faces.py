"""Face recognition settings (owned by the faces area).

Distances are face_recognition's Euclidean distances between 128-d encodings:
on the project's real photos the same person measures 0.33-0.43 and different
persons 0.82-0.87, so the default threshold sits in the wide gap between them.
`gateway faces calibrate` reports the distributions of a site's own enrollment.
"""

from pydantic import Field, model_validator

from config.base import Section


class LivenessSettings(Section):
    min_frames: int = Field(3, ge=2, le=50, description="Fewest frames a kiosk burst must carry for a liveness decision.")
    max_frames: int = Field(20, ge=2, le=100, description="Most frames read from a burst or clip; the rest are ignored.")
    still_diff: float = Field(1.5, ge=0, le=50, description="Mean grey-level change of the face between frames below which the burst is a still image.")
    blink_ratio: float = Field(0.75, gt=0, lt=1, description="A blink: the smallest eye opening of the burst is below this fraction of the largest.")
    pose_change: float = Field(0.06, gt=0, lt=1, description="Head movement: change of the nose position relative to the eyes (fraction of the eye distance).")


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

    @model_validator(mode="after")
    def _band_inside(self) -> "FaceSettings":
        if self.retry_margin >= self.match_threshold:
            raise ValueError("retry_margin must be smaller than match_threshold")
        return self
