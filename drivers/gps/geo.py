"""Earth geometry the tracker rules need: great-circle distance, a local metric
frame around a point, and the GCJ-02 datum used by Chinese map tiles.

GCJ-02 follows the widely used "eviltransform" formulas (googollee/eviltransform):
WGS-84 → GCJ-02 is closed-form; GCJ-02 → WGS-84 has no closed form and is
solved by fixed-point iteration to ~1e-9 degrees. Outside China's bounding box
GCJ-02 equals WGS-84.
"""

from __future__ import annotations

import math

EARTH_R = 6371008.8  # mean radius (m): the haversine distance uses it
_A = 6378245.0  # Krasovsky 1940 semi-major axis, as GCJ-02 defines it
_EE = 0.00669342162296594323
M_PER_DEG_LAT = math.pi * EARTH_R / 180.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_R * math.asin(min(1.0, math.sqrt(h)))


def m_per_deg_lon(lat: float) -> float:
    return M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 1e-6)


def valid_lat_lon(lat: float, lon: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def out_of_china(lat: float, lon: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + common
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + common
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad = math.radians(lat)
    magic = 1.0 - _EE * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sq) * math.pi)
    dlon = dlon * 180.0 / (_A / sq * math.cos(rad) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if out_of_china(lat, lon):
        return lat, lon
    dlat, dlon = _delta(lat, lon)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """Iterative inverse: start at the GCJ point, correct by the forward error."""
    if out_of_china(lat, lon):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(30):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        elat, elon = glat - lat, glon - lon
        wlat, wlon = wlat - elat, wlon - elon
        if abs(elat) < 1e-10 and abs(elon) < 1e-10:
            break
    return wlat, wlon


def convert_geometry(geometry: dict, to_wgs84: bool = True) -> dict:
    """A GeoJSON geometry with every [lon, lat] pair converted between datums."""
    fn = gcj02_to_wgs84 if to_wgs84 else wgs84_to_gcj02

    def conv(c):  # type: ignore[no-untyped-def]
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            lat, lon = fn(float(c[1]), float(c[0]))
            return [lon, lat, *c[2:]]
        return [conv(x) for x in c]

    return {**geometry, "coordinates": conv(geometry["coordinates"])}
