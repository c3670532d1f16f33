"""Deliveries of alert changes to the field (gateway/outbox/): what each alert's changes were
sent to, and the dead letters (refused as malformed, or out of attempts) for an admin to see
and send again. Scoped to the caller's reach by the alert's unit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, select

from gateway.alerts.service import alert_in_reach
from gateway.api.deps import MAX_ROW_ID, CoreDep, CurrentUser, Principal, Require, RowId, SessionDep
from gateway.clock import utcnow
from gateway.db.models import Alert, OutboxChange, OutboxDelivery
from gateway.units import within

router = APIRouter(prefix="/api/outbox", tags=["outbox"])


class DeliveryPublic(BaseModel):
    id: int
    alert_id: int
    change: str = Field(description="The alert change delivered: opened, escalated, assigned, ...")
    channel: str = Field(description="The configured channel's name (never its URL: robots carry their token in it).")
    address: str | None = Field(description="A duty shift's address (e-mail), when the duty roster routed it.")
    key: str = Field(description="The idempotency key every attempt carries.")
    state: str = Field(description="pending, sent or dead")
    attempts: int
    last_error: str | None
    next_at: datetime
    sent_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, d: OutboxDelivery, c: OutboxChange) -> "DeliveryPublic":
        return cls(id=d.id, alert_id=c.alert_id, change=c.change, channel=d.channel, address=d.address, key=d.key, state=d.state,
                   attempts=d.attempts, last_error=d.last_error, next_at=d.next_at, sent_at=d.sent_at, created_at=d.created_at)


def _query(user: Principal) -> Select[OutboxDelivery, OutboxChange]:
    return (select(OutboxDelivery, OutboxChange).join(OutboxChange, OutboxChange.id == OutboxDelivery.change_id)
            .where(within(OutboxChange.unit_id, user.reach)))


@router.get("/dead", response_model=list[DeliveryPublic], summary="Dead-lettered deliveries, newest first")
async def dead(user: Annotated[Principal, Require("outbox.admin")], s: SessionDep,
               before_id: int | None = Query(None, ge=1, le=MAX_ROW_ID), limit: int = Query(200, ge=1, le=1000)) -> list[DeliveryPublic]:
    stmt = _query(user).where(OutboxDelivery.state == "dead").order_by(OutboxDelivery.id.desc()).limit(limit)
    if before_id:
        stmt = stmt.where(OutboxDelivery.id < before_id)
    return [DeliveryPublic.of(d, c) for d, c in (await s.execute(stmt)).all()]


@router.post("/{delivery_id}/retry", response_model=DeliveryPublic, summary="Send a dead-lettered delivery again (attempts restart)")
async def retry(delivery_id: RowId, user: Annotated[Principal, Require("outbox.admin")], core: CoreDep) -> DeliveryPublic:
    async with core.audit.tx() as s:
        row = (await s.execute(_query(user).where(OutboxDelivery.id == delivery_id))).first()
        if row is None:
            raise HTTPException(404, f"no delivery {delivery_id}")
        d, c = row
        if d.state != "dead":
            raise HTTPException(409, f"delivery {delivery_id} is {d.state}; only dead letters are retried")
        d.state, d.attempts, d.next_at = "pending", 0, utcnow()
        await core.audit.add(s, user.username, "outbox.retry", f"delivery:{d.id}", {"channel": d.channel, "alert_id": c.alert_id, "error": d.last_error})
        out = DeliveryPublic.of(d, c)
    core.outbox.poke()
    return out


@router.get("/alerts/{alert_id}", response_model=list[DeliveryPublic], summary="Where an alert's changes were delivered")
async def of_alert(alert_id: RowId, user: CurrentUser, s: SessionDep) -> list[DeliveryPublic]:
    if await s.scalar(select(Alert.id).where(Alert.id == alert_id, alert_in_reach(user.reach, user.username))) is None:
        raise HTTPException(404, f"no alert {alert_id}")
    stmt = (select(OutboxDelivery, OutboxChange).join(OutboxChange, OutboxChange.id == OutboxDelivery.change_id)
            .where(OutboxChange.alert_id == alert_id).order_by(OutboxDelivery.id).limit(1000))
    return [DeliveryPublic.of(d, c) for d, c in (await s.execute(stmt)).all()]
