"""Geofence and curfew rules on accepted, in-order fixes (fix time only).

Per (device, zone) a small state machine, with `depth` = how far the fix is
on the wrong side of the border (inclusion: outside distance; exclusion:
inside distance), `acc` its accuracy radius and `buffer` the zone's buffer_m:

- violation candidate when depth - acc > buffer: even the most favourable
  point of the accuracy circle is beyond the buffer (accuracy-aware +
  hysteresis: a jittering fix near the border never qualifies);
- the alert is raised once the condition has held for dwell_s of fix time;
  further violating fixes update the same alert (at most every
  alert_update_s), never open another;
- back to normal only when depth <= 0 (the fix itself is on the right side):
  fixes in the band between keep the current state, so a person standing at
  the border does not flap.

Kinds: exclusion zone → `exclusion_breach`; inclusion zone with a schedule →
`curfew` (only inside its windows; a window ending resolves it); inclusion
zone without schedule → `inclusion_exit`. A scheduled exclusion zone is only
watched inside its windows.

`evaluate` is pure apart from the state it keeps: it returns the alert changes
(`AlertCall`s) for the caller to apply with the batch. After a restart the state
is rebuilt from what is stored (`drivers/gps/recovery.py`): `seed` it from the
alerts, then `evaluate` the stored fixes again with `replay=True`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from drivers.gps.geofence import ZoneIndex, ZoneSpec
from drivers.gps.schedule import window_start
from gateway.alerts.service import AlertCall


@dataclass
class ZoneState:
    violating: bool = False
    pending_since: datetime | None = None
    last_update: datetime | None = None
    # rebuilt after a restart: fixes up to here were judged before (the alert says so)
    judged_until: datetime | None = None


@dataclass(frozen=True)
class RuleFix:
    device_id: str
    person_id: str
    fix_time: datetime
    lat: float
    lon: float
    accuracy_m: float


def kind_of(z: ZoneSpec) -> str:
    if z.kind == "exclusion":
        return "exclusion_breach"
    return "curfew" if z.schedule else "inclusion_exit"


def depth_of(z: ZoneSpec, sd: float) -> float:
    """How far a point is on the wrong side of the zone's border (m; <= 0: the right side):
    outside an inclusion zone, inside an exclusion zone. `sd` is the signed distance (< 0 inside)."""
    return sd if z.kind == "inclusion" else -sd


def breaches(z: ZoneSpec, depth: float, accuracy_m: float) -> bool:
    """Accuracy-aware, with the zone's buffer: even the most favourable point of the accuracy
    circle is beyond the buffer on the wrong side."""
    return depth - accuracy_m > z.buffer_m


@dataclass(frozen=True)
class ZoneCheck:
    """One zone's judgement of one position (a remote check-in's: `judge_position`)."""

    zone_id: str
    name: str | None
    kind: str  # inclusion | exclusion
    alert_kind: str  # what the geofence would raise here: inclusion_exit, curfew, exclusion_breach
    level: str | None  # the zone's own alert level, if it sets one
    depth_m: float | None  # on the wrong side of the border by this much (<= 0: the right side); None: far outside
    state: str  # ok | border (not a breach, but not clearly on the right side) | breach


def judge_position(index: ZoneIndex, person_id: str, lat: float, lon: float, accuracy_m: float, at: datetime) -> list[ZoneCheck]:
    """One position against every zone of the person that is in force at `at` (a scheduled
    zone only inside its windows), by the geofence's own rules (accuracy-aware, buffered),
    without dwell or state: a single report, judged at once."""
    own = sorted(index.zone_set_of(person_id))
    if not own:
        return []
    margin = accuracy_m + index.max_buffer_m + 1.0
    _, zi, sd = index.signed_distances(np.array([lat]), np.array([lon]), margin)
    near = dict(zip(zi.tolist(), sd.tolist(), strict=True))
    out = []
    for z in own:
        zone = index.zones[z]
        if zone.schedule and window_start(zone.schedule, zone.timezone, at) is None:
            continue
        depth = depth_of(zone, near.get(z, math.inf))
        state = "breach" if breaches(zone, depth, accuracy_m) else "ok" if depth <= 0 else "border"
        out.append(ZoneCheck(zone.id, zone.name, zone.kind, kind_of(zone), zone.level, round(depth, 1) if math.isfinite(depth) else None, state))
    return out


class GeofenceRules:
    def __init__(self, index: ZoneIndex, update_s: float = 30.0) -> None:
        self.index = index
        self.update_s = update_s
        self.state: dict[tuple[str, str], ZoneState] = {}
        # device -> exclusion zones (ids) with a pending or ongoing breach: the only
        # exclusion zones a fix far from every candidate still has to be checked against
        self._active: dict[str, set[str]] = {}

    def set_index(self, index: ZoneIndex) -> None:
        """New zones: keep state of zones that still exist."""
        self.index = index
        self.state = {k: v for k, v in self.state.items() if k[1] in index.by_id}
        self._active = {}
        for (dev, zid), st in self.state.items():
            if index.zones[index.by_id[zid]].kind == "exclusion" and (st.violating or st.pending_since):
                self._active.setdefault(dev, set()).add(zid)

    def forget(self, devices: set[str]) -> None:
        """These devices are judged elsewhere now (their partition went to another node)."""
        self.state = {k: v for k, v in self.state.items() if k[0] not in devices}
        for dev in devices:
            self._active.pop(dev, None)

    def seed(self, device_id: str, zone_id: str, violating: bool, judged_until: datetime | None) -> None:
        """State known from the alerts after a restart: `violating` when the zone's alert
        is ongoing (or was closed by hand while the condition went on), with the fixes up
        to `judged_until` (its last update) already judged."""
        self.state[(device_id, zone_id)] = ZoneState(violating=violating, last_update=judged_until, judged_until=judged_until)
        z = self.index.by_id.get(zone_id)
        if violating and z is not None and self.index.zones[z].kind == "exclusion":
            self._active.setdefault(device_id, set()).add(zone_id)

    def evaluate(self, fixes: list[RuleFix], replay: bool = False) -> list[AlertCall]:
        """All fixes of a batch against all their zones, in one vectorised query; the
        alert changes they cause, in order. With `replay` (stored fixes, after a restart)
        only changes of state are returned: an update of an alert that is open already
        was applied when the fix first came."""
        calls: list[AlertCall] = []
        if not fixes or not self.index.zones:
            return calls
        lat = np.fromiter((f.lat for f in fixes), float, len(fixes))
        lon = np.fromiter((f.lon for f in fixes), float, len(fixes))
        acc = np.fromiter((f.accuracy_m for f in fixes), float, len(fixes))
        margin = acc + self.index.max_buffer_m + 1.0
        pi, zi, sd = self.index.signed_distances(lat, lon, margin)
        near: dict[int, dict[int, float]] = {}
        for p, z, d in zip(pi.tolist(), zi.tolist(), sd.tolist(), strict=True):
            near.setdefault(p, {})[z] = d
        for p, f in enumerate(fixes):
            dists = near.get(p, {})
            own = self.index.zone_set_of(f.person_id)
            # Only what can change: the index's candidates, the person's inclusion zones
            # (being far outside one is a breach) and exclusion zones with a breach under
            # way. Far from an exclusion zone with nothing pending there is nothing to do,
            # and a county has many of those.
            todo = set(self.index.inclusion_of(f.person_id))
            todo.update(z for z in dists if z in own)
            for zid in self._active.get(f.device_id, ()):
                z = self.index.by_id.get(zid)
                if z is not None and z in own:
                    todo.add(z)
            for z in sorted(todo):
                zone = self.index.zones[z]
                # not a candidate: farther than the margin outside the zone
                step = self._step(f, zone, dists.get(z, math.inf))
                if step is not None and (not replay or step[1]):
                    calls.append(step[0])
                if zone.kind == "exclusion":
                    st = self.state[(f.device_id, zone.id)]
                    if st.violating or st.pending_since:
                        self._active.setdefault(f.device_id, set()).add(zone.id)
                    else:
                        self._active.get(f.device_id, set()).discard(zone.id)
        return calls

    def _step(self, f: RuleFix, z: ZoneSpec, sd: float) -> tuple[AlertCall, bool] | None:
        """The alert change this fix causes in this zone, if any, and whether it changes
        the state (opens or ends the condition) rather than updating an ongoing one."""
        st = self.state.get((f.device_id, z.id))
        if st is None:
            st = self.state[(f.device_id, z.id)] = ZoneState()
        elif st.judged_until is not None:
            if f.fix_time <= st.judged_until:
                return None  # judged before the restart: its effect is in the alert
            st.judged_until = None
        kind = kind_of(z)
        if z.schedule and window_start(z.schedule, z.timezone, f.fix_time) is None:
            was = st.violating
            st.violating, st.pending_since = False, None
            if was:
                return AlertCall(False, kind, {"person_id": f.person_id, "device_id": f.device_id, "zone_id": z.id, "note": "schedule window ended",
                                               "at": f.fix_time}), True
            return None
        depth = depth_of(z, sd)
        if breaches(z, depth, f.accuracy_m):
            opened = not st.violating
            if opened:
                st.pending_since = st.pending_since or f.fix_time
                if (f.fix_time - st.pending_since).total_seconds() < z.dwell_s:
                    return None
                st.violating = True
            elif st.last_update is not None and (f.fix_time - st.last_update).total_seconds() < self.update_s:
                return None
            st.last_update = f.fix_time
            where = "outside" if z.kind == "inclusion" else "inside"
            # not a candidate of the index: only known to be farther than the query margin
            dist = round(depth, 1) if math.isfinite(depth) else None
            far = f"{depth:.0f} m" if dist is not None else "far"
            return AlertCall(True, kind, {
                "person_id": f.person_id, "device_id": f.device_id, "zone_id": z.id, "level": z.level,
                "lat": f.lat, "lon": f.lon, "at": f.fix_time,
                "message": f"{f.person_id} {where} zone {z.name or z.id} ({far}, accuracy {f.accuracy_m:.0f} m)",
                "details": {"distance_m": dist, "accuracy_m": f.accuracy_m, "fix_time": f.fix_time.isoformat()},
            }), opened
        st.pending_since = None
        if depth <= 0 and st.violating:
            st.violating = False
            return AlertCall(False, kind, {"person_id": f.person_id, "device_id": f.device_id, "zone_id": z.id,
                                           "note": "back on the right side of the zone", "at": f.fix_time}), True
        return None
