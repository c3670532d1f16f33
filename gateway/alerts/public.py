"""An alert as everyone outside the core sees it: the API, the console's WebSocket, the MQTT
topics and the webhooks all carry this one model (`AlertChanged.alert` is its JSON form)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.db.models import Alert

Level = Literal["red", "orange", "yellow", "blue"]
State = Literal["open", "acknowledged", "resolved"]


class AlertPosition(BaseModel):
    lat: float
    lon: float


class AlertNotePublic(BaseModel):
    at: datetime
    author: str
    action: str = Field(description="opened, acknowledged, resolved, escalated, assigned, assessed, disposed, fed_back, level, note")
    text: str | None


class AlertPublic(BaseModel):
    id: int
    kind: str = Field(description="inclusion_exit, exclusion_breach, curfew, lost_contact, tamper, ...")
    level: Level
    original_level: Level = Field(description="The level it opened with (escalation raises `level`).")
    state: State
    person_id: str | None
    device_id: str | None
    zone_id: str | None
    unit_id: str = Field(description="The unit the alert belongs to: its person's, else its device's.")
    message: str | None
    details: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    escalated_at: datetime | None
    count: int = Field(description="How many times the ongoing condition was reported (updates of this one alert).")
    position: AlertPosition | None
    # handling (研判、处置、反馈): who it is assigned to, what was assessed, how it was disposed
    # of and the feedback that closed it; every step is also a note in `notes`
    assigned_unit_id: str | None = Field(None, description="The unit the alert is assigned to; it sees the alert too.")
    assignee: str | None = Field(None, description="The officer (a user name) of that unit it is assigned to.")
    assigned_at: datetime | None = None
    assessment: str | None = Field(None, description="The latest assessment (研判).")
    assessed_at: datetime | None = None
    assessed_by: str | None = None
    disposal: str | None = Field(None, description="How it was disposed of (处置): one of `alerts.disposals`.")
    disposal_note: str | None = None
    disposed_at: datetime | None = None
    disposed_by: str | None = None
    feedback: str | None = Field(None, description="The feedback (反馈) that closed it.")
    fed_back_at: datetime | None = None
    fed_back_by: str | None = None
    notes: list[AlertNotePublic] = Field(description="The history, oldest first: opened, escalated, assigned, assessed, disposed, fed_back, level, note, ...")

    @classmethod
    def of(cls, a: Alert) -> "AlertPublic":
        # model_construct: the row is ours and already valid; this runs for every alert
        # change of a busy tracker batch
        values: dict[str, Any] = dict(
            id=a.id, kind=a.kind, level=a.level, original_level=a.original_level, state=a.state, person_id=a.person_id,
            device_id=a.device_id, zone_id=a.zone_id, unit_id=a.unit_id, message=a.message, details=a.details or {}, opened_at=a.opened_at,
            updated_at=a.updated_at, acknowledged_at=a.acknowledged_at, acknowledged_by=a.acknowledged_by, resolved_at=a.resolved_at,
            resolved_by=a.resolved_by, escalated_at=a.escalated_at, count=a.count,
            position=AlertPosition.model_construct(lat=a.lat, lon=a.lon) if a.lat is not None and a.lon is not None else None,
            assigned_unit_id=a.assigned_unit_id, assignee=a.assignee, assigned_at=a.assigned_at,
            assessment=a.assessment, assessed_at=a.assessed_at, assessed_by=a.assessed_by,
            disposal=a.disposal, disposal_note=a.disposal_note, disposed_at=a.disposed_at, disposed_by=a.disposed_by,
            feedback=a.feedback, fed_back_at=a.fed_back_at, fed_back_by=a.fed_back_by,
            notes=[AlertNotePublic.model_construct(at=n.at, author=n.author, action=n.action, text=n.text) for n in a.notes],
        )
        return cls.model_construct(**values)


def alert_payload(a: Alert) -> dict[str, Any]:
    """The alert as JSON-ready values, for events and the channels that carry them."""
    return AlertPublic.of(a).model_dump(mode="json")
