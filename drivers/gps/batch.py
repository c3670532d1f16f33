"""One batch of decoded tracker messages, sorted by what each says, in arrival order.

`Batch.add` judges a message against what the gateway knows of its device (is it a
tracker we listen to, was it silent, what did it report); `Batch.filter` then runs each
fix through its device's position filter. What is left is for the driver to store,
evaluate and publish: `rows` and `events` (positions), `rule_fixes` (the in-order fixes
of devices that belong to a person), `statuses`, `states` and `resumed` devices.
Rejections are collected by (reason, device) and reported once per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table

from drivers.gps.filter import ACCEPTED, OUT_OF_ORDER, judge
from drivers.gps.inbound import SUBS, Inbound
from drivers.gps.nmea import Fix
from drivers.gps.registry import Tracker
from drivers.gps.rules import RuleFix
from gateway.db.models import PositionRow
from gateway.events import Position

# the declarative model's table (typed as a FromClause by SQLAlchemy's stubs)
POSITIONS = cast(Table, PositionRow.__table__)
POSITION_COLUMNS = ("device_id", "person_id", "fix_time", "received_at", "lat", "lon", "alt_m", "speed_mps", "course_deg",
                    "accuracy_m", "satellites", "source", "in_order")


@dataclass
class Batch:
    now: datetime
    mono: float
    found: list[tuple[Tracker, Fix, str]] = field(default_factory=list)
    statuses: list[tuple[Tracker, dict[str, Any]]] = field(default_factory=list)
    resumed: list[Tracker] = field(default_factory=list)
    states: list[tuple[Tracker, str]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)  # messages by kind (nmea, status, ...)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, device or topic)
    transitions: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # OwnTracks region events
    # after `filter`
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # in POSITION_COLUMNS order
    events: list[Position] = field(default_factory=list)
    rule_fixes: list[RuleFix] = field(default_factory=list)

    def reject(self, reason: str, who: str, n: int = 1) -> None:
        self.rejected[(reason, who)] += n

    def add(self, m: Inbound, trackers: Mapping[str, Tracker]) -> None:
        """`trackers`: the registry's map (looked up once per message: this runs for each)."""
        dev = m.dev
        if dev is None:
            self.reject(m.reject or "bad_topic", m.topic)
            return
        t = trackers.get(dev)
        if t is None:
            self.reject("unknown_device", dev)
            return
        if m.reject in ("bad_topic", "bad_state"):  # not a report from the device
            if m.sub in SUBS:
                self.kinds[m.sub] += 1
            self.reject(m.reject, dev)
            return
        self.kinds[m.sub] += 1
        if m.sub == "state":
            assert m.state is not None
            self.states.append((t, m.state))
            if m.state == "offline":
                return  # the broker speaks for the device: not a report
        t.last_report = self.mono
        if t.lost:
            self.resumed.append(t)
        elif t.online != "online" and (t, "online") not in self.states:
            self.states.append((t, "online"))
        if m.reject:
            self.reject(m.reject, dev)
        elif m.sub == "nmea":
            for reason, n in (m.skipped or {}).items():
                self.reject(reason, dev, n)
            self.found.extend((t, f, "nmea") for f in m.fixes or ())
        elif m.sub == "owntracks":
            r = m.owntracks
            assert r is not None
            if r.kind == "rejected":
                self.reject(r.reason or "bad_field", dev)
            elif r.kind == "location" and r.fix is not None:
                self.found.append((t, r.fix, "owntracks"))
                if r.battery is not None:
                    self.statuses.append((t, {"battery": r.battery}))
            elif r.kind == "lwt":
                self.states.append((t, "offline"))
            elif r.kind == "transition":  # informational: the gateway decides geofences itself
                self.transitions.append((dev, r.event, r.region))
        elif m.sub == "status" and m.status is not None:
            self.statuses.append((t, m.status))

    def filter(self) -> None:
        """Each fix through its device's filter, in arrival order."""
        now, mono = self.now, self.mono
        for t, fix, source in self.found:
            verdict = judge(fix, t.filter, t.limits, now)
            if verdict not in (ACCEPTED, OUT_OF_ORDER):
                self.reject(verdict, t.id)
                continue
            in_order = verdict == ACCEPTED
            self.rows.append((t.id, t.person_id, fix.fix_time, now, fix.lat, fix.lon, fix.alt_m, fix.speed_mps, fix.course_deg,
                              fix.accuracy_m, fix.satellites, source, in_order))
            self.events.append(Position(device_id=t.id, person_id=t.person_id, fix_time=fix.fix_time, lat=fix.lat, lon=fix.lon, alt_m=fix.alt_m,
                                        speed_mps=fix.speed_mps, course_deg=fix.course_deg, accuracy_m=fix.accuracy_m, satellites=fix.satellites,
                                        source=source, in_order=in_order, at=now))
            if in_order:
                t.last_fix = mono
                if t.person_id:
                    self.rule_fixes.append(RuleFix(t.id, t.person_id, fix.fix_time, fix.lat, fix.lon, fix.accuracy_m or 0.0))
