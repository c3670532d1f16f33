"""Kiosk devices and their check-in schedules (owned by the faces/kiosks area)."""

import re
from typing import Literal

from pydantic import Field, field_validator

from config.base import Section, TimeZone
from config.device_base import DeviceBase

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ScheduledCheckin(Section):
    """A person must check in (accepted) at this kiosk between start and end on these days."""

    person_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], description="ISO weekdays, 1 = Monday.")
    start: str = Field("09:00", description="HH:MM local time.")
    end: str = Field("17:00", description="HH:MM local time; the check-in is missed if none was accepted by then.")
    timezone: TimeZone | None = Field(None, description="IANA time zone of start/end; default gateway.timezone.")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError("must be HH:MM (24 h)")
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("days are ISO weekdays 1..7")
        return v


class KioskDevice(DeviceBase):
    kind: Literal["kiosk"]
    location: str | None = None
    heartbeat_interval_s: int = Field(60, ge=5)
    offline_after_s: int | None = Field(None, ge=5, description="No heartbeat for this long → offline (default: 3 heartbeat intervals).")
    checkins: list[ScheduledCheckin] = Field(default_factory=list, description="Scheduled check-ins at this kiosk.")
