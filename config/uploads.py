"""Body-worn cameras and upload settings (owned by the uploads area)."""

from typing import Literal

from pydantic import Field

from config.base import Section
from config.device_base import DeviceBase


class BodycamDevice(DeviceBase):
    kind: Literal["bodycam"]
    person_id: str | None = Field(None, description="Officer or supervised person the recorder is issued to.")
    officer: str | None = None


class UploadSettings(Section):
    max_size_bytes: int = Field(8 * 1024**3, ge=1, description="Tus-Max-Size.")
    expire_after_s: int = Field(24 * 3600, ge=60, description="Partial uploads untouched this long are removed.")
    progress_interval_s: float = Field(1.0, ge=0.1, le=60, description="At most one upload.progress console event per upload this often.")
    sweep_interval_s: float = Field(60, ge=1, le=3600, description="How often expired partial uploads are looked for.")
    min_free_bytes: int = Field(1024**3, ge=0, description="Refuse new uploads (507) when the media disk has less free space than this plus the upload's length.")
