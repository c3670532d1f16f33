from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import MAX_ROW_ID, Principal, Require, SessionDep, UtcTime
from gateway.db.models import AuditEntry
from gateway.units import ROOT_PATH

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    hash: str = Field(description="This entry's link in the hash chain (`gateway audit verify`); the newest one is the chain's head.")


@router.get("", response_model=list[AuditEntryPublic])
async def list_audit(
    user: Annotated[Principal, Require("audit.read")], s: SessionDep,
    actor: str | None = Query(None, max_length=64), action: str | None = Query(None, max_length=64),
    since: UtcTime | None = None, before_id: int | None = Query(None, ge=1, le=MAX_ROW_ID), limit: int = Query(200, ge=1, le=2000),
) -> list[AuditEntryPublic]:
    if user.reach != ROOT_PATH:
        # its entries span every unit and many concern none (logins, configuration): a
        # filtered log would look complete and not be
        raise HTTPException(403, "the audit log spans every unit: only users of the root unit read it")
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action))
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if before_id:
        stmt = stmt.where(AuditEntry.id < before_id)
    return [
        AuditEntryPublic(id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, details=e.details or {}, hash=e.hash)
        for e in (await s.scalars(stmt)).all()
    ]
