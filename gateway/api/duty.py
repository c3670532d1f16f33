"""The duty roster (`/api/duty`): who is on duty for a unit and when, who is on duty now,
and the handover view at a shift change (docs/duty.md).

Everything is scoped to the caller's reach: a unit outside it answers 404, as a unit that
does not exist does. Shifts of one unit may overlap (two officers on duty at once); the
same officer entered twice for overlapping times of one unit is a 409.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.alerts.public import AlertNotePublic, Level, State
from gateway.api.deps import CoreDep, CurrentUser, Principal, Require, RowId, SessionDep, UtcTime
from gateway.db.models import DutyShift, Unit, User
from gateway.duty import (
    HANDOVER_WINDOW,
    MAX_SHIFT,
    MAX_WINDOW,
    handover,
    on_duty,
    overlapping_own,
    roster,
)
from gateway.units import unit_in_reach

router = APIRouter(prefix="/api/duty", tags=["duty"])


def _plausible(t: datetime) -> datetime:
    # a roster lives in this era; the bound also keeps window arithmetic (since + 7 days,
    # at +- 2 h) clear of datetime's limits, which would be a 500
    if not 1970 <= t.year <= 2999:
        raise ValueError("a time between the years 1970 and 2999")
    return t


Time = Annotated[UtcTime, AfterValidator(_plausible)]
Writer = Annotated[Principal, Require("duty.write")]
UnitRef = Annotated[str, Field(min_length=1, max_length=64)]
Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
ChannelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="The name of a configured delivery channel.")]
Address = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="An e-mail address (when the channel is e-mail).")]


class ShiftFields(BaseModel):
    officer: Username | None = Field(None, description="The console user on duty (a user of the unit or a unit below it).")
    name: str | None = Field(None, min_length=1, max_length=200, description="Display name; defaults to `officer`.")
    channel: ChannelName | None = None
    address: Address | None = None
    note: str | None = Field(None, max_length=2000)


class ShiftCreate(ShiftFields):
    unit_id: UnitRef
    starts_at: Time
    ends_at: Time


class ShiftUpdate(ShiftFields):
    unit_id: UnitRef | None = None
    starts_at: Time | None = None
    ends_at: Time | None = None


class ShiftPublic(BaseModel):
    id: int
    unit_id: str
    unit_name: str
    officer: str | None
    name: str
    channel: str | None
    address: str | None
    starts_at: datetime
    ends_at: datetime
    note: str | None
    created_by: str | None
    created_at: datetime


class DutyNow(BaseModel):
    unit_id: str = Field(description="The unit asked about.")
    at: datetime
    covered_by: str | None = Field(description="The unit whose shifts these are: the unit itself, or its nearest ancestor with a shift on duty; null when no one is on duty.")
    covered_by_name: str | None
    inherited: bool = Field(description="True when the unit has no shift now and an ancestor's duty officer covers it.")
    shifts: list[ShiftPublic]


class HandoverAlert(BaseModel):
    id: int
    level: Level
    kind: str
    state: State
    person_id: str | None
    person_name: str | None
    unit_id: str
    message: str | None
    opened_at: datetime
    updated_at: datetime
    assigned_unit_id: str | None
    assignee: str | None
    last_note: AlertNotePublic | None


class HandoverOut(BaseModel):
    unit_id: str
    unit_name: str
    at: datetime
    window_s: int = Field(description="Shifts ending (outgoing) or starting (incoming) this close to `at` are part of the handover.")
    outgoing: list[ShiftPublic]
    incoming: list[ShiftPublic]
    alerts: list[HandoverAlert] = Field(description="Open and acknowledged alerts of the unit and the units below it, oldest first.")
    total_alerts: int
    truncated: bool


def _public(sh: DutyShift, unit_name: str) -> ShiftPublic:
    return ShiftPublic(id=sh.id, unit_id=sh.unit_id, unit_name=unit_name, officer=sh.officer, name=sh.name, channel=sh.channel,
                       address=sh.address, starts_at=sh.starts_at, ends_at=sh.ends_at, note=sh.note, created_by=sh.created_by,
                       created_at=sh.created_at)


async def _unit(s: AsyncSession, unit_id: str, user: Principal) -> Unit:
    unit = await unit_in_reach(s, unit_id, user.reach)
    if unit is None:
        raise HTTPException(404, f"no unit {unit_id}")
    return unit


async def _names(s: AsyncSession, shifts: list[DutyShift]) -> dict[str, str]:
    ids = {sh.unit_id for sh in shifts}
    return {r[0]: r[1] for r in (await s.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids))))} if ids else {}


async def _checked(s: AsyncSession, user: Principal, v: dict[str, Any], exclude_id: int | None = None) -> Unit:
    """The shift's fields hold together: 422 with what is wrong, 404 for a unit out of reach,
    409 for the same officer twice at once."""
    if v["ends_at"] <= v["starts_at"]:
        raise HTTPException(422, "ends_at must be after starts_at")
    if v["ends_at"] - v["starts_at"] > MAX_SHIFT:
        raise HTTPException(422, f"a shift lasts at most {MAX_SHIFT.days} days")
    unit = await _unit(s, v["unit_id"], user)
    if v.get("officer"):
        officer = (await s.scalars(select(User).where(User.username == v["officer"]))).first()
        home = await s.get(Unit, officer.unit_id) if officer is not None else None
        if officer is None or officer.disabled or home is None or not home.path.startswith(unit.path):
            # the same answer whether the user does not exist or works elsewhere
            raise HTTPException(422, f"officer {v['officer']} is not an active user of unit {unit.id} or a unit below it")
    if not v.get("name"):
        if not v.get("officer"):
            raise HTTPException(422, "name: a shift needs a name or an officer")
        v["name"] = v["officer"]
    clash = await overlapping_own(s, unit.id, v.get("officer"), v["name"], v["starts_at"], v["ends_at"], exclude_id)
    if clash is not None:
        raise HTTPException(409, f"{v['name']} already has shift {clash.id} of unit {unit.id} at that time")
    return unit


@router.get("", response_model=list[ShiftPublic])
async def list_shifts(
    user: CurrentUser, s: SessionDep, core: CoreDep,
    unit_id: str | None = Query(None, max_length=64, description="This unit and the units below it; default: every unit in reach."),
    since: Time | None = Query(None, description="Default: now."),
    until: Time | None = Query(None, description=f"Default: since + 7 days; at most {MAX_WINDOW.days} days after since."),
    limit: int = Query(500, ge=1, le=2000),
) -> list[ShiftPublic]:
    since = since or core.clock.now()
    until = until or since + timedelta(days=7)
    if until <= since:
        raise HTTPException(422, "until must be after since")
    if until - since > MAX_WINDOW:
        raise HTTPException(422, f"the roster spans at most {MAX_WINDOW.days} days per request")
    unit = await _unit(s, unit_id, user) if unit_id is not None else None
    return [_public(sh, name) for sh, name in await roster(s, user.reach, unit, since, until, limit)]


@router.get("/now", response_model=DutyNow)
async def now(user: CurrentUser, s: SessionDep, core: CoreDep,
              unit_id: str | None = Query(None, max_length=64, description="Default: the caller's own unit.")) -> DutyNow:
    unit = await _unit(s, unit_id or user.unit_id, user)
    at = core.clock.now()
    covered, shifts = await on_duty(s, unit, at)
    # an ancestor's name is shown although it lies above the caller's reach: officers of an
    # office must know who covers them (the county's duty officer), and nothing else of it
    names = await _names(s, shifts)
    return DutyNow(unit_id=unit.id, at=at, covered_by=covered, covered_by_name=names.get(covered) if covered else None,
                   inherited=covered is not None and covered != unit.id, shifts=[_public(sh, names.get(sh.unit_id, sh.unit_id)) for sh in shifts])


@router.get("/handover", response_model=HandoverOut)
async def handover_view(user: CurrentUser, s: SessionDep, core: CoreDep,
                        unit_id: str | None = Query(None, max_length=64, description="Default: the caller's own unit."),
                        at: Time | None = Query(None, description="The shift change; default now."),
                        limit: int = Query(200, ge=1, le=1000)) -> HandoverOut:
    unit = await _unit(s, unit_id or user.unit_id, user)
    at = at or core.clock.now()
    ho = await handover(s, unit, at, limit)
    alerts = [HandoverAlert(
        id=a.id, level=a.level, kind=a.kind, state=a.state, person_id=a.person_id, person_name=person, unit_id=a.unit_id, message=a.message,
        opened_at=a.opened_at, updated_at=a.updated_at, assigned_unit_id=a.assigned_unit_id, assignee=a.assignee,
        last_note=AlertNotePublic(at=n.at, author=n.author, action=n.action, text=n.text) if n is not None else None,
    ) for a, person, n in ho.alerts]
    return HandoverOut(unit_id=unit.id, unit_name=unit.name, at=at, window_s=int(HANDOVER_WINDOW.total_seconds()),
                       outgoing=[_public(sh, unit.name) for sh in ho.outgoing], incoming=[_public(sh, unit.name) for sh in ho.incoming],
                       alerts=alerts, total_alerts=ho.total, truncated=ho.total > len(alerts))


@router.post("", status_code=201, response_model=ShiftPublic)
async def create_shift(body: ShiftCreate, user: Writer, core: CoreDep) -> ShiftPublic:
    v = body.model_dump()
    async with core.audit.tx() as s:
        unit = await _checked(s, user, v)
        sh = DutyShift(unit_id=unit.id, officer=v["officer"], name=v["name"], channel=v["channel"], address=v["address"],
                       starts_at=v["starts_at"], ends_at=v["ends_at"], note=v["note"], created_by=user.username, created_at=core.clock.now())
        s.add(sh)
        await s.flush()
        await core.audit.add(s, user.username, "duty.created", f"duty:{sh.id}", {
            "unit_id": unit.id, "officer": sh.officer, "name": sh.name, "starts_at": sh.starts_at.isoformat(), "ends_at": sh.ends_at.isoformat()})
        return _public(sh, unit.name)


async def _shift(s: AsyncSession, shift_id: int, user: Principal) -> DutyShift:
    sh = await s.get(DutyShift, shift_id)
    if sh is None or await unit_in_reach(s, sh.unit_id, user.reach) is None:
        raise HTTPException(404, f"no shift {shift_id}")
    return sh


@router.get("/{shift_id:int}", response_model=ShiftPublic)
async def get_shift(shift_id: RowId, user: CurrentUser, s: SessionDep) -> ShiftPublic:
    sh = await _shift(s, shift_id, user)
    return _public(sh, (await _names(s, [sh])).get(sh.unit_id, sh.unit_id))


@router.patch("/{shift_id:int}", response_model=ShiftPublic)
async def update_shift(shift_id: RowId, body: ShiftUpdate, user: Writer, core: CoreDep) -> ShiftPublic:
    changes = body.model_dump(exclude_unset=True)
    for required in ("unit_id", "starts_at", "ends_at"):
        if required in changes and changes[required] is None:
            raise HTTPException(422, f"{required} may not be null")
    async with core.audit.tx() as s:
        sh = await _shift(s, shift_id, user)
        v = {k: getattr(sh, k) for k in ("unit_id", "officer", "name", "channel", "address", "starts_at", "ends_at", "note")}
        if "officer" in changes and "name" not in changes and v["name"] == v["officer"]:
            v["name"] = None  # the name followed the officer: it follows the new one
        v.update(changes)
        unit = await _checked(s, user, v, exclude_id=sh.id)
        for k, value in v.items():
            setattr(sh, k, value)
        await core.audit.add(s, user.username, "duty.updated", f"duty:{sh.id}", {"fields": sorted(changes), "unit_id": unit.id})
        await s.flush()
        return _public(sh, unit.name)


@router.delete("/{shift_id:int}", status_code=204)
async def delete_shift(shift_id: RowId, user: Writer, core: CoreDep) -> None:
    async with core.audit.tx() as s:
        sh = await _shift(s, shift_id, user)
        await core.audit.add(s, user.username, "duty.deleted", f"duty:{sh.id}", {
            "unit_id": sh.unit_id, "name": sh.name, "starts_at": sh.starts_at.isoformat(), "ends_at": sh.ends_at.isoformat()})
        await s.delete(sh)
