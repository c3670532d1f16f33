"""Camera devices and recording settings (owned by the cameras area)."""

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from config.base import Section
from config.device_base import DeviceBase


class CameraDevice(DeviceBase):
    kind: Literal["camera"]
    url: str = Field(pattern=r"^rtsps?://", description="RTSP URL without credentials.")
    username: str | None = None
    password: SecretStr | None = None
    transport: Literal["tcp", "udp"] = "tcp"
    room: str | None = Field(None, description="Room name shown in the console.")
    room_kind: Literal["announcement", "education", "mediation", "counselling", "reception", "other"] = "other"
    record: bool = True
    recognition: bool = Field(False, description="Sample frames for 1:N face identification.")
    retention_days: int | None = Field(None, ge=1, description="Keep this camera's segments this many days (default: recording.retention_days).")

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        # A URL is shown (API, console, logs, error details); a password in it would be
        # shown with it. `password` is write-only and never returned.
        if "@" in urlsplit(v).netloc:
            raise ValueError("credentials in the URL are not allowed: give them in username and password (the password is write-only)")
        return v


class RecordingSettings(Section):
    segment_s: int = Field(60, ge=2, le=3600, description="Target segment length; segments rotate on the next keyframe.")
    pre_roll_s: int = Field(10, ge=0, le=600)
    retention_days: int = Field(30, ge=1)
    min_free_bytes: int = Field(2 * 1024**3, ge=0, description="Delete oldest unheld segments below this much free space.")
    retention_check_s: float = Field(60, gt=0, le=86400, description="How often retention and the disk floor are applied.")
    stall_s: float = Field(5, gt=0, le=300, description="A camera silent this long is restarted by the watchdog.")
    open_timeout_s: float = Field(5, gt=0, le=120, description="Time allowed to connect and read the stream description.")
    backoff_max_s: float = Field(4, gt=0, le=3600, description="Longest wait between reconnection attempts (a camera back from an outage records again within about this long).")
    auth_backoff_s: float = Field(15, gt=0, le=3600, description="Wait after the camera refused the credentials (no tight retry loop).")
    offline_alert_s: float = Field(120, gt=0, le=86400, description="A camera not online this long (offline, unreachable, refusing the credentials) raises an orange camera_offline alert, resolved when it is back.")
    live_queue_packets: int = Field(60, ge=4, le=2000, description="Per-viewer queue; the oldest packets are dropped when a viewer falls behind.")
    live_max_per_camera: int = Field(16, ge=1, le=1000, description="Live viewers of one camera at most (each costs a relay and UDP sockets).")
    live_max_per_user: int = Field(8, ge=1, le=1000, description="Live sessions one user may hold open at once (a wall screen of 8 tiles).")
    live_connect_s: float = Field(30, gt=0, le=600, description="A live session whose browser has not connected by then is closed.")
