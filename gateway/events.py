"""Typed events: what drivers, rules and services say to each other on the bus.

Each event names its `topic`; subscribers choose topics. Events are immutable
and carry only plain values so they can be serialised for the console.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from gateway.clock import utcnow


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    topic: ClassVar[str] = "event"
    at: datetime = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.topic}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.isoformat() if isinstance(v, datetime) else v
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Position(Event):
    """A decoded fix. `fix_time` is device time; rules use it, never `at`."""

    topic: ClassVar[str] = "position"
    device_id: str
    person_id: str | None
    fix_time: datetime
    lat: float
    lon: float
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    accuracy_m: float | None = None
    satellites: int | None = None
    source: str = "nmea"
    in_order: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStatus(Event):
    topic: ClassVar[str] = "device.status"
    device_id: str
    ts: datetime | None = None
    battery: int | None = None
    charging: bool | None = None
    tamper: bool | None = None
    sos: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceState(Event):
    """Online/offline of any device kind, published on change only."""

    topic: ClassVar[str] = "device.state"
    device_id: str
    kind: str
    state: Literal["online", "offline"]
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraHealth(Event):
    topic: ClassVar[str] = "camera.health"
    camera_id: str
    state: Literal["online", "offline", "auth_failed", "unreachable"]
    fps: float | None = None
    bitrate_bps: float | None = None
    last_keyframe_at: datetime | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KioskEvent(Event):
    topic: ClassVar[str] = "kiosk.event"
    kiosk_id: str
    event_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckIn(Event):
    topic: ClassVar[str] = "checkin"
    checkin_id: int
    kiosk_id: str
    person_id: str
    result: Literal["accepted", "rejected", "retry"]
    distance: float | None = None
    reason: str | None = None
    position_verdict: str | None = None  # a remote check-in's position against the person's zones


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceSeen(Event):
    topic: ClassVar[str] = "face.seen"
    camera_id: str
    person_id: str | None
    distance: float | None
    seen_at: datetime
    snapshot: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadCompleted(Event):
    topic: ClassVar[str] = "upload.completed"
    evidence_id: int
    device_id: str
    sha256: str
    size: int
    quarantined: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertChanged(Event):
    """Emitted by the alert core only; `alert` is the API representation."""

    topic: ClassVar[str] = "alert"
    change: Literal["opened", "updated", "acknowledged", "resolved", "escalated",
                    "assigned", "assessed", "disposed", "fed_back", "level_changed", "noted"]
    alert: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingGap(Event):
    """A camera's recording was interrupted (camera down, queue overflow, disk full) for `duration_s`."""

    topic: ClassVar[str] = "recording.gap"
    camera_id: str
    started_at: datetime
    ended_at: datetime
    duration_s: float
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProceedingChanged(Event):
    """A proceeding started or was sealed (cameras area)."""

    topic: ClassVar[str] = "proceeding"
    proceeding_id: int
    state: Literal["recording", "sealed"]
    person_id: str | None
    kind: str
    camera_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallChanged(Event):
    """A remote video session rang, started, changed parties, or ended (calls area)."""

    topic: ClassVar[str] = "call"
    session_id: str
    state: Literal["ringing", "active", "ended"]
    kind: str
    person_id: str | None = None
    device_id: str | None = None  # the kiosk taking part, if any (and for scoping pushes)
    proceeding_id: int | None = None
    unit_id: str | None = None  # the session's unit: pushes reach the consoles that see it
    parties: list[dict[str, Any]] = field(default_factory=list)  # [{id, role, label, state}]
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadProgress(Event):
    """A tus upload moved forward (uploads area); throttled per upload, for the console."""

    topic: ClassVar[str] = "upload.progress"
    upload_id: str
    device_id: str
    filename: str | None
    offset: int
    length: int
    state: str = "receiving"


# --- change events: what an operator changed, published after commit ---------------------
# They carry ids, not rows: a subscriber reads what it needs from the database, so the same
# event works on every node (issue 17 carries them between nodes).

Change = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceChanged(Event):
    """A device was registered, edited, disabled (`updated`, with enabled false) or removed."""

    topic: ClassVar[str] = "device.changed"
    device_id: str
    kind: str
    change: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneChanged(Event):
    topic: ClassVar[str] = "zone.changed"
    zone_id: str
    change: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonChanged(Event):
    topic: ClassVar[str] = "person.changed"
    person_id: str
    change: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class UserChanged(Event):
    """A console user was created, edited (role, password, disabled) or their tokens revoked."""

    topic: ClassVar[str] = "user.changed"
    user_id: int
    change: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitChanged(Event):
    """An organisation unit was created, renamed or moved under another parent."""

    topic: ClassVar[str] = "unit.changed"
    unit_id: str
    change: Change


CHANGE_TOPICS = ("device.changed", "zone.changed", "person.changed", "user.changed", "unit.changed")
