"""Zones: inclusion/exclusion areas assigned to persons (`/api/zones`).

Geometry may be entered in GCJ-02 (`datum: gcj02`, what Chinese map tiles
show); it is converted to WGS-84 on input and stored in WGS-84, with what was
entered kept as `geometry_input`. `GET ...?datum=gcj02` returns geometry
converted for display on GCJ-02 tiles. Zones from the config file
(`source: config`) may be edited here but the file wins at the next start.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from config.base import TimeZone
from config.zones import ScheduleWindow
from drivers.gps.geo import convert_geometry
from drivers.gps.zonestore import zone_fields
from gateway.api.deps import CoreDep, CurrentUser, Principal, Require, SessionDep
from gateway.api.scope import get_owned, owned, unit_for
from gateway.core import Core
from gateway.db.models import Person, Zone, ZonePerson
from gateway.events import Change, ZoneChanged

router = APIRouter(prefix="/api/zones", tags=["zones"])
Writer = Annotated[Principal, Require("zones.write")]
Level = Literal["red", "orange", "yellow", "blue"]


class ZoneBody(BaseModel):
    name: str | None = Field(None, max_length=200)
    kind: Literal["inclusion", "exclusion"]
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, or Point with radius_m ([lon, lat] order).")
    radius_m: float | None = Field(None, ge=1, le=100_000)
    datum: Literal["wgs84", "gcj02"] = "wgs84"
    schedule: list[ScheduleWindow] | None = Field(None, description='e.g. [{"days":[1,2,3,4,5,6,7],"start":"22:00","end":"06:00"}]: an inclusion zone with a schedule is a curfew.')
    timezone: TimeZone | None = Field(None, description="IANA time zone of the schedule; default gateway.timezone.")
    buffer_m: float = Field(30.0, ge=0, le=10_000)
    dwell_s: float = Field(60.0, ge=0, le=86_400)
    level: Level | None = None
    person_ids: list[str] = Field(default_factory=list, description="Persons the zone applies to; empty: everyone.")


class ZoneCreate(ZoneBody):
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    unit_id: str | None = Field(None, max_length=64, description="Your own unit when absent.")


class ZoneUpdate(BaseModel):
    name: str | None = None
    kind: Literal["inclusion", "exclusion"] | None = None
    geometry: dict[str, Any] | None = None
    radius_m: float | None = Field(None, ge=1, le=100_000)
    datum: Literal["wgs84", "gcj02"] | None = None
    schedule: list[ScheduleWindow] | None = None
    timezone: TimeZone | None = None
    buffer_m: float | None = Field(None, ge=0, le=10_000)
    dwell_s: float | None = Field(None, ge=0, le=86_400)
    level: Level | None = None
    person_ids: list[str] | None = None
    unit_id: str | None = Field(None, max_length=64)


class ZonePublic(BaseModel):
    id: str
    unit_id: str
    name: str | None
    kind: Literal["inclusion", "exclusion"]
    geometry: dict[str, Any] = Field(description="GeoJSON, in `geometry_datum` (WGS-84 unless ?datum=gcj02 asked for display coordinates).")
    radius_m: float | None
    datum: Literal["wgs84", "gcj02"] = Field(description="The datum the zone was entered in.")
    geometry_datum: Literal["wgs84", "gcj02"]
    geometry_input: dict[str, Any] | None = Field(description="The geometry as entered, when it was not WGS-84.")
    schedule: list[ScheduleWindow] | None
    timezone: str
    buffer_m: float
    dwell_s: float
    level: Level | None
    person_ids: list[str]
    source: str
    created_at: datetime
    updated_at: datetime


def public(z: Zone, datum: str = "wgs84") -> ZonePublic:
    geometry = convert_geometry(z.geometry, to_wgs84=False) if datum == "gcj02" else z.geometry
    return ZonePublic.model_validate(dict(
        id=z.id, unit_id=z.unit_id, name=z.name, kind=z.kind, geometry=geometry, radius_m=z.radius_m, datum=z.datum,
        geometry_datum=datum, geometry_input=z.geometry_input, schedule=z.schedule, timezone=z.timezone,
        buffer_m=z.buffer_m, dwell_s=z.dwell_s, level=z.level,
        person_ids=sorted(p.person_id for p in z.persons), source=z.source, created_at=z.created_at, updated_at=z.updated_at,
    ))


def _fields(data: dict[str, Any], default_tz: str) -> dict[str, Any]:
    try:
        return zone_fields(data, default_tz)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise HTTPException(422, str(e)) from None


async def _check_persons(s: Any, user: Principal, ids: list[str]) -> None:
    for pid in ids:
        await get_owned(s, Person, pid, user, "person")


async def _changed(core: Core, zone_id: str, change: Change) -> None:
    """After commit: the trackers area applies it before we answer."""
    await core.bus.publish(ZoneChanged(zone_id=zone_id, change=change))


@router.get("", response_model=list[ZonePublic])
async def list_zones(user: CurrentUser, s: SessionDep, person_id: str | None = None, datum: Literal["wgs84", "gcj02"] = Query("wgs84")) -> list[ZonePublic]:
    stmt = select(Zone).where(owned(Zone.unit_id, user)).order_by(Zone.id).limit(20_000)
    rows = (await s.scalars(stmt)).all()
    if person_id:
        rows = [z for z in rows if not z.persons or any(p.person_id == person_id for p in z.persons)]
    return [public(z, datum) for z in rows]


@router.post("", status_code=201, response_model=ZonePublic)
async def create_zone(body: ZoneCreate, user: Writer, core: CoreDep) -> ZonePublic:
    zid = body.id or f"z-{uuid.uuid4().hex[:10]}"
    data = body.model_dump(mode="json")
    data["id"] = zid
    fields = _fields(data, core.config.gateway.timezone)
    async with core.audit.tx() as s:
        unit = await unit_for(s, user, body.unit_id)
        if await s.get(Zone, zid):
            raise HTTPException(409, f"zone {zid} exists")
        await _check_persons(s, user, body.person_ids)
        z = Zone(id=zid, source="api", unit_id=unit, persons=[ZonePerson(zone_id=zid, person_id=p) for p in body.person_ids], **fields)
        s.add(z)
        await s.flush()
        await core.audit.add(s, user.username, "zone.created", f"zone:{zid}", {"kind": body.kind, "datum": body.datum})
        out = public(z)
    await _changed(core, zid, "created")
    return out


@router.get("/{zone_id}", response_model=ZonePublic)
async def get_zone(zone_id: str, user: CurrentUser, s: SessionDep, datum: Literal["wgs84", "gcj02"] = Query("wgs84")) -> ZonePublic:
    return public(await get_owned(s, Zone, zone_id, user, "zone"), datum)


@router.patch("/{zone_id}", response_model=ZonePublic)
async def update_zone(zone_id: str, body: ZoneUpdate, user: Writer, core: CoreDep) -> ZonePublic:
    changes = body.model_dump(mode="json", exclude_unset=True)
    async with core.audit.tx() as s:
        z = await get_owned(s, Zone, zone_id, user, "zone")
        unit = await unit_for(s, user, changes.pop("unit_id")) if changes.get("unit_id") else z.unit_id
        current = public(z).model_dump(mode="json")
        if "geometry" in changes:
            current["geometry"] = changes["geometry"]
            current["datum"] = changes.get("datum", "wgs84")
        elif z.geometry_input is not None:
            current["geometry"], current["datum"] = z.geometry_input, z.datum
        merged = {**current, **{k: v for k, v in changes.items() if k != "geometry"}}
        try:
            ZoneBody.model_validate({k: merged[k] for k in ZoneBody.model_fields})
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        fields = _fields({**merged, "id": zone_id}, core.config.gateway.timezone)
        for k, v in fields.items():
            setattr(z, k, v)
        if body.person_ids is not None:
            await _check_persons(s, user, body.person_ids)
            z.persons = [ZonePerson(zone_id=zone_id, person_id=p) for p in body.person_ids]
        z.unit_id = unit
        z.updated_at = datetime.now(z.created_at.tzinfo)
        await core.audit.add(s, user.username, "zone.updated", f"zone:{zone_id}", {"fields": sorted(changes)})
        await s.flush()
        out = public(z)
    await _changed(core, zone_id, "updated")
    return out


@router.delete("/{zone_id}", status_code=204)
async def delete_zone(zone_id: str, user: Writer, core: CoreDep) -> None:
    async with core.audit.tx() as s:
        z = await get_owned(s, Zone, zone_id, user, "zone")
        await s.delete(z)
        await core.audit.add(s, user.username, "zone.deleted", f"zone:{zone_id}")
    await _changed(core, zone_id, "deleted")
