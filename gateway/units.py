"""Organisation units and a user's reach: their own unit and every unit below it.

Every scoped query goes through `within`: one prefix match on `units.path`, evaluated by
the database on whichever node answers, so a unit created or moved on one node is in
reach on every node at once (nothing is cached). A root user's queries carry no filter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, func, literal, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Unit

ROOT = "root"
ROOT_PATH = f"/{ROOT}/"


def path_of(parent_path: str | None, unit_id: str) -> str:
    return f"{parent_path or '/'}{unit_id}/"


def within(column: Any, reach: str) -> ColumnElement[bool]:
    """`column` (a unit id) names a unit inside `reach` (a unit's path)."""
    if reach == ROOT_PATH:
        return true()
    return column.in_(select(Unit.id).where(Unit.path.startswith(reach, autoescape=True)))  # type: ignore[no-any-return]


async def unit_in_reach(s: AsyncSession, unit_id: str | None, reach: str) -> Unit | None:
    """The unit, when it exists and lies inside `reach`; None otherwise (the caller answers
    404 either way: a user never learns what exists outside their reach)."""
    if unit_id is None:
        return None
    unit = await s.get(Unit, unit_id)
    return unit if unit is not None and unit.path.startswith(reach) else None


async def reach_of(s: AsyncSession, unit_id: str) -> str:
    """The path of a user's unit; a unit that no longer exists reaches nothing."""
    unit = await s.get(Unit, unit_id)
    return unit.path if unit is not None else f"/\0{unit_id}/"


async def move_subtree(s: AsyncSession, unit: Unit, new_path: str) -> None:
    """Give `unit` and every unit below it the path prefix `new_path`, in one statement of the
    caller's transaction (the new prefix replaces the old one), and reload `unit`."""
    old = unit.path
    if old == new_path:
        return
    await s.flush()  # pending changes of `unit` (a new name) survive the refresh below
    await s.execute(update(Unit).where(Unit.path.startswith(old, autoescape=True))
                    .values(path=literal(new_path, String).concat(func.substr(Unit.path, len(old) + 1)))
                    .execution_options(synchronize_session=False))
    await s.refresh(unit)
