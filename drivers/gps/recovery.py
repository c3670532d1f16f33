"""What the tracker rules knew before a restart, or before this node took a partition of
trackers over from another, rebuilt from what is stored (for the trackers named).

Nothing of it is written on the hot path: positions and alerts are stored anyway, and
they say everything the rules need.

- Position filter: each device's last in-order fix (so redelivered fixes are recognised
  as already stored, and the speed check has its anchor).
- Geofence state per (device, zone): from the newest geofence alert of that pair,
  `violating` while it is ongoing (or was resolved by an officer while the condition went
  on: the condition has not ended, so no new alert), with every fix up to its last
  update already judged; then the stored in-order fixes of the last `lookback` are
  judged again, so a dwell under way when the gateway died goes on from its first fix
  (the alert comes at the right fix time, not `dwell_s` after the restart), and an alert
  change whose positions were committed but whose alert transaction was not is applied
  now. Only changes of state come out of the replay: the updates of ongoing alerts were
  applied when the fixes first came.
- Liveness: lost contact, low battery and no-fix flags from the ongoing alerts, so an
  ongoing condition is not raised a second time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from drivers.gps.liveness import Liveness
from drivers.gps.registry import TrackerRegistry
from drivers.gps.rules import GeofenceRules, RuleFix
from gateway.alerts.service import ONGOING, AlertCall
from gateway.db.models import Alert, PositionRow

log = logging.getLogger(__name__)

GEOFENCE_KINDS = ("inclusion_exit", "exclusion_breach", "curfew")
# per device: a device reporting every second has 3,600 fixes in an hour
MAX_REPLAY_ROWS = 20_000


def _fix_time(a: Alert) -> datetime | None:
    """The fix time of an alert's last raise or update (rules pass it as `at`, and put it
    in details); resolved by the rules, its resolution time is a fix time too."""
    raw = (a.details or {}).get("fix_time")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


async def seed_filters(s: AsyncSession, registry: TrackerRegistry, devices: set[str]) -> None:
    """The filters of `devices` (a partition taken over, or all at start)."""
    if not devices:
        return
    rows = (await s.execute(select(PositionRow.device_id, func.max(PositionRow.fix_time)).where(
        PositionRow.in_order.is_(True), PositionRow.device_id.in_(devices)).group_by(PositionRow.device_id))).all()
    for dev, last in rows:
        t = registry.get(dev)
        if t is None or last is None:
            continue
        pos = (await s.execute(select(PositionRow.lat, PositionRow.lon).where(PositionRow.device_id == dev, PositionRow.fix_time == last).limit(1))).first()
        t.filter.last_time = last
        if pos is not None:
            t.filter.last_lat, t.filter.last_lon = pos[0], pos[1]


async def seed_liveness(s: AsyncSession, registry: TrackerRegistry, liveness: Liveness, devices: set[str]) -> None:
    persons = {t.person_id for t in registry if t.id in devices and t.person_id}
    ongoing = (await s.execute(select(Alert.kind, Alert.device_id, Alert.person_id, Alert.zone_id).where(
        Alert.kind.in_(("lost_contact", "low_battery", "no_fix")), Alert.state.in_(ONGOING)))).all()
    for kind, dev, person, zone in ongoing:
        if dev not in devices and not (kind == "no_fix" and person in persons):
            continue
        t = registry.get(dev) if dev else None
        if kind == "lost_contact" and t is not None:
            t.lost = True
        elif kind == "low_battery" and t is not None:
            t.battery_low = True
        elif kind == "no_fix" and person and zone:
            liveness.no_fix_open.add((person, zone))


async def rebuild_rules(s: AsyncSession, rules: GeofenceRules, registry: TrackerRegistry, now: datetime, lookback_s: float,
                        max_age_s: float, devices: set[str]) -> list[AlertCall]:
    """Seed the geofence state from the alerts, replay each device's recent stored fixes;
    the alert changes the replay found missing. Call after `seed_filters`."""
    newest: dict[tuple[str, str], Alert] = {}
    alerts = (await s.scalars(select(Alert).where(
        Alert.kind.in_(GEOFENCE_KINDS), Alert.device_id.in_(devices), Alert.zone_id.is_not(None),
        Alert.state.in_(ONGOING) | (Alert.updated_at >= now - timedelta(seconds=max_age_s))).order_by(Alert.id))).all()
    for a in alerts:
        assert a.device_id is not None and a.zone_id is not None
        newest[(a.device_id, a.zone_id)] = a  # ordered by id: the newest wins
    for (dev, zid), a in newest.items():
        if zid not in rules.index.by_id:
            continue
        if a.state in ONGOING:
            rules.seed(dev, zid, True, _fix_time(a) or a.updated_at)
        elif a.resolved_by == "system":
            rules.seed(dev, zid, False, a.resolved_at)
        else:  # closed by an officer: the condition itself has not ended
            rules.seed(dev, zid, True, _fix_time(a) or a.updated_at)
    # Per device, the fixes of the last `lookback_s` before its own last one: a device's
    # fixes may come late (stored and forwarded), and its dwell is measured in fix time.
    fixes: list[RuleFix] = []
    for t in registry:
        if t.id not in devices:
            continue
        last = t.filter.last_time  # seeded from the stored positions
        if not t.person_id or last is None or last < now - timedelta(seconds=max_age_s):
            continue
        rows = (await s.execute(select(PositionRow.fix_time, PositionRow.lat, PositionRow.lon, PositionRow.accuracy_m).where(
            PositionRow.device_id == t.id, PositionRow.in_order.is_(True), PositionRow.fix_time >= last - timedelta(seconds=lookback_s))
            .order_by(PositionRow.fix_time, PositionRow.id).limit(MAX_REPLAY_ROWS))).all()
        fixes.extend(RuleFix(t.id, t.person_id, fix_time, lat, lon, acc or 0.0) for fix_time, lat, lon, acc in rows)
    fixes.sort(key=lambda f: f.fix_time)  # each device's in its order; the index query takes them all at once
    calls = rules.evaluate(fixes, replay=True)
    if fixes:
        log.info("trackers: zone state of %d tracker(s) rebuilt from %d stored fixes; %d alert change(s) applied", len(devices), len(fixes), len(calls))
    return calls


def lookback_s(rules: GeofenceRules, update_s: float) -> float:
    """How far back stored fixes can still matter: the longest dwell, and some margin for
    the batches in flight when the gateway died."""
    dwell: Any = max((z.dwell_s for z in rules.index.zones), default=0.0)
    return float(dwell) + 2 * update_s + 60.0
