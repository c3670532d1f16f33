"""Kiosk sessions: liveness from heartbeats, idempotent event batches, check-in
alerts and scheduled check-ins that were missed.

Wall time is used only for liveness and schedules (through the injected clock,
so tests move it); events keep the kiosk's own `occurred_at`. The kiosks'
settings (heartbeat interval, offline threshold, check-in schedules) are read at
start and again for a kiosk when a `DeviceChanged` says it changed: an edit through
the API takes effect at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from config.devices import stored_device
from config.kiosks import KioskDevice
from drivers.kiosk.decoder import Heartbeat, KioskEventIn, problems
from gateway.alerts.service import AlertService
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.cluster.membership import Singletons
from gateway.db.engine import Database
from gateway.db.models import CheckInRow, Device, KioskEventRow
from gateway.events import CheckIn, DeviceChanged, DeviceState, Event, KioskEvent
from gateway.metrics import Metrics

log = logging.getLogger(__name__)


# kiosk events that someone must answer, and the alert each raises
EVENT_ALERTS = {"sos": "sos", "call_officer": "assistance_requested"}


def person_of(payload: dict[str, Any]) -> str | None:
    """The person a kiosk event is about (`payload.person_id`), when it is a usable id."""
    person = payload.get("person_id")
    return person if isinstance(person, str) and 0 < len(person) <= 64 else None


@dataclass
class KioskState:
    last_heartbeat: float | None = None  # clock.monotonic()
    state: str = "unknown"
    software_version: str | None = None
    status: str | None = None


def kiosk_settings(row: Device) -> KioskDevice:
    """The row as the typed model the API and the configuration validate it with."""
    try:
        cfg = stored_device("kiosk", row.id, row.name, row.enabled, None, row.settings)
        assert isinstance(cfg, KioskDevice)
        return cfg
    except ValidationError as e:
        log.warning("kiosk %s: settings not valid, defaults used: %s", row.id, e.errors(include_url=False))
        return KioskDevice(id=row.id, kind="kiosk")


class KioskDriver:
    name = "kiosks"

    def __init__(self, *, bus: EventBus, db: Database, alerts: AlertService, clock: Clock, metrics: Metrics, default_tz: str,
                 singletons: Singletons, shared_heartbeats: bool = False, tick_s: float = 5.0) -> None:
        self.bus, self.db, self.alerts, self.clock = bus, db, alerts, clock
        self.singletons = singletons
        # several nodes: a kiosk's heartbeats reach any of them (through a load balancer),
        # so the watchdog, on one node, also reads when each was last seen from the database
        self.shared_heartbeats = shared_heartbeats
        self.default_tz = default_tz  # gateway.timezone, for schedules that name none
        self.tick_s = tick_s
        self.kiosks: dict[str, KioskState] = {}
        self.settings: dict[str, KioskDevice] = {}  # enabled kiosks
        self._locks: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None
        self._missed_done: set[tuple[str, str, date]] = set()
        m = metrics
        self.m_events = m.counter("gateway_kiosk_events_total", "Kiosk events by outcome", ("outcome",))
        self.m_heartbeats = m.counter("gateway_kiosk_heartbeats_total", "Kiosk heartbeats")

    async def start(self) -> None:
        async with self.db.session() as s:
            rows = (await s.scalars(select(Device).where(Device.kind == "kiosk", Device.enabled.is_(True)))).all()
            self.settings = {r.id: kiosk_settings(r) for r in rows}
        self.bus.subscribe("kiosk-checkins", self._on_checkin, topics=("checkin",), maxsize=1000, overflow="block")
        self.bus.subscribe("kiosk-changes", self._changed, topics=(DeviceChanged.topic,), inline=True, remote=True)
        self.singletons.add("kiosk-watchdog", self._watch)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _changed(self, event: Event) -> None:
        if not isinstance(event, DeviceChanged) or event.kind != "kiosk":
            return
        async with self.db.session() as s:
            row = await s.get(Device, event.device_id, populate_existing=True)
        if row is None or row.kind != "kiosk" or not row.enabled:
            self.settings.pop(event.device_id, None)
            self.kiosks.pop(event.device_id, None)
        else:
            self.settings[event.device_id] = kiosk_settings(row)

    # -- heartbeats and liveness ----------------------------------------
    async def heartbeat(self, kiosk_id: str, hb: Heartbeat) -> dict[str, Any]:
        self.m_heartbeats.inc()
        st = self.kiosks.setdefault(kiosk_id, KioskState())
        st.last_heartbeat = self.clock.monotonic()
        st.software_version, st.status = hb.software_version, problems(hb)
        async with self.db.session() as s:
            row = await s.get(Device, kiosk_id)
            if row is not None:
                row.last_seen_at = self.clock.now()
                reported = {"software_version": hb.software_version, "printer": hb.printer, "paper": hb.paper, "kiosk_state": hb.state}
                row.settings = {**(row.settings or {}), **{k: v for k, v in reported.items() if v is not None}}
                await s.commit()
        if st.state != "online":
            was_offline = st.state == "offline"
            st.state = "online"
            await self.bus.publish(DeviceState(device_id=kiosk_id, kind="kiosk", state="online", reason=st.status))
            if was_offline:
                await self.alerts.clear("kiosk_offline", device_id=kiosk_id, note="heartbeats resumed")
        return {"state": st.state, "status": st.status, "server_time": self.clock.now().isoformat()}

    async def _seen_elsewhere(self) -> None:
        """Heartbeats other nodes received: `last_seen_at` as this node's monotonic time."""
        mono, wall = self.clock.monotonic(), self.clock.now()
        async with self.db.session() as s:
            rows = (await s.execute(select(Device.id, Device.last_seen_at).where(Device.kind == "kiosk", Device.id.in_(list(self.settings))))).all()
        for kiosk_id, seen in rows:
            if seen is None:
                continue
            at = mono - (wall - seen).total_seconds()
            st = self.kiosks.setdefault(kiosk_id, KioskState())
            if st.last_heartbeat is None or at > st.last_heartbeat + 0.001:
                st.last_heartbeat = at
                if st.state == "offline":
                    st.state = "online"
                    await self.bus.publish(DeviceState(device_id=kiosk_id, kind="kiosk", state="online", reason="heartbeat on another node"))
                    await self.alerts.clear("kiosk_offline", device_id=kiosk_id, note="heartbeats resumed")
                elif st.state != "online":
                    st.state = "online"

    async def check_liveness(self) -> None:
        if self.shared_heartbeats:
            await self._seen_elsewhere()
        now = self.clock.monotonic()
        for kiosk_id, cfg in list(self.settings.items()):
            st = self.kiosks.get(kiosk_id)
            if st is None or st.last_heartbeat is None or st.state == "offline":
                continue  # never heard since start: nothing to compare against
            interval = cfg.heartbeat_interval_s
            limit = cfg.offline_after_s or 3 * interval
            silent = now - st.last_heartbeat
            if silent > limit:
                st.state = "offline"
                reason = f"no heartbeat for {silent:.0f} s (expected every {interval} s)"
                await self.bus.publish(DeviceState(device_id=kiosk_id, kind="kiosk", state="offline", reason=reason))
                await self.alerts.raise_alert("kiosk_offline", device_id=kiosk_id, message=f"kiosk {kiosk_id} offline: {reason}")

    # -- events ----------------------------------------------------------
    async def apply_events(self, kiosk_id: str, events: list[KioskEventIn]) -> dict[str, Any]:
        """Applied once each, in the order sent; ids already stored are skipped.

        One lock per kiosk keeps two overlapping replays from interleaving; the
        unique (kiosk_id, event_id) constraint is the guarantee across processes.
        """
        lock = self._locks.setdefault(kiosk_id, asyncio.Lock())
        applied: list[str] = []
        duplicates: list[str] = []
        published: list[KioskEvent] = []
        async with lock:
            ids = [e.event_id for e in events]
            async with self.db.session() as s:
                existing = set((await s.scalars(select(KioskEventRow.event_id).where(KioskEventRow.kiosk_id == kiosk_id, KioskEventRow.event_id.in_(ids)))).all()) if ids else set()
            for e in events:
                if e.event_id in existing:
                    duplicates.append(e.event_id)
                    continue
                try:
                    async with self.db.session() as s:
                        s.add(KioskEventRow(kiosk_id=kiosk_id, event_id=e.event_id, kind=e.kind, occurred_at=e.occurred_at, received_at=self.clock.now(),
                                            payload=e.payload, person_id=person_of(e.payload)))
                        await s.commit()
                except IntegrityError:
                    duplicates.append(e.event_id)
                    continue
                existing.add(e.event_id)
                applied.append(e.event_id)
                published.append(KioskEvent(kiosk_id=kiosk_id, event_id=e.event_id, kind=e.kind, payload=e.payload, at=e.occurred_at or self.clock.now()))
            for ev in published:
                await self.bus.publish(ev)
                await self._answer(ev)
        self.m_events.labels("applied").inc(len(applied))
        self.m_events.labels("duplicate").inc(len(duplicates))
        return {"applied": applied, "duplicates": duplicates}

    async def _answer(self, ev: KioskEvent) -> None:
        """An SOS or a call for the duty officer pressed at the terminal is an alert: it reaches
        the consoles and, through the outbox, the officer on duty (docs/delivery.md). Keyed by
        the event, so a replayed batch raises nothing twice."""
        kind = EVENT_ALERTS.get(ev.kind)
        if kind is None:
            return
        person_id = person_of(ev.payload)
        where = self.settings.get(ev.kiosk_id)
        place = getattr(where, "location", None) or ev.kiosk_id
        await self.alerts.raise_alert(kind, person_id=person_id, device_id=ev.kiosk_id, key=f"{kind}:{ev.kiosk_id}:{ev.event_id}",
                                      message=f"{ev.kind} at {place}" + (f" by {person_id}" if person_id else ""),
                                      details={"event_id": ev.event_id}, at=ev.at)

    # -- check-in alerts -------------------------------------------------
    async def _on_checkin(self, event: Event) -> None:
        assert isinstance(event, CheckIn)
        if event.kiosk_id.startswith("user:"):
            return  # a console verification is not a check-in obligation
        if event.result == "rejected":
            await self.alerts.raise_alert(
                "checkin_failed", person_id=event.person_id, device_id=event.kiosk_id,
                message=f"check-in of {event.person_id} at {event.kiosk_id} rejected: {event.reason}",
                details={"checkin_id": event.checkin_id, "distance": event.distance},
            )
        elif event.result == "accepted":
            await self.alerts.clear("checkin_failed", person_id=event.person_id, device_id=event.kiosk_id, note=f"accepted check-in {event.checkin_id}")
            # made in a window already judged missed (it waited in the terminal's outbox while the
            # gateway was out of reach): the person did check in, so the missed alert ends
            for day in self._windows_holding(event.kiosk_id, event.person_id, event.at):
                await self.alerts.clear("checkin_missed", person_id=event.person_id, device_id=event.kiosk_id,
                                        key=f"checkin_missed:{event.person_id}:{event.kiosk_id}:{day.isoformat()}",
                                        note=f"check-in {event.checkin_id} made in the window reached the gateway late (the terminal was offline)")

    def _window(self, start_s: str, end_s: str, tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time.fromisoformat(start_s), tz)
        end = datetime.combine(day, time.fromisoformat(end_s), tz)
        return start, end + timedelta(days=1) if end <= start else end

    def _windows_holding(self, kiosk_id: str, person_id: str, at: datetime) -> list[date]:
        """The days of this kiosk's check-in windows for the person that contain `at`."""
        cfg = self.settings.get(kiosk_id)
        days = []
        for sc in cfg.checkins if cfg else []:
            if sc.person_id != person_id:
                continue
            tz = ZoneInfo(sc.timezone or self.default_tz)
            local = at.astimezone(tz)
            for day in (local.date() - timedelta(days=1), local.date()):
                start, end = self._window(sc.start, sc.end, tz, day)
                if day.isoweekday() in sc.days and start <= at <= end:
                    days.append(day)
        return days

    async def check_schedules(self) -> None:
        """Raise `checkin_missed` once per scheduled window that ended without an accepted check-in."""
        now = self.clock.now()
        for kiosk_id, cfg in list(self.settings.items()):
            for sc in cfg.checkins:
                tz = ZoneInfo(sc.timezone or self.default_tz)
                local = now.astimezone(tz)
                for day in (local.date() - timedelta(days=1), local.date()):
                    if day.isoweekday() not in sc.days:
                        continue
                    start, end = self._window(sc.start, sc.end, tz, day)
                    key = (kiosk_id, sc.person_id, day)
                    if now < end or key in self._missed_done:
                        continue
                    self._missed_done.add(key)
                    async with self.db.session() as s:
                        ok = (await s.scalars(select(CheckInRow.id).where(
                            CheckInRow.person_id == sc.person_id, CheckInRow.kiosk_id == kiosk_id, CheckInRow.result == "accepted",
                            CheckInRow.at >= start, CheckInRow.at <= end).limit(1))).first()
                    if ok is None and now - end < timedelta(days=1):
                        await self.alerts.raise_alert(
                            "checkin_missed", person_id=sc.person_id, device_id=kiosk_id, key=f"checkin_missed:{sc.person_id}:{kiosk_id}:{day.isoformat()}",
                            message=f"{sc.person_id} did not check in at {kiosk_id} between {sc.start} and {sc.end} on {day.isoformat()}",
                            details={"day": day.isoformat(), "start": sc.start, "end": sc.end},
                        )

    async def _watch(self) -> None:
        while True:
            try:
                await self.check_liveness()
                await self.check_schedules()
            except Exception:
                log.exception("kiosk watchdog pass failed")
            await asyncio.sleep(self.tick_s)
