"""Tracks and positions: a person's track as GeoJSON, a device's positions,
the latest position of every tracker for the map. Times are fix (device)
times; `?datum=gcj02` converts coordinates for GCJ-02 map tiles."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import func, select

from drivers.gps.geo import wgs84_to_gcj02
from gateway.api.deps import CoreDep, CurrentUser, SessionDep
from gateway.db.models import Device, Person, PositionRow

router = APIRouter(tags=["tracks"])
Datum = Literal["wgs84", "gcj02"]


def _lonlat(p: PositionRow, datum: str) -> list[float]:
    if datum == "gcj02":
        lat, lon = wgs84_to_gcj02(p.lat, p.lon)
        return [lon, lat]
    return [p.lon, p.lat]


def _props(p: PositionRow) -> dict[str, Any]:
    return {
        "device_id": p.device_id, "person_id": p.person_id, "fix_time": p.fix_time.isoformat(), "received_at": p.received_at.isoformat(),
        "accuracy_m": p.accuracy_m, "speed_mps": p.speed_mps, "course_deg": p.course_deg, "alt_m": p.alt_m,
        "satellites": p.satellites, "source": p.source, "in_order": p.in_order,
    }


def _window(stmt: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(PositionRow.fix_time >= since)
    if until is not None:
        stmt = stmt.where(PositionRow.fix_time <= until)
    return stmt


@router.get("/api/persons/{person_id}/track", summary="GeoJSON FeatureCollection of a person's positions (fix time order)")
async def person_track(
    person_id: str, _: CurrentUser, s: SessionDep,
    since: datetime | None = None, until: datetime | None = None,
    limit: int = Query(5000, ge=1, le=50_000), datum: Datum = "wgs84",
) -> dict[str, Any]:
    if await s.get(Person, person_id) is None:
        raise HTTPException(404, f"no person {person_id}")
    stmt = _window(select(PositionRow).where(PositionRow.person_id == person_id), since, until)
    rows = list((await s.scalars(stmt.order_by(PositionRow.fix_time.desc()).limit(limit))).all())
    rows.reverse()
    points = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": _lonlat(p, datum)}, "properties": _props(p)} for p in rows]
    features: list[dict[str, Any]] = []
    by_device: dict[str, list[list[float]]] = {}
    for p in rows:
        by_device.setdefault(p.device_id, []).append(_lonlat(p, datum))
    for dev, coords in by_device.items():
        if len(coords) > 1:
            features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}, "properties": {"device_id": dev, "person_id": person_id, "kind": "track"}})
    return {"type": "FeatureCollection", "features": features + points, "properties": {"person_id": person_id, "datum": datum, "count": len(points)}}


@router.get("/api/devices/{device_id}/positions", summary="A tracker's positions, newest first")
async def device_positions(
    device_id: str, _: CurrentUser, s: SessionDep,
    since: datetime | None = None, until: datetime | None = None,
    limit: int = Query(500, ge=1, le=50_000), datum: Datum = "wgs84",
) -> list[dict[str, Any]]:
    if await s.get(Device, device_id) is None:
        raise HTTPException(404, f"no device {device_id}")
    stmt = _window(select(PositionRow).where(PositionRow.device_id == device_id), since, until)
    rows = (await s.scalars(stmt.order_by(PositionRow.fix_time.desc()).limit(limit))).all()
    out = []
    for p in rows:
        lon, lat = _lonlat(p, datum)
        out.append({"lat": lat, "lon": lon, **_props(p)})
    return out


@router.get("/api/positions/latest", summary="The latest position of every tracker (for the map)")
async def latest_positions(_: CurrentUser, s: SessionDep, datum: Datum = "wgs84") -> dict[str, Any]:
    last = select(PositionRow.device_id, func.max(PositionRow.fix_time).label("t")).where(PositionRow.in_order.is_(True)).group_by(PositionRow.device_id).subquery()
    stmt = select(PositionRow).join(last, (PositionRow.device_id == last.c.device_id) & (PositionRow.fix_time == last.c.t))
    seen: set[str] = set()
    features = []
    for p in (await s.scalars(stmt)).all():
        if p.device_id in seen:
            continue
        seen.add(p.device_id)
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": _lonlat(p, datum)}, "properties": _props(p)})
    return {"type": "FeatureCollection", "features": features}


@router.get("/api/map/settings", summary="Tile source and map centre for the console map")
async def map_settings(_: CurrentUser, core: CoreDep) -> dict[str, Any]:
    c = core.config.console
    return {"tile_url": c.tile_url, "tile_datum": c.tile_datum, "attribution": c.tile_attribution, "center": list(c.map_center)}
