"""Tracks and positions: a person's track as GeoJSON, a device's positions,
the latest position of every tracker for the map. Times are fix (device)
times; `?datum=gcj02` converts coordinates for GCJ-02 map tiles."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select, true

from drivers.gps.geo import wgs84_to_gcj02
from gateway.api.deps import CoreDep, CurrentUser, SessionDep, UtcTime
from gateway.api.scope import devices_in_reach, get_owned
from gateway.db.models import Device, Person, PositionRow
from gateway.units import ROOT_PATH

router = APIRouter(tags=["tracks"])
Datum = Literal["wgs84", "gcj02"]


class PositionProperties(BaseModel):
    device_id: str
    person_id: str | None
    fix_time: datetime = Field(description="Device time of the fix.")
    received_at: datetime
    accuracy_m: float | None
    speed_mps: float | None
    course_deg: float | None
    alt_m: float | None
    satellites: int | None
    source: str = Field(description="nmea or owntracks")
    in_order: bool = Field(description="False for a fix older than one already judged: kept for the track, never seen by the rules.")


class TrackProperties(BaseModel):
    device_id: str
    person_id: str
    kind: Literal["track"] = "track"


class Geometry(BaseModel):
    """A GeoJSON geometry ([lon, lat] order)."""

    type: Literal["Point", "LineString"]
    coordinates: list[float] | list[list[float]]


class Feature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: Geometry
    properties: PositionProperties | TrackProperties


class CollectionProperties(BaseModel):
    person_id: str
    datum: Datum
    count: int = Field(description="Points in the collection.")


class FeatureCollection(BaseModel):
    """GeoJSON (RFC 7946): for a track, one LineString per device and then the points."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    properties: CollectionProperties | None = None


class DevicePosition(PositionProperties):
    lat: float
    lon: float


class MapSettings(BaseModel):
    tile_url: str
    tile_datum: Datum = Field(description="The datum the tiles are drawn in: ask for ?datum= that when drawing positions and zones on them.")
    attribution: str
    center: list[float] = Field(description="[lat, lon] the map opens on, in `tile_datum`")


def _lonlat(p: PositionRow, datum: str) -> list[float]:
    if datum == "gcj02":
        lat, lon = wgs84_to_gcj02(p.lat, p.lon)
        return [lon, lat]
    return [p.lon, p.lat]


def _props(p: PositionRow) -> dict[str, Any]:
    return {
        "device_id": p.device_id, "person_id": p.person_id, "fix_time": p.fix_time, "received_at": p.received_at,
        "accuracy_m": p.accuracy_m, "speed_mps": p.speed_mps, "course_deg": p.course_deg, "alt_m": p.alt_m,
        "satellites": p.satellites, "source": p.source, "in_order": p.in_order,
    }


def _point(p: PositionRow, datum: str) -> Feature:
    return Feature(geometry=Geometry(type="Point", coordinates=_lonlat(p, datum)), properties=PositionProperties(**_props(p)))


def _window(stmt: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(PositionRow.fix_time >= since)
    if until is not None:
        stmt = stmt.where(PositionRow.fix_time <= until)
    return stmt


@router.get("/api/persons/{person_id}/track", response_model=FeatureCollection, summary="GeoJSON FeatureCollection of a person's positions (fix time order)")
async def person_track(
    person_id: str, user: CurrentUser, s: SessionDep,
    since: UtcTime | None = None, until: UtcTime | None = None,
    limit: int = Query(5000, ge=1, le=50_000), datum: Datum = "wgs84",
) -> FeatureCollection:
    await get_owned(s, Person, person_id, user, "person")
    stmt = _window(select(PositionRow).where(PositionRow.person_id == person_id), since, until)
    rows = list((await s.scalars(stmt.order_by(PositionRow.fix_time.desc()).limit(limit))).all())
    rows.reverse()
    points = [_point(p, datum) for p in rows]
    features: list[Feature] = []
    by_device: dict[str, list[list[float]]] = {}
    for p in rows:
        by_device.setdefault(p.device_id, []).append(_lonlat(p, datum))
    for dev, coords in by_device.items():
        if len(coords) > 1:
            features.append(Feature(geometry=Geometry(type="LineString", coordinates=coords), properties=TrackProperties(device_id=dev, person_id=person_id)))
    return FeatureCollection(features=features + points, properties=CollectionProperties(person_id=person_id, datum=datum, count=len(points)))


@router.get("/api/devices/{device_id}/positions", response_model=list[DevicePosition], summary="A tracker's positions, newest first")
async def device_positions(
    device_id: str, user: CurrentUser, s: SessionDep,
    since: UtcTime | None = None, until: UtcTime | None = None,
    limit: int = Query(500, ge=1, le=50_000), datum: Datum = "wgs84",
) -> list[DevicePosition]:
    await get_owned(s, Device, device_id, user, "device")
    stmt = _window(select(PositionRow).where(PositionRow.device_id == device_id), since, until)
    rows = (await s.scalars(stmt.order_by(PositionRow.fix_time.desc()).limit(limit))).all()
    out = []
    for p in rows:
        lon, lat = _lonlat(p, datum)
        out.append(DevicePosition(lat=lat, lon=lon, **_props(p)))
    return out


@router.get("/api/positions/latest", response_model=FeatureCollection, summary="The latest position of every tracker (for the map)")
async def latest_positions(user: CurrentUser, s: SessionDep, datum: Datum = "wgs84",
                           limit: int = Query(20_000, ge=1, le=20_000, description="Trackers, by id; the map asks for all (the default).")) -> FeatureCollection:
    last = (select(PositionRow.device_id, func.max(PositionRow.fix_time).label("t"))
            .where(PositionRow.in_order.is_(True), PositionRow.device_id.in_(devices_in_reach(user)) if user.reach != ROOT_PATH else true())
            .group_by(PositionRow.device_id).subquery())
    stmt = (select(PositionRow).join(last, (PositionRow.device_id == last.c.device_id) & (PositionRow.fix_time == last.c.t))
            .order_by(PositionRow.device_id, PositionRow.id.desc()).limit(limit))
    seen: set[str] = set()
    features = []
    for p in (await s.scalars(stmt)).all():
        if p.device_id in seen:
            continue
        seen.add(p.device_id)
        features.append(_point(p, datum))
    return FeatureCollection(features=features)


@router.get("/api/map/settings", response_model=MapSettings, summary="Tile source and map centre for the console map")
async def map_settings(_: CurrentUser, core: CoreDep) -> MapSettings:
    c = core.config.console
    center = wgs84_to_gcj02(*c.map_center) if c.tile_datum == "gcj02" else c.map_center
    return MapSettings(tile_url=c.tile_url, tile_datum=c.tile_datum, attribution=c.tile_attribution, center=list(center))
