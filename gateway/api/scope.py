"""What the routes share to keep a user inside their reach (their unit and the units below
it; gateway/units.py). Lists filter with `owned`; item routes fetch with `get_owned`, which
answers 404 for an item outside the reach exactly as for one that does not exist; a create or
update that names a unit goes through `unit_for`.

Items without a unit of their own take their device's (recordings, positions, uploads, face
matches): `devices_in_reach` and `persons_in_reach` are the subqueries for those."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import HTTPException
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.deps import Principal
from gateway.db.models import Device, Person, Unit
from gateway.units import ROOT_PATH, within

M = TypeVar("M")


def owned(column: Any, user: Principal) -> ColumnElement[bool]:
    return within(column, user.reach)


async def reaches(s: AsyncSession, user: Principal, unit_id: str | None) -> bool:
    if user.reach == ROOT_PATH:
        return True
    if unit_id is None:
        return False
    path = await s.scalar(select(Unit.path).where(Unit.id == unit_id))
    return path is not None and path.startswith(user.reach)


async def get_owned(s: AsyncSession, model: type[M], key: Any, user: Principal, what: str) -> M:
    """The row, when it exists and its `unit_id` is in the user's reach; else 404."""
    row = await s.get(model, key)
    if row is None or not await reaches(s, user, getattr(row, "unit_id", None)):
        raise HTTPException(404, f"no {what} {key}")
    return row


async def unit_for(s: AsyncSession, user: Principal, unit_id: str | None) -> str:
    """The unit a new or changed item belongs to: the one named, when it is in reach (404
    otherwise, as if it did not exist), else the user's own."""
    if unit_id is None:
        return user.unit_id
    if not await reaches(s, user, unit_id) or await s.get(Unit, unit_id) is None:
        raise HTTPException(404, f"no unit {unit_id}")
    return unit_id


def devices_in_reach(user: Principal) -> Select[str]:
    return select(Device.id).where(owned(Device.unit_id, user))


def persons_in_reach(user: Principal) -> Select[str]:
    return select(Person.id).where(owned(Person.unit_id, user))


async def device_in_reach(s: AsyncSession, user: Principal, device_id: str | None) -> bool:
    if user.reach == ROOT_PATH:
        return True
    if device_id is None:
        return False
    return await reaches(s, user, await s.scalar(select(Device.unit_id).where(Device.id == device_id)))


async def person_in_reach(s: AsyncSession, user: Principal, person_id: str | None) -> bool:
    if user.reach == ROOT_PATH:
        return True
    if person_id is None:
        return False
    return await reaches(s, user, await s.scalar(select(Person.unit_id).where(Person.id == person_id)))


async def visible_devices(s: AsyncSession, user: Principal) -> set[str] | None:
    """The ids of the devices in reach; None for a root user (every device)."""
    if user.reach == ROOT_PATH:
        return None
    return set((await s.scalars(devices_in_reach(user))).all())
