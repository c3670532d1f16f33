"""Stays and trips (gateway/stays.py) from real GNSS captures.

The fixes come from ../shared/data/nmea (the gpsd project's regression logs, BSD-2-Clause),
decoded by our own NMEA decoder: `nmea-rtk.log` is an RTK receiver standing still for
eleven minutes (Iowa, 2020-03-18, a ten-minute gap in the middle); `bundg_zeus_9.log` is a
receiver walking about 430 m in two and a half minutes (the Netherlands, 2018-08-20).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from drivers.gps.geo import haversine_m
from drivers.gps.nmea import NmeaState, decode_nmea
from gateway.stays import Point, Stay, Trip, summarise
from tests.gps.helpers import offset

TODAY = date(2026, 11, 22)


def capture(shared_data: Path, name: str) -> list[Point]:
    """The capture's fixes in time order; those before its first RMC (dated today by the
    decoder, as it has no date yet) are left out."""
    state, points = NmeaState(), []
    for raw in (shared_data / "nmea" / name).read_bytes().splitlines():
        if raw.startswith(b"#"):
            continue
        for f in decode_nmea(raw, state, TODAY).fixes:
            if f.fix_time.date() != TODAY:
                points.append(Point(f.fix_time, f.lat, f.lon, f.speed_mps, len(points) + 1))
    return points


def path_m(points: list[Point]) -> float:
    return sum(haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in zip(points, points[1:], strict=False))


def test_a_receiver_standing_still_is_one_stay(shared_data: Path) -> None:
    pts = capture(shared_data, "nmea-rtk.log")
    assert len(pts) > 200
    [stay] = summarise(pts)
    assert isinstance(stay, Stay)
    assert (stay.start, stay.end, stay.fixes, stay.first_ref) == (pts[0].t, pts[-1].t, len(pts), 1)
    assert stay.end - stay.start > timedelta(minutes=10)
    # the centre lies among the fixes (they scatter over a few metres)
    assert all(haversine_m(stay.lat, stay.lon, p.lat, p.lon) <= stay.radius_m + 1e-6 for p in pts)
    assert 0 < stay.radius_m < 10


def test_a_walk_is_one_trip(shared_data: Path) -> None:
    pts = capture(shared_data, "bundg_zeus_9.log")
    [trip] = summarise(pts)
    assert isinstance(trip, Trip)
    assert (trip.start, trip.end, trip.fixes, trip.first_ref) == (pts[0].t, pts[-1].t, len(pts), 1)
    assert trip.distance_m == pytest.approx(path_m(pts)) and 400 < trip.distance_m < 460
    # the receiver reported ~3 m/s (a brisk walk) in its RMC sentences
    assert trip.max_speed_mps is not None and 2.5 < trip.max_speed_mps < 4


def test_stay_walk_stay(shared_data: Path) -> None:
    """The standing RTK receiver's scatter, moved to where the walk starts and to the
    minutes before it, then the walk, then the same scatter where the walk ends."""
    rtk, walk = capture(shared_data, "nmea-rtk.log"), capture(shared_data, "bundg_zeus_9.log")
    here = rtk[0]

    def moved(to: Point, ends_at: datetime | None = None, starts_at: datetime | None = None, ref0: int = 0) -> list[Point]:
        shift = (ends_at - rtk[-1].t) if ends_at else (starts_at - rtk[0].t) if starts_at else timedelta()
        return [Point(p.t + shift, to.lat + (p.lat - here.lat), to.lon + (p.lon - here.lon), p.speed_mps, ref0 + k)
                for k, p in enumerate(rtk)]

    before = moved(walk[0], ends_at=walk[0].t - timedelta(seconds=1), ref0=1000)
    after = moved(walk[-1], starts_at=walk[-1].t + timedelta(seconds=1), ref0=3000)
    stay1, trip, stay2 = summarise([*before, *walk, *after])
    assert isinstance(stay1, Stay) and isinstance(trip, Trip) and isinstance(stay2, Stay)
    # every fix in one segment; the walk's first and last ~100 m lie within the stays' radius
    assert stay1.fixes + trip.fixes + stay2.fixes == 2 * len(rtk) + len(walk)
    assert stay1.fixes > len(rtk) and stay2.fixes > len(rtk) and stay1.radius_m <= 100 and stay2.radius_m <= 100
    assert haversine_m(stay1.lat, stay1.lon, walk[0].lat, walk[0].lon) < 100 and haversine_m(stay2.lat, stay2.lon, walk[-1].lat, walk[-1].lon) < 100
    # the trip: from the last fix of the first stay to the first of the second
    assert (trip.start, trip.end) == (stay1.end, stay2.start) and walk[0].t < trip.start < trip.end < walk[-1].t
    assert 200 < trip.distance_m < 300 and trip.max_speed_mps is not None and trip.max_speed_mps < 4


def test_a_short_halt_is_no_stay_and_a_jump_between_stays_is_a_trip() -> None:
    t0 = datetime(2026, 11, 22, 8, tzinfo=UTC)
    home = [Point(t0 + timedelta(minutes=m), *offset(0, 0), None, m + 1) for m in range(10)]  # 9 minutes at home
    # the device is off on the way: the next fix is 2 km away, where they stay 6 minutes
    work = [Point(t0 + timedelta(minutes=30 + m), *offset(2000, 0), None, 100 + m) for m in range(7)]
    stay1, trip, stay2 = summarise(home + work)
    assert isinstance(trip, Trip) and trip.fixes == 0 and trip.first_ref == 100
    assert (trip.start, trip.end) == (home[-1].t, work[0].t) and trip.distance_m == pytest.approx(2000, rel=1e-3)
    assert trip.max_speed_mps == pytest.approx(2000 / (21 * 60), rel=1e-3)
    assert isinstance(stay1, Stay) and isinstance(stay2, Stay) and stay2.end - stay2.start == timedelta(minutes=6)
    # four minutes standing still: not a stay
    halt = [Point(t0 + timedelta(minutes=m), *offset(0, 0), None, m + 1) for m in range(5)]
    assert [type(g) for g in summarise(halt)] == [Trip]
    assert summarise(halt[:1]) == [] and summarise([]) == []


def test_a_trip_at_the_end_runs_to_the_next_pages_stay() -> None:
    """`after`: the first fix of a stay already summarised (the timeline's next page up)."""
    t0 = datetime(2026, 11, 22, 8, tzinfo=UTC)
    pts = [Point(t0 + timedelta(minutes=m), *offset(0, 0), None, m + 1) for m in range(6)]
    pts += [Point(t0 + timedelta(minutes=6 + m), *offset(300 * (m + 1), 0), None, 50 + m) for m in range(3)]
    nxt = Point(t0 + timedelta(minutes=10), *offset(1200, 0), None, 99)
    stay, trip = summarise(pts, after=nxt)
    assert isinstance(stay, Stay) and isinstance(trip, Trip)
    assert trip.end == nxt.t and trip.distance_m == pytest.approx(1200, rel=1e-3) and trip.fixes == 3
    # a stay at the end stays as it is: no trip is made up to `after`
    assert [type(g) for g in summarise(pts[:6], after=nxt)] == [Stay]
