"""Position filter: decides, per device and in arrival order, which fixes the
rules may see. A fix is one of:

- accepted: stored and evaluated by the rules;
- out_of_order (older than the last accepted fix): stored for the track, with
  `in_order=False`, but never fed to rule state;
- rejected, with a reason counted in `gateway_gps_rejected_total{reason}`:
  `invalid` (not a number or off the earth), `zero` (0,0: the receiver's
  "no position"), `duplicate` (same fix time as the last accepted),
  `future` (ahead of wall time by more than max_future_s), `stale` (older
  than max_age_s: a receiver without a clock says 1970 or 2000), `speed` (the jump
  from the last accepted fix implies more than max_speed_kmh), `accuracy`
  (accuracy worse than max_accuracy_m).

After `speed_reanchor` consecutive speed rejections the new place is accepted:
a device that really moved (a car ride with no fixes in a tunnel) must not be
rejected forever because its last accepted fix was the outlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from config.trackers import FilterOverride, GpsSettings
from drivers.gps.geo import haversine_m, valid_lat_lon
from drivers.gps.nmea import Fix

ACCEPTED, OUT_OF_ORDER = "accepted", "out_of_order"
REASONS = ("invalid", "zero", "duplicate", "future", "stale", "speed", "accuracy")


@dataclass(frozen=True)
class Limits:
    max_accuracy_m: float
    max_speed_mps: float
    max_future_s: float
    max_age_s: float
    reanchor: int

    @classmethod
    def of(cls, gps: GpsSettings, override: FilterOverride | None = None) -> "Limits":
        o = override or FilterOverride()
        return cls(
            max_accuracy_m=o.max_accuracy_m or gps.max_accuracy_m,
            max_speed_mps=(o.max_speed_kmh or gps.max_speed_kmh) / 3.6,
            max_future_s=gps.max_future_s if o.max_future_s is None else o.max_future_s,
            max_age_s=gps.max_age_s,
            reanchor=gps.speed_reanchor,
        )


@dataclass
class FilterState:
    last_time: datetime | None = None
    last_lat: float = 0.0
    last_lon: float = 0.0
    speed_rejects: int = 0


def judge(fix: Fix, state: FilterState, limits: Limits, now: datetime) -> str:
    """ACCEPTED, OUT_OF_ORDER or a rejection reason; updates `state` on acceptance."""
    if not valid_lat_lon(fix.lat, fix.lon):
        return "invalid"
    if fix.lat == 0.0 and fix.lon == 0.0:
        return "zero"
    if fix.fix_time > now + timedelta(seconds=limits.max_future_s):
        return "future"
    if fix.fix_time < now - timedelta(seconds=limits.max_age_s):
        return "stale"
    if fix.accuracy_m is not None and fix.accuracy_m > limits.max_accuracy_m:
        return "accuracy"
    last = state.last_time
    if last is not None:
        if fix.fix_time == last:
            return "duplicate"
        if fix.fix_time < last:
            return OUT_OF_ORDER
        dt = (fix.fix_time - last).total_seconds()
        dist = haversine_m(state.last_lat, state.last_lon, fix.lat, fix.lon)
        if dist / dt > limits.max_speed_mps:
            state.speed_rejects += 1
            if state.speed_rejects < limits.reanchor:
                return "speed"
    state.last_time, state.last_lat, state.last_lon, state.speed_rejects = fix.fix_time, fix.lat, fix.lon, 0
    return ACCEPTED
