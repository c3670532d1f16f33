from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.alerts import AlertError, AlertPublic
from gateway.api.deps import CoreDep, CurrentUser, Principal, Require, RowId, SessionDep, UtcTime
from gateway.db.models import Alert

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class NoteIn(BaseModel):
    note: str | None = Field(None, max_length=2000)


@router.get("", response_model=list[AlertPublic])
async def list_alerts(
    _: CurrentUser, s: SessionDep,
    state: Literal["open", "acknowledged", "resolved", "ongoing"] | None = None,
    level: Literal["red", "orange", "yellow", "blue"] | None = None,
    kind: str | None = Query(None, max_length=32),
    person_id: str | None = Query(None, max_length=64),
    device_id: str | None = Query(None, max_length=64),
    since: UtcTime | None = None,
    limit: int = Query(200, ge=1, le=2000),
) -> list[AlertPublic]:
    stmt = select(Alert).order_by(Alert.updated_at.desc(), Alert.id.desc()).limit(limit)
    if state == "ongoing":
        stmt = stmt.where(Alert.state.in_(("open", "acknowledged")))
    elif state:
        stmt = stmt.where(Alert.state == state)
    if level:
        stmt = stmt.where(Alert.level == level)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    if person_id:
        stmt = stmt.where(Alert.person_id == person_id)
    if device_id:
        stmt = stmt.where(Alert.device_id == device_id)
    if since:
        stmt = stmt.where(Alert.updated_at >= since)
    return [AlertPublic.of(a) for a in (await s.scalars(stmt)).all()]


@router.get("/{alert_id}", response_model=AlertPublic)
async def get_alert(alert_id: RowId, _: CurrentUser, s: SessionDep) -> AlertPublic:
    a = await s.get(Alert, alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return AlertPublic.of(a)


@router.post("/{alert_id}/ack", response_model=AlertPublic)
async def acknowledge(alert_id: RowId, user: Annotated[Principal, Require("alerts.ack")], core: CoreDep, body: NoteIn | None = None) -> AlertPublic:
    try:
        return AlertPublic.model_validate(await core.alerts.acknowledge(alert_id, user.username, body.note if body else None))
    except AlertError as e:
        raise HTTPException(e.status, str(e)) from None


@router.post("/{alert_id}/resolve", response_model=AlertPublic)
async def resolve(alert_id: RowId, user: Annotated[Principal, Require("alerts.resolve")], core: CoreDep, body: NoteIn | None = None) -> AlertPublic:
    try:
        return AlertPublic.model_validate(await core.alerts.resolve(alert_id, user.username, body.note if body else None))
    except AlertError as e:
        raise HTTPException(e.status, str(e)) from None
