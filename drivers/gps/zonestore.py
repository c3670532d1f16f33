"""Zones between their input (API body or configuration), the database and the
geofence index.

Zones are stored in WGS-84 (`zones.geometry`); what was entered, with its
datum, is kept in `geometry_input`. Configuration zones are written to the
database at start by `gateway/config_sync.py`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from drivers.gps.geo import convert_geometry
from drivers.gps.geofence import ZoneSpec, check_zone
from gateway.db.models import Person, Unit, Zone
from gateway.units import ROOT


def to_wgs84(geometry: dict[str, Any], datum: str) -> dict[str, Any]:
    return convert_geometry(geometry, to_wgs84=True) if datum == "gcj02" else geometry


def spec_of(row: Zone) -> ZoneSpec:
    return ZoneSpec(
        id=row.id, kind=row.kind, geometry=row.geometry, radius_m=row.radius_m, schedule=row.schedule,
        timezone=row.timezone, buffer_m=row.buffer_m, dwell_s=row.dwell_s, level=row.level,
        person_ids=tuple(sorted(p.person_id for p in row.persons)), name=row.name,
    )


def zone_fields(data: dict[str, Any], default_tz: str) -> dict[str, Any]:
    """Column values for a zone as entered (API body or config), converted to WGS-84 and
    checked. A zone without a time zone takes `default_tz` (gateway.timezone)."""
    datum = data.get("datum") or "wgs84"
    geometry = to_wgs84(data["geometry"], datum)
    schedule = data.get("schedule")
    fields = {
        "name": data.get("name"), "kind": data["kind"], "geometry": geometry, "radius_m": data.get("radius_m"),
        "datum": datum, "geometry_input": data["geometry"] if datum != "wgs84" else None,
        "schedule": [dict(w) for w in schedule] if schedule else None, "timezone": data.get("timezone") or default_tz,
        "buffer_m": data.get("buffer_m", 30.0), "dwell_s": data.get("dwell_s", 60.0), "level": data.get("level"),
    }
    check_zone(ZoneSpec(id=str(data.get("id", "?")), kind=fields["kind"], geometry=geometry, radius_m=fields["radius_m"]))
    return fields


async def load_zones(s: AsyncSession) -> list[ZoneSpec]:
    """Every zone, as the geofence index takes it. A zone that names no persons applies to
    every person of its unit and the units below it (an office's zone is not the
    neighbouring office's; the root unit's applies to everyone): those persons are named
    here, and a zone whose units hold nobody is left out. Reloaded when a zone, a person or
    a unit changes."""
    rows = (await s.scalars(select(Zone).order_by(Zone.id))).all()
    out = []
    scoped = {r.unit_id for r in rows if not r.persons and r.unit_id != ROOT}
    members: dict[str, tuple[str, ...]] = {}
    for unit_id in scoped:
        path = await s.scalar(select(Unit.path).where(Unit.id == unit_id))
        ids = (await s.scalars(select(Person.id).join(Unit, Unit.id == Person.unit_id)
                               .where(Unit.path.startswith(path or f"/\0{unit_id}/", autoescape=True)).order_by(Person.id))).all()
        members[unit_id] = tuple(ids)
    for r in rows:
        spec = spec_of(r)
        if r.unit_id in members and not spec.person_ids:
            if not members[r.unit_id]:
                continue
            spec = replace(spec, person_ids=members[r.unit_id])
        out.append(spec)
    return out
