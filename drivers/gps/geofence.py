"""Zone index: signed distances from many fixes to many zones at once.

Zones are held in WGS-84. Each zone also gets a local metric frame
(equirectangular around its own centre: under 0.1 % scale error within a few
kilometres, far below GPS accuracy), so distances are in metres without a
projection library. Evaluation is vectorised:

1. an STRtree over the zones' envelopes is queried with one box per fix
   (half-size = the caller's margin in metres) in a single call: only zones
   whose envelope comes within the margin become candidate pairs;
2. for candidate pairs, coordinates are moved into each zone's frame with
   numpy, and `shapely.contains_xy` / `shapely.distance` run over the pair
   arrays in C; circles (Point + radius_m) use the exact |p - c| - r.

A pair that is not a candidate is farther than the margin from the zone, which
is all the rules need to know (see drivers/gps/rules.py).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import shapely.errors
from shapely.geometry import shape

from drivers.gps.geo import M_PER_DEG_LAT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZoneSpec:
    id: str
    kind: str  # inclusion | exclusion
    geometry: dict[str, Any]  # GeoJSON, WGS-84
    radius_m: float | None = None
    schedule: list[dict[str, Any]] | None = None
    timezone: str = "UTC"  # the zone row always has one (gateway.timezone by default)
    buffer_m: float = 30.0
    dwell_s: float = 60.0
    level: str | None = None
    person_ids: tuple[str, ...] = ()
    name: str | None = None


def _validate(geom: shapely.Geometry, spec: ZoneSpec) -> None:
    if geom.is_empty:
        raise ValueError(f"zone {spec.id}: empty geometry")
    if spec.geometry["type"] == "Point":
        if not spec.radius_m or spec.radius_m <= 0:
            raise ValueError(f"zone {spec.id}: a Point zone needs radius_m > 0")
    elif spec.geometry["type"] not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"zone {spec.id}: geometry must be Polygon, MultiPolygon or Point")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ValueError(f"zone {spec.id}: coordinates out of range (GeoJSON order is [lon, lat])")
    if not geom.is_valid:
        raise ValueError(f"zone {spec.id}: invalid polygon ({shapely.is_valid_reason(geom)})")


@dataclass(frozen=True)
class _Placed:
    """A zone in its own metric frame, as the index holds it."""

    local: shapely.Geometry
    box: shapely.Geometry
    lat0: float
    lon0: float
    circle: bool
    radius: float


def _corners(z: ZoneSpec) -> None:
    """A polygon's every ring needs 3 distinct corners: said in those words (shapely's own
    message counts the closing point and speaks of linear rings)."""
    g = z.geometry
    polys = [g.get("coordinates")] if g.get("type") == "Polygon" else g.get("coordinates") if g.get("type") == "MultiPolygon" else []
    for poly in polys if isinstance(polys, list) else []:
        for ring in poly if isinstance(poly, list) else []:
            if isinstance(ring, list):
                try:
                    distinct = {tuple(float(x) for x in p) for p in ring}
                except (TypeError, ValueError):
                    return  # not coordinates at all: shapely's message below says so
                if len(distinct) < 3:
                    raise ValueError(f"zone {z.id}: a polygon needs at least 3 distinct corners (this one has {len(distinct)})")


def _place(z: ZoneSpec) -> _Placed:
    """The zone in its local frame; ValueError with a clear message when it cannot be."""
    _corners(z)
    try:
        geom = shape(z.geometry)
    except Exception as e:  # noqa: BLE001 - shapely raises many kinds for bad GeoJSON
        raise ValueError(f"zone {z.id}: bad GeoJSON geometry ({e})") from None
    _validate(geom, z)
    try:
        if z.geometry["type"] == "Point":
            lon0, lat0 = geom.x, geom.y
            r = float(z.radius_m or 0)
            dlat, dlon = r / M_PER_DEG_LAT, r / (M_PER_DEG_LAT * max(math.cos(math.radians(lat0)), 1e-6))
            return _Placed(shapely.Point(0, 0).buffer(r, quad_segs=16), shapely.box(lon0 - dlon, lat0 - dlat, lon0 + dlon, lat0 + dlat), lat0, lon0, True, r)
        c = geom.centroid
        lon0, lat0 = c.x, c.y
        kx = M_PER_DEG_LAT * math.cos(math.radians(lat0))
        local = shapely.transform(geom, lambda xy: np.column_stack(((xy[:, 0] - lon0) * kx, (xy[:, 1] - lat0) * M_PER_DEG_LAT)))
        if local.is_empty or not local.is_valid:
            raise ValueError("degenerate once placed")
        return _Placed(local, shapely.box(*geom.bounds), lat0, lon0, False, 0.0)
    except (shapely.errors.GEOSException, ValueError) as e:
        raise ValueError(f"zone {z.id}: geometry cannot be used ({e})") from None


def check_zone(spec: ZoneSpec) -> None:
    """Raise ValueError with a clear message if the zone cannot be indexed (the same work
    the index does, so a zone accepted here never breaks the index)."""
    _place(spec)


@dataclass
class ZoneIndex:
    zones: list[ZoneSpec]
    by_id: dict[str, int] = field(init=False)
    max_buffer_m: float = field(init=False)

    def __post_init__(self) -> None:
        # A zone that cannot be placed (stored before the checks that would refuse it now)
        # is left out, loudly: one bad zone must not take geofencing away from everyone.
        placed: list[_Placed] = []
        good: list[ZoneSpec] = []
        for z in self.zones:
            try:
                placed.append(_place(z))
                good.append(z)
            except ValueError as e:
                log.error("%s: left out of the geofence index", e)
        self.zones = good
        n = len(good)
        self.by_id = {z.id: i for i, z in enumerate(good)}
        self.lat0 = np.array([p.lat0 for p in placed], dtype=float)
        self.lon0 = np.array([p.lon0 for p in placed], dtype=float)
        self.kx = M_PER_DEG_LAT * np.maximum(np.cos(np.radians(self.lat0)), 1e-6)
        self.radius = np.array([p.radius for p in placed], dtype=float)
        self.is_circle = np.array([p.circle for p in placed], dtype=bool)
        local = [p.local for p in placed]
        boxes = [p.box for p in placed]
        self.local = np.array(local, dtype=object)
        self.boundary = shapely.boundary(self.local) if n else self.local
        shapely.prepare(self.local)
        self.tree = shapely.STRtree(boxes)
        self.max_buffer_m = max((z.buffer_m for z in self.zones), default=0.0)
        # person -> zone indices; zones without persons apply to everyone
        self._everyone = [i for i, z in enumerate(self.zones) if not z.person_ids]
        self._by_person: dict[str, list[int]] = {}
        self._sets: dict[str, frozenset[int]] = {}
        self._inclusions: dict[str, list[int]] = {}
        for i, z in enumerate(self.zones):
            for p in z.person_ids:
                self._by_person.setdefault(p, []).append(i)

    def zones_of(self, person_id: str) -> list[int]:
        return self._by_person.get(person_id, []) + self._everyone

    def zone_set_of(self, person_id: str) -> frozenset[int]:
        hit = self._sets.get(person_id)
        if hit is None:
            hit = self._sets[person_id] = frozenset(self.zones_of(person_id))
        return hit

    def inclusion_of(self, person_id: str) -> list[int]:
        """The person's inclusion zones: checked on every fix, near or far."""
        hit = self._inclusions.get(person_id)
        if hit is None:
            hit = self._inclusions[person_id] = [z for z in self.zones_of(person_id) if self.zones[z].kind == "inclusion"]
        return hit

    def signed_distances(self, lat: np.ndarray, lon: np.ndarray, margin_m: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate (point index, zone index, signed distance m; < 0 inside).

        Pairs not returned are farther than `margin_m` outside the zone.
        """
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        if not self.zones or lat.size == 0:
            e = np.zeros(0, dtype=np.intp)
            return e, e, np.zeros(0)
        margin = np.broadcast_to(np.asarray(margin_m, dtype=float), lat.shape)
        dlat = margin / M_PER_DEG_LAT
        dlon = margin / (M_PER_DEG_LAT * np.maximum(np.cos(np.radians(lat)), 1e-6))
        pi, zi = self.tree.query(shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat))
        x = (lon[pi] - self.lon0[zi]) * self.kx[zi]
        y = (lat[pi] - self.lat0[zi]) * M_PER_DEG_LAT
        sd = np.empty(pi.shape[0])
        circ = self.is_circle[zi]
        if circ.any():
            sd[circ] = np.hypot(x[circ], y[circ]) - self.radius[zi[circ]]
        poly = ~circ
        if poly.any():
            zp, xp, yp = zi[poly], x[poly], y[poly]
            d = shapely.distance(self.boundary[zp], shapely.points(xp, yp))
            inside = shapely.contains_xy(self.local[zp], xp, yp)
            sd[poly] = np.where(inside, -d, d)
        return pi, zi, sd
