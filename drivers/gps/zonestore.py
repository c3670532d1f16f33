"""Zones between configuration, database and the geofence index.

Zones are stored in WGS-84 (`zones.geometry`); what was entered, with its
datum, is kept in `geometry_input`. Config zones are upserted with
source=config at start; config zones removed from the file are deleted (a
zone has no history of its own: alerts keep its id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from drivers.gps.geo import convert_geometry
from drivers.gps.geofence import ZoneSpec, check_zone
from gateway.db.models import Zone, ZonePerson

if TYPE_CHECKING:
    from gateway.services import Services


def to_wgs84(geometry: dict[str, Any], datum: str) -> dict[str, Any]:
    return convert_geometry(geometry, to_wgs84=True) if datum == "gcj02" else geometry


def spec_of(row: Zone) -> ZoneSpec:
    return ZoneSpec(
        id=row.id, kind=row.kind, geometry=row.geometry, radius_m=row.radius_m, schedule=row.schedule,
        timezone=row.timezone, buffer_m=row.buffer_m, dwell_s=row.dwell_s, level=row.level,
        person_ids=tuple(sorted(p.person_id for p in row.persons)), name=row.name,
    )


def zone_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Column values for a zone as entered (API body or config), converted to WGS-84 and checked."""
    datum = data.get("datum") or "wgs84"
    geometry = to_wgs84(data["geometry"], datum)
    schedule = data.get("schedule")
    fields = {
        "name": data.get("name"), "kind": data["kind"], "geometry": geometry, "radius_m": data.get("radius_m"),
        "datum": datum, "geometry_input": data["geometry"] if datum != "wgs84" else None,
        "schedule": [dict(w) for w in schedule] if schedule else None, "timezone": data.get("timezone") or "Asia/Shanghai",
        "buffer_m": data.get("buffer_m", 30.0), "dwell_s": data.get("dwell_s", 60.0), "level": data.get("level"),
    }
    check_zone(ZoneSpec(id=str(data.get("id", "?")), kind=fields["kind"], geometry=geometry, radius_m=fields["radius_m"]))
    return fields


async def sync_config_zones(services: "Services") -> None:
    zones = services.config.zones
    async with services.audit.tx() as s:
        wanted = {z.id for z in zones}
        stale = (await s.scalars(select(Zone.id).where(Zone.source == "config"))).all()
        for zid in stale:
            if zid not in wanted:
                await s.execute(delete(ZonePerson).where(ZonePerson.zone_id == zid))
                await s.execute(delete(Zone).where(Zone.id == zid))
                await services.audit.add(s, "config", "zone.deleted", f"zone:{zid}")
        for z in zones:
            data = z.model_dump(mode="json")
            fields = zone_fields(data)
            row = await s.get(Zone, z.id)
            if row is None:
                row = Zone(id=z.id, source="config", persons=[ZonePerson(zone_id=z.id, person_id=p) for p in z.person_ids], **fields)
                s.add(row)
                await s.flush()
                await services.audit.add(s, "config", "zone.created", f"zone:{z.id}")
            else:
                changed = any(getattr(row, k) != v for k, v in fields.items()) or {p.person_id for p in row.persons} != set(z.person_ids)
                if not changed:
                    continue
                for k, v in fields.items():
                    setattr(row, k, v)
                row.source = "config"
                row.persons = [ZonePerson(zone_id=z.id, person_id=p) for p in z.person_ids]
                await services.audit.add(s, "config", "zone.updated", f"zone:{z.id}")


async def load_zones(services: "Services") -> list[ZoneSpec]:
    async with services.db.session() as s:
        rows = (await s.scalars(select(Zone).order_by(Zone.id))).all()
        return [spec_of(r) for r in rows]
