"""Liveness rules, on wall time (the only tracker rules that are): a device silent for
`lost_contact_factor` x its report interval has lost contact; a person with an inclusion
zone under curfew and no position for as long has `no_fix` (the device may well report
void fixes or status, but no position). Pure: state changes and alert changes are
returned for the driver to apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from drivers.gps.geofence import ZoneIndex
from drivers.gps.registry import Tracker
from drivers.gps.schedule import window_start
from gateway.alerts.service import AlertCall


@dataclass
class LivenessResult:
    calls: list[AlertCall] = field(default_factory=list)
    offline: list[Tracker] = field(default_factory=list)  # devices now considered offline


class Liveness:
    def __init__(self, factor: float, started_mono: float) -> None:
        self.factor = factor
        self.started_mono = started_mono  # a device never heard since start counts from here
        self.no_fix_open: set[tuple[str, str]] = set()  # (person, zone) with an ongoing no_fix

    def check(self, trackers: list[Tracker], index: ZoneIndex, mono: float, now: datetime) -> LivenessResult:
        out = LivenessResult()
        for t in trackers:
            last = t.last_report if t.last_report is not None else self.started_mono
            silent = mono - last
            if not t.lost and silent > self.factor * t.report_interval_s:
                t.lost = True
                out.calls.append(AlertCall(True, "lost_contact", {
                    "person_id": t.person_id, "device_id": t.id, "at": now,
                    "message": f"no report from tracker {t.id} for {silent:.0f} s",
                    "details": {"silent_s": round(silent, 1), "expected_interval_s": t.report_interval_s}}))
                out.offline.append(t)
        by_person: dict[str, list[Tracker]] = {}
        for t in trackers:
            if t.person_id:
                by_person.setdefault(t.person_id, []).append(t)
        for z in index.zones:
            if z.kind != "inclusion" or not z.schedule:
                continue
            start = window_start(z.schedule, z.timezone, now)
            for pid in z.person_ids or tuple(by_person):
                key = (pid, z.id)
                devices = by_person.get(pid, [])
                if start is None or not devices or key in self.no_fix_open:
                    continue
                in_window_s = (now - start).total_seconds()
                limit = self.factor * min(t.report_interval_s for t in devices)
                last_fix = max((t.last_fix if t.last_fix is not None else self.started_mono) for t in devices)
                if min(mono - last_fix, in_window_s) > limit:
                    self.no_fix_open.add(key)
                    out.calls.append(AlertCall(True, "no_fix", {
                        "person_id": pid, "zone_id": z.id, "level": None, "at": now,
                        "message": f"no position from {pid} during curfew of {z.name or z.id}",
                        "details": {"window_start": start.isoformat()}}))
        return out

    def fixes_from(self, persons: set[str], at: datetime) -> list[AlertCall]:
        """Positions came from these persons: their no_fix alerts end."""
        calls = []
        for key in [k for k in self.no_fix_open if k[0] in persons]:
            self.no_fix_open.discard(key)
            calls.append(AlertCall(False, "no_fix", {"person_id": key[0], "zone_id": key[1], "note": "fix received", "at": at}))
        return calls
