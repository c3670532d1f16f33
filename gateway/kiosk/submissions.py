"""Check-ins made exactly once by the terminal's own reference (`client_ref`).

A terminal that lost the answer, or queued the check-in while the gateway was out of reach,
sends it again with the same reference. The reference is claimed (a row, primary key kiosk
and reference) before the check is made and settled with the decision after it: a replay
gets the first decision, a replay racing the first waits (409 with Retry-After), and a claim
whose check never finished (the process died) is given up after STALE_S."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import HTTPException
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from gateway.core import Core
from gateway.db.models import KioskSubmission

STALE_S = 120


async def claim(core: Core, kiosk_id: str, ref: str) -> dict[str, Any] | None:
    """None: this request makes the check-in. A dict: the decision a first request made."""
    for _ in range(3):
        now = core.clock.now()
        try:
            async with core.db.session() as s:
                s.add(KioskSubmission(kiosk_id=kiosk_id, client_ref=ref, response=None, created_at=now))
                await s.commit()
            return None
        except IntegrityError:
            pass
        async with core.db.session() as s:
            row = await s.get(KioskSubmission, (kiosk_id, ref))
            if row is None:
                continue  # released meanwhile (the first try failed): this one makes it
            if row.response is not None:
                return row.response
            if now - row.created_at <= timedelta(seconds=STALE_S):
                break  # another request is deciding it now
            await s.delete(row)
            await s.commit()
    raise HTTPException(409, "this check-in is being decided now; send it again in a moment", headers={"Retry-After": "2"})


async def settle(core: Core, kiosk_id: str, ref: str, response: dict[str, Any]) -> None:
    async with core.db.session() as s:
        await s.execute(update(KioskSubmission).where(KioskSubmission.kiosk_id == kiosk_id, KioskSubmission.client_ref == ref).values(response=response))
        await s.commit()


async def release(core: Core, kiosk_id: str, ref: str) -> None:
    """The check could not be made (bad input, failure): the reference may be sent again."""
    async with core.db.session() as s:
        await s.execute(delete(KioskSubmission).where(KioskSubmission.kiosk_id == kiosk_id, KioskSubmission.client_ref == ref))
        await s.commit()
