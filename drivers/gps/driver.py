"""The tracker driver: MQTT transport → pure decoders → per-device ordered pipeline
(filter → persist → rules → alerts → push), plus liveness.

The pieces, each in its module: `registry` (the trackers listened to, kept current by
`DeviceChanged`), `inbound`/`nmea`/`owntracks` (pure decoders, run in the ingest worker
or here), `batch` (a batch sorted by what each message says, and filtered), `rules`
(geofences and curfews), `status` (tamper, SOS, battery), `liveness` (lost contact,
no fix), `recovery` (rule state rebuilt from what is stored after a restart). Rules
return alert changes; this module applies them with the batch, in one transaction.

On several nodes (docs/cluster.md) every node receives every message; trackers are spread
over `cluster.tracker_partitions` partitions (`partitions`), and only the owner of a
partition (a `trackers:<k>` lease) runs its trackers' pipeline. The others keep the
messages for a takeover; each commit of positions checks the partition's lease in the
same transaction (fencing) and records how far the owner got.

The core MQTT adapter hands each batch to `handle` on the event loop in arrival order
and acknowledges QoS 1 messages only after `handle` returns, so positions are committed
to the database before the broker forgets them. Nothing a device sends can raise out of
`handle`: bad input is counted in `gateway_gps_rejected_total{reason}` and logged per
device at most once a minute (with a summary of what was not logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from config.trackers import GpsSettings
from drivers.gps.batch import POSITION_COLUMNS, POSITIONS, Batch
from drivers.gps.filter import FilterState
from drivers.gps.geofence import ZoneIndex
from drivers.gps.inbound import Inbound, decode_batch
from drivers.gps.ingest import IngestWorker
from drivers.gps.liveness import Liveness
from drivers.gps.nmea import NmeaState
from drivers.gps.partitions import Standby, key_of, partition_of
from drivers.gps.recovery import lookback_s, rebuild_rules, seed_filters, seed_liveness
from drivers.gps.registry import Tracker, TrackerRegistry
from drivers.gps.rules import GeofenceRules
from drivers.gps.status import status_calls
from drivers.gps.zonestore import load_zones
from gateway.alerts.service import AlertCall, AlertService
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.cluster.leases import Grant
from gateway.cluster.membership import Cluster
from gateway.db.bulk import InlineSqliteWriter, insert_rows
from gateway.db.engine import Database
from gateway.db.models import Device, PositionRow
from gateway.events import (
    DeviceChanged,
    DeviceState,
    DeviceStatus,
    Event,
    PersonChanged,
    UnitChanged,
    ZoneChanged,
)
from gateway.logs import Throttled
from gateway.metrics import Metrics
from gateway.mqtt import Message, MqttLink

log = logging.getLogger(__name__)

UNKNOWN_RECHECK_S = 10.0

TOPICS = ("trackers/+/nmea", "trackers/+/status", "trackers/+/state", "owntracks/+/+")
# Reasons that mean a device or a network sent something broken (logged at
# warning); the others (void fix, sentences without a position) are normal.
NOISY = {"checksum", "malformed", "garbage", "too_large", "range", "not_json", "not_owntracks", "bad_field",
         "missing_field", "unsupported_type", "bad_status", "bad_state", "unknown_device", "bad_topic", "decoder_error",
         "invalid", "future", "stale", "speed"}


class TrackerDriver:
    name = "trackers"
    kind = "trackers"  # the cluster's kind of work: `trackers:<k>`, one partition

    def __init__(self, *, gps: GpsSettings, low_battery_pct: int, bus: EventBus, db: Database, alerts: AlertService, clock: Clock,
                 metrics: Metrics, mqtt: MqttLink | None, cluster: Cluster) -> None:
        self.gps = gps
        self.cluster = cluster
        self.partitions = cluster.settings.tracker_partitions
        self.owned: dict[int, Grant] = {}  # partitions whose pipeline runs here
        self.standby = Standby(cluster.settings.standby_window_s)
        self.low_battery_pct = low_battery_pct
        self.bus, self.db, self.alerts, self.clock, self.metrics, self.mqtt = bus, db, alerts, clock, metrics, mqtt
        self.registry = TrackerRegistry(gps)
        self.rules = GeofenceRules(ZoneIndex([]), gps.alert_update_s)
        self.liveness = Liveness(gps.lost_contact_factor, clock.monotonic())
        self.nmea_states: dict[str, NmeaState] = {}  # per device, for decoding on the loop (no ingest worker)
        self.ingest: IngestWorker | None = None  # when tracker messages arrive through the worker process
        self.rejects = Throttled(log)
        self._task: asyncio.Task[None] | None = None
        self._inline: InlineSqliteWriter | None = None  # SQLite: positions written on the loop (see bulk.py)
        self._commit = asyncio.Lock()  # FIFO: batches commit, run rules and notify in arrival order
        self._filter = asyncio.Lock()  # FIFO: batches are filtered in arrival order
        self._unknown: dict[str, float] = {}  # device -> monotonic time until which it is known not to be a tracker
        self.m_messages = metrics.counter("gateway_gps_messages_total", "Tracker MQTT messages handled", ("kind",))
        self.m_rejected = metrics.counter("gateway_gps_rejected_total", "Tracker input skipped or rejected, by reason", ("reason",))
        self.m_stored = metrics.counter("gateway_gps_positions_stored_total", "Positions committed to the database")
        self.m_checks = metrics.counter("gateway_gps_zone_checks_total", "Point-zone evaluations")
        self.m_kept = metrics.gauge("gateway_gps_standby_messages", "Tracker messages kept for partitions other nodes own")
        self.m_replayed = metrics.counter("gateway_gps_replayed_total", "Kept tracker messages replayed on taking a partition over")
        self.m_db_retries = metrics.counter("gateway_gps_db_retries_total", "Tracker batch writes retried because the database was unreachable")
        self.m_fenced = metrics.counter("gateway_gps_fenced_total", "Positions not written: their partition's lease was lost")

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        path = self.db.sqlite_path
        if path:
            self._inline = InlineSqliteWriter(path, POSITIONS, POSITION_COLUMNS, self.db.wal_checkpointer().soon)
        async with self.db.session() as s:
            self.rules.set_index(ZoneIndex(await load_zones(s)))
            await self.registry.load(s)
        # inline: the API publishes a change and answers once it is applied here; remote:
        # a change made through another node's API too
        # a person or unit change can change whom a unit's zone applies to (zonestore.load_zones)
        self.bus.subscribe("trackers-changes", self._changed, topics=(DeviceChanged.topic, ZoneChanged.topic, PersonChanged.topic, UnitChanged.topic),
                           inline=True, remote=True)
        # the partitions this node owns start when the cluster grants them (`acquired`):
        # their rule state is rebuilt from what is stored then
        self.cluster.add(self)
        mqtt = self.mqtt
        if mqtt is not None and self.gps.ingest_worker:
            self.ingest = IngestWorker(self.handle_inbound, mqtt.settings, mqtt.node_id, f"{mqtt.client_id}-trackers", TOPICS, self.metrics)
            await self.ingest.start()
        elif mqtt is not None:
            for t in TOPICS:
                mqtt.subscribe(t, self.handle, qos=1)
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
        self.rejects.flush()

    async def _changed(self, event: Event) -> None:
        if isinstance(event, (ZoneChanged, PersonChanged, UnitChanged)):
            await self.reload_zones()
        elif isinstance(event, DeviceChanged) and event.kind == "tracker":
            async with self.db.session() as s:
                await self.registry.apply(s, event.device_id)

    # --- partitions (the cluster's claimant of kind `trackers`) ----------------------------
    def wanted(self) -> list[str]:
        return [str(k) for k in range(self.partitions)]

    def devices_of(self, k: int) -> set[str]:
        return {t.id for t in self.registry if partition_of(t.id, self.partitions) == k}

    async def acquired(self, target: str, grant: Grant) -> None:
        """Partition `k` is ours: its trackers' state from what is stored, then what was
        kept of their messages since the last owner's last commit, before any new one."""
        k = int(target)
        async with self._commit:
            devices = self.devices_of(k)
            self._forget(devices)
            async with self.db.session() as s:
                await seed_filters(s, self.registry, devices)
                await seed_liveness(s, self.registry, self.liveness, devices)
                recovered = await rebuild_rules(s, self.rules, self.registry, self.clock.now(), lookback_s(self.rules, self.gps.alert_update_s),
                                                self.gps.max_age_s, devices)
            await self.alerts.apply(recovered)
            # From here to the batch's filtering nothing awaits: a batch coming meanwhile is
            # filtered after the replay, and waits for this commit.
            self.owned[k] = grant
            replay = self.standby.take(k, grant.progress)
            if replay:
                self.m_replayed.inc(len(replay))
                log.info("trackers: partition %d taken over; %d kept message(s) replayed", k, len(replay))
                await self._commit_batch(self._batch(replay))

    async def released(self, target: str) -> None:
        """Partition `k` is judged by another node now (or by nobody: we are cut off)."""
        k = int(target)
        async with self._commit:
            self.owned.pop(k, None)
            self._forget(self.devices_of(k))

    def _forget(self, devices: set[str]) -> None:
        self.rules.forget(devices)
        persons = set()
        for dev in devices:
            t = self.registry.get(dev)
            if t is not None:
                t.filter = FilterState()
                t.lost = t.battery_low = False
                t.online = None
                persons.add(t.person_id)
        self.liveness.no_fix_open = {key for key in self.liveness.no_fix_open if key[0] not in persons}

    def owned_trackers(self) -> list[Tracker]:
        return [t for t in self.registry if partition_of(t.id, self.partitions) in self.owned]

    async def reload_zones(self) -> None:
        async with self.db.session() as s:
            self.rules.set_index(ZoneIndex(await load_zones(s)))

    # --- the pipeline -----------------------------------------------------

    async def handle(self, batch: list[Message]) -> None:
        """A batch of MQTT messages, decoded here (no ingest worker, and tests)."""
        await self.handle_inbound(decode_batch(batch, self.nmea_states, self.clock.now().date()))

    async def handle_inbound(self, messages: list[Inbound]) -> None:
        """A batch of decoded messages (from `handle`, or from the ingest worker) in arrival order."""
        mine = self._sort_out(messages)
        if not mine:
            return
        # Filtering may run while the batch before is still being committed (MqttLink
        # pipelines batches), in arrival order: the next batch filters once this one holds
        # the commit lock, and batches commit in that order.
        async with self._filter:
            await self._look_up_unknown(mine)
            batch = self._batch(mine)
            await self._commit.acquire()
        try:
            await self._commit_batch(batch)
        finally:
            self._commit.release()

    async def _look_up_unknown(self, messages: list[Inbound]) -> None:
        """A tracker not in the registry may have been registered a moment ago through
        another node's API, its change event still on its way: the database says. Asked
        once per device and `UNKNOWN_RECHECK_S`, so a flood from unknown devices costs one
        query per interval, not one per message."""
        known = self.registry.by_id
        mono = self.clock.monotonic()
        ask = {m.dev for m in messages if m.dev is not None and m.dev not in known and self._unknown.get(m.dev, 0.0) <= mono}
        if not ask:
            return
        if len(self._unknown) > 10_000:
            self._unknown.clear()
        for dev in ask:
            self._unknown[dev] = mono + UNKNOWN_RECHECK_S
        async with self.db.session() as s:
            found = await self.registry.load_some(s, ask)
        for dev in found:
            self._unknown.pop(dev, None)

    def _sort_out(self, messages: list[Inbound]) -> list[Inbound]:
        """The messages of partitions owned here; the others are kept for a takeover."""
        n, owned = self.partitions, self.owned
        if len(owned) == n:
            return messages
        now, mono = self.clock.now(), self.clock.monotonic()
        trackers = self.registry.by_id
        mine = []
        for m in messages:
            k = partition_of(key_of(m), n)
            if k in owned:
                mine.append(m)
                continue
            self.standby.keep(k, now, m)
            t = trackers.get(m.dev) if m.dev is not None else None
            if t is not None and m.sub != "state":
                t.last_report = mono  # heard from: the liveness of a partition taken over starts right
        self.standby.trim(now)
        self.m_kept.set(len(self.standby))
        return mine

    def _batch(self, messages: list[Inbound]) -> Batch:
        batch = Batch(self.clock.now(), self.clock.monotonic())
        trackers = self.registry.by_id
        for m in messages:
            try:
                batch.add(m, trackers)
            except Exception:  # noqa: BLE001 - a bug here must not lose the rest of the batch
                batch.reject("decoder_error", m.topic)
                log.exception("tracker message on %s could not be handled", m.topic)
        batch.filter()
        self._report(batch)
        return batch

    def _report(self, batch: Batch) -> None:
        for kind, n in batch.kinds.items():
            self.m_messages.labels(kind).inc(n)
        reasons: Counter[str] = Counter()
        for (reason, who), n in batch.rejected.items():
            reasons[reason] += n
            if reason in NOISY:
                self.rejects.log(logging.WARNING, who, "tracker %s: %d message(s)/sentence(s) rejected: %s", who, n, reason)
        for reason, n in reasons.items():
            self.m_rejected.labels(reason).inc(n)
        for dev, event, region in batch.transitions:
            log.info("tracker %s: OwnTracks app reports %s %s", dev, event, region)

    async def _commit_batch(self, batch: Batch) -> None:
        if any(not r[-1] for r in batch.rows):
            await self._until_done("checking redelivered positions", lambda: self._drop_stored(batch))
        if batch.rows:
            await self._until_done("writing positions", lambda: self._write(batch))
            self.m_stored.inc(len(batch.rows))
        # Rules and notifications only after the positions are durable. A rule
        # failing (database gone mid-batch) must not hide the positions' events.
        calls: list[AlertCall] = []
        try:
            calls = await self._rules(batch)
        except Exception:  # noqa: BLE001
            self.m_rejected.labels("rule_error").inc()
            log.exception("tracker rules failed on a batch of %d fixes", len(batch.rule_fixes))
        await self._until_done("applying alert changes", lambda: self.alerts.apply(calls))  # one transaction for the whole batch
        await self.bus.publish_many(batch.events)

    async def _write(self, batch: Batch) -> None:
        rows = batch.rows
        if self.cluster.solo:
            if self._inline is None or not self._inline.insert(rows):
                async with self.db.session() as s:
                    # through the driver: even Core's executemany cost more than the write itself
                    await insert_rows(s, POSITIONS, POSITION_COLUMNS, rows)
                    await s.commit()
            return
        async with self.db.session() as s:
            lost = await self._fence(s, batch)
            if lost:
                self._drop_partitions(batch, lost)
            await insert_rows(s, POSITIONS, POSITION_COLUMNS, batch.rows)
            await s.commit()

    async def _until_done(self, what: str, fn: Callable[[], Awaitable[object]]) -> None:
        """Retry while the database cannot be reached (a restart, a failover): the batch
        is acknowledged to the broker only once it is stored, and the batches after it wait
        (in order) in the broker's in-flight window and queue. Other errors are the batch's
        own and go up (counted and logged by the caller)."""
        delay = 0.5
        while True:
            try:
                await fn()
                return
            except (OperationalError, InterfaceError) as e:
                self.m_db_retries.inc()
                self.rejects.log(logging.WARNING, "database", "trackers: database unavailable while %s (%s); retrying", what, type(e.orig or e).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _fence(self, s: AsyncSession, batch: Batch) -> set[int]:
        """In the positions' transaction: the batch's partitions whose lease this node lost
        (another node judges them now: their rows must not be written here). The others'
        progress advances to the batch's arrival, for the next owner's replay."""
        n = self.partitions
        parts = {partition_of(r[0], n) for r in batch.rows}
        grants = [self.owned[k] for k in parts if k in self.owned]
        kept = await self.cluster.store.fence(s, grants, batch.now)
        return {k for k in parts if k not in self.owned or self.owned[k].name not in kept}

    def _drop_partitions(self, batch: Batch, lost: set[int]) -> None:
        n = self.partitions
        keep = [i for i, r in enumerate(batch.rows) if partition_of(r[0], n) not in lost]
        self.m_fenced.inc(len(batch.rows) - len(keep))
        log.warning("trackers: lease of partition(s) %s lost; %d position(s) left to their new owner", sorted(lost), len(batch.rows) - len(keep))
        batch.rows = [batch.rows[i] for i in keep]
        batch.events = [batch.events[i] for i in keep]
        gone = {t.id for t in self.registry if partition_of(t.id, n) in lost}
        batch.rule_fixes = [f for f in batch.rule_fixes if f.device_id not in gone]
        batch.statuses = [(t, st) for t, st in batch.statuses if t.id not in gone]
        batch.states = [(t, st) for t, st in batch.states if t.id not in gone]
        batch.resumed = [t for t in batch.resumed if t.id not in gone]
        for k in lost:
            self.owned.pop(k, None)

    async def _drop_stored(self, batch: Batch) -> None:
        """Out-of-order fixes that are already stored: the broker redelivering what was
        committed but not yet acknowledged when the gateway or its ingest worker stopped.
        Only these need a look at the table: an in-order fix is newer than anything stored."""
        late = [r for r in batch.rows if not r[-1]]
        async with self.db.session() as s:
            q = select(PositionRow.device_id, PositionRow.fix_time).where(
                PositionRow.device_id.in_({r[0] for r in late}), PositionRow.fix_time.in_({r[2] for r in late}))
            seen = {(d, t) for d, t in (await s.execute(q)).all()}
        keep_rows, keep_events = [], []
        dropped = 0
        for r, e in zip(batch.rows, batch.events, strict=True):
            key = (r[0], r[2])
            if not r[-1] and key in seen:
                dropped += 1
                continue
            seen.add(key)  # the same late fix twice in one batch is stored once
            keep_rows.append(r)
            keep_events.append(e)
        if dropped:
            self.m_rejected.labels("duplicate").inc(dropped)
        batch.rows, batch.events = keep_rows, keep_events

    async def _rules(self, batch: Batch) -> list[AlertCall]:
        calls: list[AlertCall] = []
        for t in batch.resumed:
            t.lost = False
            calls.append(AlertCall(False, "lost_contact", {"person_id": t.person_id, "device_id": t.id, "note": "reports resumed", "at": batch.now}))
            await self._set_online(t, "online", None)
        for t, st in batch.states:
            await self._set_online(t, st, "last will" if st == "offline" else None)
        for t, status in batch.statuses:
            await self._status(t.id, status)
            calls.extend(status_calls(t, status, batch.now, self.low_battery_pct))
        if batch.rule_fixes:
            calls.extend(self.liveness.fixes_from({f.person_id for f in batch.rule_fixes}, batch.now))
            self.m_checks.inc(len(batch.rule_fixes) * len(self.rules.index.zones))
            calls.extend(self.rules.evaluate(batch.rule_fixes))
        return calls

    async def _status(self, device_id: str, st: dict[str, Any]) -> None:
        await self.bus.publish(DeviceStatus(device_id=device_id, ts=st.get("ts"), battery=st.get("battery"), charging=st.get("charging"),
                                            tamper=st.get("tamper"), sos=st.get("sos")))
        battery = st.get("battery")
        if battery is not None:
            async with self.db.session() as s:
                row = await s.get(Device, device_id)
                if row is not None:
                    row.battery = battery
                    await s.commit()

    async def _set_online(self, t: Tracker, state: str, reason: str | None) -> None:
        if t.online == state:
            return
        t.online = state
        await self.bus.publish(DeviceState(device_id=t.id, kind="tracker", state=state, reason=reason))  # type: ignore[arg-type]

    # --- liveness (wall time) ---------------------------------------------

    async def _liveness_loop(self) -> None:
        while True:
            await asyncio.sleep(self.gps.liveness_check_s)
            try:
                await self.check_liveness()
                self.rejects.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracker liveness check failed")

    async def check_liveness(self) -> None:
        """Lost contact per device; no fix during curfew per person. Public so tests can drive it with a FakeClock."""
        result = self.liveness.check(self.owned_trackers(), self.rules.index, self.clock.monotonic(), self.clock.now())
        for t in result.offline:
            await self._set_online(t, "offline", "lost contact")
        await self.alerts.apply(result.calls)
