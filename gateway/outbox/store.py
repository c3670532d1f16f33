"""`OutboxStore`: AlertService's `ChangeSink`. Staging is one row added to the session that
makes the change, so it commits (or rolls back) with the change and its audit entry; the
sender routes and delivers it afterwards, on whichever node holds its lease."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.db.models import OutboxChange
from gateway.units import ROOT


class OutboxStore:
    def stage(self, s: Session | AsyncSession, change: str, payload: dict[str, Any]) -> None:
        s.add(OutboxChange(alert_id=payload["id"], change=change, unit_id=payload.get("unit_id") or ROOT, payload=payload))
