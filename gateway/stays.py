"""Positions summarised as stays and trips, for a person's timeline.

A stay: consecutive fixes all within `radius_m` of the first of them, spanning at least
`min_stay_s` (the stay-point rule of Li et al., "Mining user similarity based on location
history", 2008). A trip: what lies between two stays: it starts when the person left the
stay before (its last fix) and ends when they reached the next (its first fix), so its
distance counts those legs too; at the start or the end of the fixes given it starts at its
own first fix or ends at its own last one.

Pure: fixes in, segments out, nothing read or written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from drivers.gps.geo import M_PER_DEG_LAT, haversine_m, m_per_deg_lon

RADIUS_M = 100.0
MIN_STAY_S = 300.0


class Point(NamedTuple):
    t: datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    ref: int = 0  # the caller's id for the fix (a position row's id)


@dataclass(frozen=True)
class Stay:
    start: datetime
    end: datetime
    lat: float  # centre: the mean of the fixes
    lon: float
    radius_m: float  # the farthest fix from the centre
    fixes: int
    first_ref: int


@dataclass(frozen=True)
class Trip:
    start: datetime
    end: datetime
    distance_m: float
    fixes: int  # its own fixes, not counting the stays' at either end
    max_speed_mps: float | None  # the fastest reported speed, or leg (distance / time) where none was reported
    first_ref: int  # its first own fix, or the next stay's first when it has none


Segment = Stay | Trip


def _stay_ends(pts: Sequence[Point], radius_m: float, min_stay_s: float) -> list[tuple[int, int]]:
    """[i, j) index ranges of the stays, found greedily from the oldest fix."""
    if not pts:
        return []
    lat0 = pts[0].lat
    kx, ky = m_per_deg_lon(lat0), M_PER_DEG_LAT
    xy = [(p.lon * kx, p.lat * ky) for p in pts]  # a local flat frame: fine for ~100 m
    r2 = radius_m * radius_m
    out: list[tuple[int, int]] = []
    n, i = len(pts), 0
    while i < n:
        x0, y0 = xy[i]
        j = i + 1
        while j < n and (xy[j][0] - x0) ** 2 + (xy[j][1] - y0) ** 2 <= r2:
            j += 1
        if (pts[j - 1].t - pts[i].t).total_seconds() >= min_stay_s:
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def _stay(pts: Sequence[Point]) -> Stay:
    lat = math.fsum(p.lat for p in pts) / len(pts)
    lon = math.fsum(p.lon for p in pts) / len(pts)
    radius = max(haversine_m(lat, lon, p.lat, p.lon) for p in pts)
    return Stay(start=pts[0].t, end=pts[-1].t, lat=lat, lon=lon, radius_m=radius, fixes=len(pts), first_ref=pts[0].ref)


def _trip(path: Sequence[Point], own: Sequence[Point], first_ref: int) -> Trip:
    distance = 0.0
    speeds: list[float] = [p.speed_mps for p in own if p.speed_mps is not None]
    legs: list[float] = []
    for a, b in zip(path, path[1:], strict=False):
        d = haversine_m(a.lat, a.lon, b.lat, b.lon)
        distance += d
        dt = (b.t - a.t).total_seconds()
        if dt > 0:
            legs.append(d / dt)
    top = max(speeds) if speeds else (max(legs) if legs else None)
    return Trip(start=path[0].t, end=path[-1].t, distance_m=distance, fixes=len(own), max_speed_mps=top, first_ref=first_ref)


def summarise(points: Sequence[Point], after: Point | None = None, radius_m: float = RADIUS_M, min_stay_s: float = MIN_STAY_S) -> list[Segment]:
    """Stays and trips, oldest first, from fixes in time order. Every fix is in at most one
    segment (a lone fix with no stay on either side makes none). `after`: the fix just after
    these, already summarised (the first of a stay): a trip at the end runs up to it."""
    stays = _stay_ends(points, radius_m, min_stay_s)
    out: list[Segment] = []
    prev_end = 0  # index after the previous stay
    for k in range(len(stays) + 1):
        i, j = stays[k] if k < len(stays) else (len(points), len(points))
        own = points[prev_end:i]
        before = [points[prev_end - 1]] if prev_end > 0 else []
        nxt = [points[i]] if i < len(points) else ([after] if after is not None and own else [])
        path = [*before, *own, *nxt]
        if own or (before and nxt):
            if len(path) > 1:
                out.append(_trip(path, own, own[0].ref if own else points[i].ref))
        if k < len(stays):
            out.append(_stay(points[i:j]))
            prev_end = j
    return out
