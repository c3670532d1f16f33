"""Zones as configured (geometry, schedule). Converted to WGS-84 where they enter."""

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from config.base import Section, TimeZone


class ScheduleWindow(Section):
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], description="ISO weekdays, 1 = Monday.")
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("days are ISO weekdays 1..7")
        return v


class ZoneConfig(Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str | None = None
    unit: str | None = Field(None, max_length=64, description="The organisation unit it belongs to (units:); the root unit when absent.")
    kind: Literal["inclusion", "exclusion"]
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon, MultiPolygon, or Point with radius_m.")
    radius_m: float | None = Field(None, ge=1, le=100_000)
    datum: Literal["wgs84", "gcj02"] = "wgs84"
    schedule: list[ScheduleWindow] | None = None
    timezone: TimeZone | None = Field(None, description="IANA time zone of the schedule; default gateway.timezone.")
    buffer_m: float = Field(30.0, ge=0)
    dwell_s: float = Field(60.0, ge=0)
    level: Literal["red", "orange", "yellow", "blue"] | None = None
    person_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _geometry(self) -> "ZoneConfig":
        gtype = self.geometry.get("type")
        if gtype not in ("Polygon", "MultiPolygon", "Point"):
            raise ValueError("geometry.type must be Polygon, MultiPolygon or Point")
        if gtype == "Point" and self.radius_m is None:
            raise ValueError("a Point zone needs radius_m")
        if "coordinates" not in self.geometry:
            raise ValueError("geometry needs coordinates")
        return self
