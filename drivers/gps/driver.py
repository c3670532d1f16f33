"""The tracker driver: MQTT transport → pure decoders → per-device ordered
pipeline (filter → persist → rules → push) plus liveness and status rules.

The core MQTT adapter hands each batch to `handle` on the event loop in
arrival order and acknowledges QoS 1 messages only after `handle` returns, so
positions are committed to the database before the broker forgets them.
Nothing a device sends can raise out of `handle`: bad input is counted in
`gateway_gps_rejected_total{reason}` and logged with the device id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from config.trackers import FilterOverride
from drivers.gps.filter import ACCEPTED, OUT_OF_ORDER, FilterState, Limits, judge
from drivers.gps.geofence import ZoneIndex
from drivers.gps.inbound import SUBS, Inbound, decode_batch
from drivers.gps.nmea import Fix, NmeaState
from drivers.gps.rules import GeofenceRules, RuleFix
from drivers.gps.schedule import window_start
from drivers.gps.zonestore import load_zones, sync_config_zones
from gateway.alerts.service import AlertCall
from gateway.db.bulk import InlineSqliteWriter, insert_rows
from gateway.db.models import Device, PositionRow
from gateway.events import DeviceState, DeviceStatus, Position

if TYPE_CHECKING:
    from gateway.mqtt import Message
    from gateway.services import Services

log = logging.getLogger(__name__)

POSITION_COLUMNS = ("device_id", "person_id", "fix_time", "received_at", "lat", "lon", "alt_m", "speed_mps", "course_deg",
                    "accuracy_m", "satellites", "source", "in_order")
TOPICS = ("trackers/+/nmea", "trackers/+/status", "trackers/+/state", "owntracks/+/+")
# Reasons that mean a device or a network sent something broken (logged at
# warning); the others (void fix, sentences without a position) are normal.
NOISY = {"checksum", "malformed", "garbage", "too_large", "range", "not_json", "not_owntracks", "bad_field",
         "missing_field", "unsupported_type", "bad_status", "bad_state", "unknown_device", "bad_topic", "decoder_error",
         "invalid", "future", "speed"}


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


class TrackerDriver:
    name = "trackers"

    def __init__(self, services: "Services") -> None:
        self.services = services
        self.gps = services.config.thresholds.gps
        self.trackers: dict[str, Tracker] = {}
        self.nmea_states: dict[str, NmeaState] = {}  # per device, for decoding on the loop (no ingest worker)
        self.rules = GeofenceRules(ZoneIndex([]), self._raise, self._clear, self.gps.alert_update_s)
        self.no_fix_open: set[tuple[str, str]] = set()  # (person, zone)
        self.started_mono = services.clock.monotonic()
        self._task: asyncio.Task[None] | None = None
        self.ingest: Any = None  # the IngestWorker, when tracker messages arrive through one
        self._inline: InlineSqliteWriter | None = None  # SQLite: positions written on the loop (see bulk.py)
        self._last_refresh = 0.0
        self._alerts: list[AlertCall] | None = None  # alert changes of the batch being handled
        self._commit = asyncio.Lock()  # FIFO: batches commit, run rules and notify in arrival order
        m = services.metrics
        self.m_messages = m.counter("gateway_gps_messages_total", "Tracker MQTT messages handled", ("kind",))
        self.m_rejected = m.counter("gateway_gps_rejected_total", "Tracker input skipped or rejected, by reason", ("reason",))
        self.m_stored = m.counter("gateway_gps_positions_stored_total", "Positions committed to the database")
        self.m_checks = m.counter("gateway_gps_zone_checks_total", "Point-zone evaluations")

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self.services.extras["gps"] = self
        path = self.services.db.sqlite_path
        if path:
            self._inline = InlineSqliteWriter(path, PositionRow.__table__, POSITION_COLUMNS, self.services.db.wal_checkpointer().soon)
        await sync_config_zones(self.services)
        await self.reload_zones()
        await self.reload_devices()
        await self._seed_filters()
        mqtt = self.services.mqtt
        shared = self.gps.shared_subscription
        if mqtt is not None and self.gps.ingest_worker:
            from drivers.gps.ingest import IngestWorker

            self.ingest = IngestWorker(self.handle_inbound, mqtt.settings, mqtt.node_id, f"{mqtt.client_id}-trackers", TOPICS, shared,
                                       self.services.metrics)
            await self.ingest.start()
        elif mqtt is not None:
            for t in TOPICS:
                mqtt.subscribe(t, self.handle, qos=1, shared=shared)
        else:
            log.warning("no MQTT broker configured: trackers cannot report")
        self._task = asyncio.create_task(self._liveness_loop(), name="gps-liveness")

    async def stop(self) -> None:
        if self.ingest is not None:
            await self.ingest.stop()
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._inline is not None:
            self._inline.close()
            self._inline = None

    async def reload_zones(self) -> None:
        specs = await load_zones(self.services)
        self.rules.set_index(ZoneIndex(specs))

    async def reload_devices(self) -> None:
        async with self.services.db.session() as s:
            rows = (await s.scalars(select(Device).where(Device.kind == "tracker", Device.enabled.is_(True)))).all()
        fresh: dict[str, Tracker] = {}
        for r in rows:
            st = r.settings or {}
            try:
                override = FilterOverride.model_validate(st["filter"]) if st.get("filter") else None
            except ValueError:
                log.warning("tracker %s: bad filter settings ignored", r.id)
                override = None
            old = self.trackers.get(r.id)
            t = Tracker(r.id, r.person_id, float(st.get("report_interval_s") or 60), Limits.of(self.gps, override))
            if old is not None:
                t.filter, t.last_report, t.last_fix, t.online, t.lost, t.battery_low = old.filter, old.last_report, old.last_fix, old.online, old.lost, old.battery_low
            fresh[r.id] = t
        self.trackers = fresh
        self._last_refresh = time.monotonic()

    async def _seed_filters(self) -> None:
        """After a restart, redelivered fixes older than what is stored are not stored again as new."""
        async with self.services.db.session() as s:
            rows = (await s.execute(select(PositionRow.device_id, func.max(PositionRow.fix_time)).where(PositionRow.in_order.is_(True)).group_by(PositionRow.device_id))).all()
        for dev, last in rows:
            t = self.trackers.get(dev)
            if t is not None and last is not None:
                q = (await self._last_position(dev))
                t.filter.last_time = last
                if q is not None:
                    t.filter.last_lat, t.filter.last_lon = q

    async def _last_position(self, dev: str) -> tuple[float, float] | None:
        async with self.services.db.session() as s:
            row = (await s.execute(select(PositionRow.lat, PositionRow.lon).where(PositionRow.device_id == dev).order_by(PositionRow.fix_time.desc()).limit(1))).first()
        return (row[0], row[1]) if row else None

    # --- the pipeline -----------------------------------------------------

    async def handle(self, batch: list["Message"]) -> None:
        """A batch of MQTT messages, decoded here (no ingest worker, and tests)."""
        await self.handle_inbound(decode_batch(batch, self.nmea_states, self.services.clock.now().date()))

    async def handle_inbound(self, batch: list[Inbound]) -> None:
        """A batch of decoded messages (from `handle`, or from the ingest worker) in arrival order."""
        now = self.services.clock.now()
        mono = self.services.clock.monotonic()
        found: list[tuple[Tracker, Fix, str]] = []
        statuses: list[tuple[Tracker, dict[str, Any]]] = []
        resumed: list[Tracker] = []
        states: list[tuple[Tracker, str]] = []
        kinds: Counter[str] = Counter()
        for m in batch:
            try:
                await self._accept(m, mono, found, statuses, resumed, states, kinds)
            except Exception:  # noqa: BLE001 - a bug here must not lose the rest of the batch
                self._reject("decoder_error", m.topic, 1)
                log.exception("tracker message on %s could not be handled", m.topic)
        for kind, n in kinds.items():
            self.m_messages.labels(kind).inc(n)
        rows: list[tuple[Any, ...]] = []  # in POSITION_COLUMNS order
        events: list[Position] = []
        rule_fixes: list[RuleFix] = []
        verdicts: Counter[str] = Counter()
        for t, fix, source in found:
            verdict = judge(fix, t.filter, t.limits, now)
            if verdict not in (ACCEPTED, OUT_OF_ORDER):
                verdicts[verdict] += 1
                self._reject(verdict, t.id, 1)
                continue
            in_order = verdict == ACCEPTED
            rows.append((t.id, t.person_id, fix.fix_time, now, fix.lat, fix.lon, fix.alt_m, fix.speed_mps, fix.course_deg,
                         fix.accuracy_m, fix.satellites, source, in_order))
            events.append(Position(device_id=t.id, person_id=t.person_id, fix_time=fix.fix_time, lat=fix.lat, lon=fix.lon, alt_m=fix.alt_m,
                                   speed_mps=fix.speed_mps, course_deg=fix.course_deg, accuracy_m=fix.accuracy_m, satellites=fix.satellites,
                                   source=source, in_order=in_order, at=now))
            if in_order:
                t.last_fix = mono
                if t.person_id:
                    rule_fixes.append(RuleFix(t.id, t.person_id, fix.fix_time, fix.lat, fix.lon, fix.accuracy_m or 0.0))
        # Decoding and filtering above may run while the batch before is still being
        # committed (MqttLink pipelines batches); from here on batches go in order.
        async with self._commit:
            await self._commit_batch(rows, events, rule_fixes, resumed, states, statuses, now)

    async def _commit_batch(self, rows: list[tuple[Any, ...]], events: list[Position], rule_fixes: list[RuleFix], resumed: list[Tracker],
                            states: list[tuple[Tracker, str]], statuses: list[tuple[Tracker, dict[str, Any]]], now: datetime) -> None:
        if any(not r[-1] for r in rows):
            rows, events = await self._drop_stored(rows, events)
        if rows:
            if self._inline is None or not self._inline.insert(rows):
                async with self.services.db.session() as s:
                    # through the driver: even Core's executemany cost more than the write itself
                    await insert_rows(s, PositionRow.__table__, POSITION_COLUMNS, rows)
                    await s.commit()
            self.m_stored.inc(len(rows))
        # Rules and notifications only after the positions are durable. A rule
        # failing (database gone mid-batch) must not hide the positions' events.
        self._alerts = []
        try:
            await self._rules(resumed, states, statuses, rule_fixes, now)
        except Exception:  # noqa: BLE001
            self.m_rejected.labels("rule_error").inc()
            log.exception("tracker rules failed on a batch of %d fixes", len(rule_fixes))
        finally:
            changes, self._alerts = self._alerts, None
        await self.services.alerts.apply(changes)  # one transaction for the whole batch
        await self.services.bus.publish_many(events)

    async def _drop_stored(self, rows: list[tuple[Any, ...]], events: list[Position]) -> tuple[list[tuple[Any, ...]], list[Position]]:
        """Out-of-order fixes that are already stored: the broker redelivering what was
        committed but not yet acknowledged when the gateway or its ingest worker stopped.
        Only these need a look at the table: an in-order fix is newer than anything stored."""
        late = [r for r in rows if not r[-1]]
        async with self.services.db.session() as s:
            q = select(PositionRow.device_id, PositionRow.fix_time).where(
                PositionRow.device_id.in_({r[0] for r in late}), PositionRow.fix_time.in_({r[2] for r in late}))
            seen = {(d, t) for d, t in (await s.execute(q)).all()}
        keep_rows, keep_events = [], []
        for r, e in zip(rows, events, strict=True):
            key = (r[0], r[2])
            if not r[-1] and key in seen:
                self._reject("duplicate", r[0], 1)
                continue
            seen.add(key)  # the same late fix twice in one batch is stored once
            keep_rows.append(r)
            keep_events.append(e)
        return keep_rows, keep_events

    async def _rules(self, resumed: list[Tracker], states: list[tuple[Tracker, str]], statuses: list[tuple[Tracker, dict[str, Any]]], rule_fixes: list[RuleFix], now: datetime) -> None:
        for t in resumed:
            await self._contact_resumed(t)
        for t, st in states:
            await self._set_online(t, st, "last will" if st == "offline" else None)
        for t, status in statuses:
            await self._status(t, status, now)
        if rule_fixes:
            await self._clear_no_fix({f.person_id for f in rule_fixes})
            self.m_checks.inc(len(rule_fixes) * len(self.rules.index.zones))
            await self.rules.evaluate(rule_fixes)

    async def _accept(self, m: Inbound, mono: float, found: list, statuses: list, resumed: list, states: list, kinds: Counter[str]) -> None:  # type: ignore[type-arg]
        dev = m.dev
        if dev is None:
            self._reject(m.reject or "bad_topic", m.topic, 1)
            return
        t = self.trackers.get(dev)
        if t is None and time.monotonic() - self._last_refresh > 5.0:
            await self.reload_devices()  # a tracker may have been added through the API
            t = self.trackers.get(dev)
        if t is None:
            self._reject("unknown_device", dev, 1)
            return
        if m.reject in ("bad_topic", "bad_state"):  # not a report from the device
            if m.sub in SUBS:
                kinds[m.sub] += 1
            self._reject(m.reject, dev, 1)
            return
        kinds[m.sub] += 1
        if m.sub == "state":
            assert m.state is not None
            states.append((t, m.state))
            if m.state == "offline":
                return  # the broker speaks for the device: not a report
        t.last_report = mono
        if t.lost:
            resumed.append(t)
        elif t.online != "online" and (t, "online") not in states:
            states.append((t, "online"))
        if m.reject:
            self._reject(m.reject, dev, 1)
        elif m.sub == "nmea":
            for reason, n in (m.skipped or {}).items():
                self._reject(reason, dev, n)
            found.extend((t, f, "nmea") for f in m.fixes or ())
        elif m.sub == "owntracks":
            r = m.owntracks
            assert r is not None
            if r.kind == "rejected":
                self._reject(r.reason or "bad_field", dev, 1)
            elif r.kind == "location" and r.fix is not None:
                found.append((t, r.fix, "owntracks"))
                if r.battery is not None:
                    statuses.append((t, {"battery": r.battery}))
            elif r.kind == "lwt":
                states.append((t, "offline"))
            elif r.kind == "transition":
                log.info("tracker %s: OwnTracks app reports %s %s", dev, r.event, r.region)
        elif m.sub == "status" and m.status is not None:
            statuses.append((t, m.status))

    def _reject(self, reason: str, who: str, n: int) -> None:
        self.m_rejected.labels(reason).inc(n)
        if reason in NOISY:
            log.warning("tracker %s: %d message(s)/sentence(s) rejected: %s", who, n, reason)
        else:
            log.debug("tracker %s: %d skipped: %s", who, n, reason)

    # --- alerts -------------------------------------------------------------

    async def _raise(self, kind: str, **kw: Any) -> None:
        if self._alerts is not None:  # inside handle(): applied with the batch's other changes
            self._alerts.append(AlertCall(True, kind, {"at": self.services.clock.now(), **kw}))
        else:
            await self.services.alerts.raise_alert(kind, **kw)

    async def _clear(self, kind: str, **kw: Any) -> None:
        if self._alerts is not None:
            self._alerts.append(AlertCall(False, kind, {"at": self.services.clock.now(), **kw}))
        else:
            await self.services.alerts.clear(kind, **kw)

    async def _status(self, t: Tracker, st: dict[str, Any], now: datetime) -> None:
        at = st.get("ts") or now
        await self.services.bus.publish(DeviceStatus(device_id=t.id, ts=st.get("ts"), battery=st.get("battery"), charging=st.get("charging"), tamper=st.get("tamper"), sos=st.get("sos")))
        pid = t.person_id
        if st.get("tamper") is True:
            await self._raise("tamper", person_id=pid, device_id=t.id, message=f"tracker {t.id} reports tampering", at=at)
        elif st.get("tamper") is False:
            await self._clear("tamper", person_id=pid, device_id=t.id, note="tamper switch closed", at=at)
        if st.get("sos") is True:
            # SOS is only ever resolved by an officer: a device cannot cancel it.
            await self._raise("sos", person_id=pid, device_id=t.id, message=f"SOS from tracker {t.id}", at=at)
        battery = st.get("battery")
        if battery is not None:
            async with self.services.db.session() as s:
                row = await s.get(Device, t.id)
                if row is not None:
                    row.battery = battery
                    await s.commit()
            threshold = self.services.config.thresholds.low_battery_pct
            if battery < threshold and not st.get("charging"):
                t.battery_low = True
                await self._raise("low_battery", person_id=pid, device_id=t.id, message=f"tracker {t.id} battery {battery}%", details={"battery": battery}, at=at)
            elif t.battery_low and (battery >= threshold + 5 or st.get("charging")):
                t.battery_low = False
                await self._clear("low_battery", person_id=pid, device_id=t.id, note=f"battery {battery}%", at=at)

    async def _set_online(self, t: Tracker, state: str, reason: str | None) -> None:
        if t.online == state:
            return
        t.online = state
        await self.services.bus.publish(DeviceState(device_id=t.id, kind="tracker", state=state, reason=reason))  # type: ignore[arg-type]

    async def _contact_resumed(self, t: Tracker) -> None:
        t.lost = False
        await self._clear("lost_contact", person_id=t.person_id, device_id=t.id, note="reports resumed")
        await self._set_online(t, "online", None)

    async def _clear_no_fix(self, persons: set[str]) -> None:
        for key in [k for k in self.no_fix_open if k[0] in persons]:
            self.no_fix_open.discard(key)
            await self._clear("no_fix", person_id=key[0], zone_id=key[1], note="fix received")

    # --- liveness (wall time) ---------------------------------------------

    async def _liveness_loop(self) -> None:
        while True:
            await asyncio.sleep(self.gps.liveness_check_s)
            try:
                await self.check_liveness()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracker liveness check failed")

    async def check_liveness(self) -> None:
        """Lost contact per device; no fix during curfew per person. Public so tests can drive it with a FakeClock."""
        clock = self.services.clock
        mono, now = clock.monotonic(), clock.now()
        factor = self.gps.lost_contact_factor
        for t in list(self.trackers.values()):
            last = t.last_report if t.last_report is not None else self.started_mono
            silent = mono - last
            if not t.lost and silent > factor * t.report_interval_s:
                t.lost = True
                await self._raise("lost_contact", person_id=t.person_id, device_id=t.id, message=f"no report from tracker {t.id} for {silent:.0f} s", details={"silent_s": round(silent, 1), "expected_interval_s": t.report_interval_s})
                await self._set_online(t, "offline", "lost contact")
        # No fix during curfew: the device may well report (void fixes, status), but no position.
        index = self.rules.index
        by_person: dict[str, list[Tracker]] = {}
        for t in self.trackers.values():
            if t.person_id:
                by_person.setdefault(t.person_id, []).append(t)
        for z in index.zones:
            if z.kind != "inclusion" or not z.schedule:
                continue
            start = window_start(z.schedule, z.timezone, now)
            persons = z.person_ids or tuple(by_person)
            for pid in persons:
                key = (pid, z.id)
                devices = by_person.get(pid, [])
                if start is None or not devices or key in self.no_fix_open:
                    continue
                in_window_s = (now - start).total_seconds()
                limit = factor * min(t.report_interval_s for t in devices)
                last_fix = max((t.last_fix if t.last_fix is not None else self.started_mono) for t in devices)
                if min(mono - last_fix, in_window_s) > limit:
                    self.no_fix_open.add(key)
                    await self._raise("no_fix", person_id=pid, zone_id=z.id, level=None, message=f"no position from {pid} during curfew of {z.name or z.id}", details={"window_start": start.isoformat()})

