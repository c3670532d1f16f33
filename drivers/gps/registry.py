"""The trackers this gateway listens to, with what it keeps per device between messages.

Loaded from the database at start and kept current by `DeviceChanged` events (the API
publishes them after commit, before it answers), so a tracker registered through the
API is heard from its first message, and one disabled or deleted is refused from the
next. Per-device state (the position filter, liveness) survives an edit of the device.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.devices import stored_device
from config.trackers import GpsSettings, TrackerDevice
from drivers.gps.filter import FilterState, Limits
from gateway.db.models import Device

log = logging.getLogger(__name__)


@dataclass
class Tracker:
    id: str
    person_id: str | None
    report_interval_s: float
    limits: Limits
    filter: FilterState = field(default_factory=FilterState)
    last_report: float | None = None  # clock.monotonic() of the last message
    last_fix: float | None = None  # clock.monotonic() of the last accepted fix
    online: str | None = None
    lost: bool = False
    battery_low: bool = False


def device_settings(row: Device) -> TrackerDevice:
    """The row as the typed model the API and the configuration validate it with."""
    cfg = stored_device("tracker", row.id, row.name, row.enabled, row.person_id, row.settings)
    assert isinstance(cfg, TrackerDevice)
    return cfg


class TrackerRegistry:
    def __init__(self, gps: GpsSettings) -> None:
        self.gps = gps
        self._trackers: dict[str, Tracker] = {}

    def get(self, device_id: str) -> Tracker | None:
        return self._trackers.get(device_id)

    @property
    def by_id(self) -> Mapping[str, Tracker]:
        """The trackers by id, read-only (the hot path looks them up directly)."""
        return self._trackers

    def __iter__(self) -> Iterator[Tracker]:
        return iter(list(self._trackers.values()))

    def __len__(self) -> int:
        return len(self._trackers)

    async def load(self, s: AsyncSession) -> None:
        rows = (await s.scalars(select(Device).where(Device.kind == "tracker", Device.enabled.is_(True)))).all()
        self._trackers = {r.id: self._tracker(r) for r in rows}

    async def load_some(self, s: AsyncSession, device_ids: set[str]) -> list[str]:
        """Add these devices if they are enabled trackers now; the ids added."""
        rows = (await s.scalars(select(Device).where(Device.id.in_(device_ids), Device.kind == "tracker", Device.enabled.is_(True)))).all()
        for r in rows:
            if r.id not in self._trackers:
                self._trackers[r.id] = self._tracker(r)
        return [r.id for r in rows]

    async def apply(self, s: AsyncSession, device_id: str) -> None:
        """A device changed: read it again. Not a tracker any more, disabled or gone: forgotten."""
        row = await s.get(Device, device_id, populate_existing=True)
        if row is None or row.kind != "tracker" or not row.enabled:
            if self._trackers.pop(device_id, None) is not None:
                log.info("tracker %s: no longer listened to", device_id)
            return
        self._trackers[device_id] = self._tracker(row)

    def _tracker(self, row: Device) -> Tracker:
        try:
            cfg = device_settings(row)
        except ValidationError as e:
            # rows are validated where they enter (API, configuration); one stored by an
            # older version that no longer validates keeps the defaults rather than going deaf
            log.warning("tracker %s: settings not valid, defaults used: %s", row.id, e.errors(include_url=False))
            cfg = TrackerDevice(id=row.id, kind="tracker", person_id=row.person_id)
        t = Tracker(row.id, cfg.person_id, float(cfg.report_interval_s), Limits.of(self.gps, cfg.filter))
        old = self._trackers.get(row.id)
        if old is not None:
            t.filter, t.last_report, t.last_fix, t.online, t.lost, t.battery_low = old.filter, old.last_report, old.last_fix, old.online, old.lost, old.battery_low
        return t
