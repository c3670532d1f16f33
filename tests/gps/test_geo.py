"""GCJ-02 against the published eviltransform reference points; distances; schedules; zone index."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import shapely

from drivers.gps.geo import convert_geometry, gcj02_to_wgs84, haversine_m, wgs84_to_gcj02
from drivers.gps.geofence import ZoneIndex, ZoneSpec
from drivers.gps.schedule import window_start
from tests.gps.helpers import LAT0, LON0, offset, square

# googollee/eviltransform test vectors: (wgs lat, wgs lon, gcj lat, gcj lon)
REFERENCE = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), REFERENCE)
def test_gcj02_reference_points(wlat: float, wlon: float, glat: float, glon: float) -> None:
    assert wgs84_to_gcj02(wlat, wlon) == pytest.approx((glat, glon), abs=1e-9)
    back = gcj02_to_wgs84(glat, glon)
    assert haversine_m(back[0], back[1], wlat, wlon) < 0.01  # centimetres


def test_gcj02_outside_china_is_wgs84() -> None:
    assert wgs84_to_gcj02(48.8566, 2.3522) == (48.8566, 2.3522)
    assert gcj02_to_wgs84(40.7128, -74.006) == (40.7128, -74.006)


def test_convert_geometry() -> None:
    g = convert_geometry({"type": "Point", "coordinates": [REFERENCE[0][3], REFERENCE[0][2]]})
    assert g["coordinates"] == pytest.approx([REFERENCE[0][1], REFERENCE[0][0]], abs=1e-7)


def test_haversine() -> None:
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111195, rel=1e-3)


def test_schedule_windows() -> None:
    night = [{"days": [5], "start": "22:00", "end": "06:00"}]  # Friday night
    sh = "Asia/Shanghai"
    fri_23 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # Fri 23:00 Shanghai
    sat_05 = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)  # Sat 05:00 Shanghai
    sat_07 = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    sat_23 = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    assert window_start(night, sh, fri_23) == datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    assert window_start(night, sh, sat_05) == datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    assert window_start(night, sh, sat_07) is None and window_start(night, sh, sat_23) is None
    day = [{"days": [1, 2, 3, 4, 5, 6, 7], "start": "09:00", "end": "17:00"}]
    assert window_start(day, "Europe/Paris", datetime(2026, 7, 1, 7, 30, tzinfo=UTC)) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # 09:30 CEST: since 09:00
    assert window_start(day, "Europe/Paris", datetime(2026, 7, 1, 6, 30, tzinfo=UTC)) is None


def test_zone_index_signed_distances_match_shapely_in_metres() -> None:
    zones = [
        ZoneSpec("sq", "inclusion", square(500)),
        ZoneSpec("circle", "exclusion", {"type": "Point", "coordinates": [LON0, LAT0]}, radius_m=100),
    ]
    ix = ZoneIndex(zones)
    pts = [offset(0, 0), offset(0, 400), offset(0, 600), offset(150, 0), offset(5000, 0)]
    lat = np.array([p[0] for p in pts])
    lon = np.array([p[1] for p in pts])
    pi, zi, sd = ix.signed_distances(lat, lon, 200.0)
    got = {(int(p), zones[int(z)].id): round(float(d)) for p, z, d in zip(pi, zi, sd, strict=True)}
    assert got[(0, "sq")] == -500 and got[(1, "sq")] == -100 and got[(2, "sq")] == 100
    assert got[(0, "circle")] == -100 and got[(3, "circle")] == 50
    assert not any(k[0] == 4 for k in got)  # 5 km away: not a candidate


def test_zone_index_agrees_with_a_shapely_loop_on_random_points() -> None:
    rng = np.random.default_rng(1)
    zones = [ZoneSpec(f"z{i}", "inclusion", square(float(rng.uniform(50, 400)), *offset(*rng.uniform(-3000, 3000, 2)))) for i in range(60)]
    ix = ZoneIndex(zones)
    lat = LAT0 + rng.uniform(-0.03, 0.03, 300)
    lon = LON0 + rng.uniform(-0.03, 0.03, 300)
    pi, zi, sd = ix.signed_distances(lat, lon, 0.0)
    inside = {(int(p), int(z)) for p, z, d in zip(pi, zi, sd, strict=True) if d < 0}
    polys = [shapely.geometry.shape(z.geometry) for z in zones]
    expect = {(p, z) for p in range(300) for z in range(60) if polys[z].contains(shapely.Point(lon[p], lat[p]))}
    assert inside == expect
