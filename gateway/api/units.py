"""Organisation units: a tree (province → city → county → judicial office, any depth).

Anyone sees their own unit and the units below it; an admin (units.write) creates units below
their own and renames or moves the units below it, never their own unit (that is for the unit
above). A move rewrites the subtree's paths in one transaction, so every node sees the new
reach at the next request. Units outside the caller's reach answer 404."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import CoreDep, CurrentUser, Principal, Require, SessionDep
from gateway.api.scope import owned
from gateway.db.models import Unit
from gateway.events import UnitChanged
from gateway.units import move_subtree, path_of

router = APIRouter(prefix="/api/units", tags=["units"])
Admin = Annotated[Principal, Require("units.write")]
UnitId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Lower-case letters, digits, _ and -.")]


class UnitCreate(BaseModel):
    id: UnitId
    name: str = Field(min_length=1, max_length=200)
    parent_id: str = Field(min_length=1, max_length=64, description="Your own unit or one below it.")


class UnitUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    parent_id: str | None = Field(None, min_length=1, max_length=64, description="Move the unit (and everything below it) under this one.")


class UnitPublic(BaseModel):
    id: str
    name: str
    parent_id: str | None
    path: str = Field(description="The ids from the root down: /root/county/office/.")
    depth: int = Field(description="0 for the root unit.")
    source: str = Field(description="system (the root), config (the configuration file) or api.")
    created_at: datetime
    updated_at: datetime


def _public(u: Unit) -> UnitPublic:
    return UnitPublic(id=u.id, name=u.name, parent_id=u.parent_id, path=u.path, depth=u.path.count("/") - 2, source=u.source,
                      created_at=u.created_at, updated_at=u.updated_at)


async def _in_reach(s: SessionDep, user: Principal, unit_id: str) -> Unit:
    u = await s.get(Unit, unit_id)
    if u is None or not u.path.startswith(user.reach):
        raise HTTPException(404, f"no unit {unit_id}")
    return u


@router.get("", response_model=list[UnitPublic], summary="Your unit and every unit below it, in tree order")
async def list_units(user: CurrentUser, s: SessionDep, limit: int = Query(10_000, ge=1, le=10_000)) -> list[UnitPublic]:
    rows = (await s.scalars(select(Unit).where(owned(Unit.id, user)).order_by(Unit.path).limit(limit))).all()
    return [_public(u) for u in rows]


@router.get("/{unit_id}", response_model=UnitPublic)
async def get_unit(unit_id: str, user: CurrentUser, s: SessionDep) -> UnitPublic:
    return _public(await _in_reach(s, user, unit_id))


@router.post("", response_model=UnitPublic, status_code=201)
async def create_unit(body: UnitCreate, user: Admin, core: CoreDep) -> UnitPublic:
    async with core.audit.tx() as s:
        parent = await _in_reach(s, user, body.parent_id)
        if await s.get(Unit, body.id) is not None:
            raise HTTPException(409, f"unit {body.id} exists")
        u = Unit(id=body.id, name=body.name, parent_id=parent.id, path=path_of(parent.path, body.id), source="api")
        s.add(u)
        await s.flush()
        await core.audit.add(s, user.username, "unit.created", f"unit:{u.id}", {"name": u.name, "parent_id": parent.id})
    await core.bus.publish(UnitChanged(unit_id=u.id, change="created"))
    return _public(u)


@router.patch("/{unit_id}", response_model=UnitPublic)
async def update_unit(unit_id: str, body: UnitUpdate, user: Admin, core: CoreDep) -> UnitPublic:
    async with core.audit.tx() as s:
        u = await _in_reach(s, user, unit_id)
        if u.id == user.unit_id or u.parent_id is None:
            raise HTTPException(403, "your own unit is changed by an admin of the unit above it")
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if body.name is not None:
            u.name = body.name
        if body.parent_id is not None and body.parent_id != u.parent_id:
            parent = await _in_reach(s, user, body.parent_id)
            if parent.path.startswith(u.path):
                raise HTTPException(422, f"unit {u.id} cannot move below itself ({parent.id})")
            await move_subtree(s, u, path_of(parent.path, u.id))
            u.parent_id = parent.id
        await core.audit.add(s, user.username, "unit.updated", f"unit:{u.id}", changes)
        out = _public(u)
    await core.bus.publish(UnitChanged(unit_id=unit_id, change="updated"))
    return out
