"""Kiosk wire messages (JSON over HTTP), parsed into typed models at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="allow")
    state: Literal["ok", "degraded", "maintenance", "error"] = "ok"
    printer: Literal["ok", "offline", "jammed", "absent"] | None = None
    paper: Literal["ok", "low", "out"] | None = None
    software_version: str | None = Field(None, max_length=64)
    ts: datetime | None = None


class KioskEventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=100, description="Client-chosen, unique per kiosk; a replay with the same id is applied once.")
    kind: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_.]+$")
    occurred_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class EventBatch(BaseModel):
    events: list[KioskEventIn] = Field(max_length=1000)


def problems(hb: Heartbeat) -> str | None:
    """A short reason for the device row when the kiosk reports trouble."""
    issues = []
    if hb.state != "ok":
        issues.append(f"state {hb.state}")
    if hb.printer not in (None, "ok"):
        issues.append(f"printer {hb.printer}")
    if hb.paper not in (None, "ok"):
        issues.append(f"paper {hb.paper}")
    return ", ".join(issues) or None
