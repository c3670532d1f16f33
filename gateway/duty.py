"""The duty roster: who is on duty for a unit, and when; and the handover at a shift change.

Queries only (the routes are gateway/api/duty.py). Shifts of one unit may overlap: a unit
can have two officers on duty at once (a day officer and a leader on call), and both are
"on duty". A unit with no shift at a moment is covered by its nearest ancestor that has
one (a township office at night by the county's duty officer): `on_duty_query` and
`nearest` give that answer to any caller, sync or async session alike, so the outbox's
routing of red and orange alerts to the duty officer reads the roster the same way the
console does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from gateway.db.models import Alert, AlertNote, DutyShift, Person, Unit
from gateway.units import within

MAX_SHIFT = timedelta(days=7)  # a longer "shift" is a typing mistake (a wrong month, a wrong year)
MAX_WINDOW = timedelta(days=62)  # the longest roster one request lists
# A handover happens around a shift change: the shifts ending and starting within this
# much of the moment asked about are the outgoing and incoming ones
HANDOVER_WINDOW = timedelta(hours=2)
ONGOING = ("open", "acknowledged")


def ancestors(path: str) -> list[str]:
    """The unit ids of a path, the unit itself last: `/root/sh/hp/` -> [root, sh, hp]."""
    return [p for p in path.split("/") if p]


def on_duty_query(path: str, at: datetime) -> Select[DutyShift]:
    """Every shift on duty at `at` for the unit of `path` or any unit above it; `nearest`
    keeps the ones of the deepest unit that has any."""
    return (select(DutyShift).where(DutyShift.unit_id.in_(ancestors(path)), DutyShift.starts_at <= at, DutyShift.ends_at > at)
            .order_by(DutyShift.starts_at, DutyShift.id))


def nearest(path: str, shifts: Sequence[DutyShift]) -> tuple[str | None, list[DutyShift]]:
    """(the unit whose shifts cover the unit of `path`, those shifts): the unit itself when
    it has a shift on duty, else its nearest ancestor that has; (None, []) when none has."""
    for unit_id in reversed(ancestors(path)):
        mine = [sh for sh in shifts if sh.unit_id == unit_id]
        if mine:
            return unit_id, mine
    return None, []


async def on_duty(s: AsyncSession, unit: Unit, at: datetime) -> tuple[str | None, list[DutyShift]]:
    return nearest(unit.path, (await s.scalars(on_duty_query(unit.path, at))).all())


async def roster(s: AsyncSession, reach: str, unit: Unit | None, since: datetime, until: datetime, limit: int) -> list[tuple[DutyShift, str]]:
    """The shifts overlapping [since, until) of `unit` and the units below it (every unit in
    `reach` without one), with their unit's name, in time order."""
    stmt = (select(DutyShift, Unit.name).join(Unit, Unit.id == DutyShift.unit_id)
            .where(DutyShift.ends_at > since, DutyShift.starts_at < until, within(DutyShift.unit_id, reach))
            .order_by(DutyShift.starts_at, DutyShift.id).limit(limit))
    if unit is not None:
        stmt = stmt.where(Unit.path.startswith(unit.path, autoescape=True))
    return [(sh, name) for sh, name in (await s.execute(stmt)).all()]


async def overlapping_own(s: AsyncSession, unit_id: str, officer: str | None, name: str, starts_at: datetime, ends_at: datetime,
                          exclude_id: int | None = None) -> DutyShift | None:
    """A shift of the same officer (by user name, else by display name) for the same unit
    that overlaps: entered twice, not a second officer on duty."""
    stmt = select(DutyShift).where(DutyShift.unit_id == unit_id, DutyShift.starts_at < ends_at, DutyShift.ends_at > starts_at)
    stmt = stmt.where(DutyShift.officer == officer) if officer else stmt.where(DutyShift.officer.is_(None), DutyShift.name == name)
    if exclude_id is not None:
        stmt = stmt.where(DutyShift.id != exclude_id)
    return (await s.scalars(stmt.limit(1))).first()


@dataclass
class Handover:
    outgoing: list[DutyShift]
    incoming: list[DutyShift]
    alerts: list[tuple[Alert, str | None, AlertNote | None]]  # the alert, its person's name, its newest note
    total: int


async def handover(s: AsyncSession, unit: Unit, at: datetime, limit: int) -> Handover:
    """At a shift change around `at`: the unit's shifts that end within HANDOVER_WINDOW of
    it having started before it (outgoing), those that start within the window and go on
    after it (incoming), and the open or acknowledged alerts of the unit and every unit
    below it, oldest first (the first `limit`; `total` counts them all)."""
    lo, hi = at - HANDOVER_WINDOW, at + HANDOVER_WINDOW
    near = (await s.scalars(select(DutyShift).where(DutyShift.unit_id == unit.id, DutyShift.starts_at < hi, DutyShift.ends_at > lo)
                            .order_by(DutyShift.starts_at, DutyShift.id))).all()
    outgoing = [sh for sh in near if sh.starts_at < at and lo < sh.ends_at <= hi]
    incoming = [sh for sh in near if lo <= sh.starts_at < hi and sh.ends_at > at and sh not in outgoing]
    subtree: Any = Alert.unit_id.in_(select(Unit.id).where(Unit.path.startswith(unit.path, autoescape=True)))
    where = (Alert.state.in_(ONGOING), subtree)
    total = int((await s.scalar(select(func.count()).select_from(Alert).where(*where))) or 0)
    rows = (await s.execute(select(Alert, Person.name).outerjoin(Person, Person.id == Alert.person_id).where(*where)
                            .options(raiseload(Alert.notes)).order_by(Alert.opened_at, Alert.id).limit(limit))).all()
    ids = [a.id for a, _ in rows]
    notes: dict[int, AlertNote] = {}
    if ids:
        newest = select(func.max(AlertNote.id)).where(AlertNote.alert_id.in_(ids)).group_by(AlertNote.alert_id)
        notes = {n.alert_id: n for n in (await s.scalars(select(AlertNote).where(AlertNote.id.in_(newest)))).all()}
    return Handover(outgoing, incoming, [(a, name, notes.get(a.id)) for a, name in rows], total)
