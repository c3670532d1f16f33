"""Kiosk sessions: liveness from heartbeats, idempotent event batches, check-in
alerts and scheduled check-ins that were missed.

Wall time is used only for liveness and schedules (through `services.clock`,
so tests move it); events keep the kiosk's own `occurred_at`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from drivers.kiosk.decoder import Heartbeat, KioskEventIn, problems
from gateway.db.models import CheckInRow, Device, KioskEventRow
from gateway.events import CheckIn, DeviceState, Event, KioskEvent

if TYPE_CHECKING:
    from gateway.services import Services

log = logging.getLogger(__name__)


@dataclass
class KioskState:
    last_heartbeat: float | None = None  # clock.monotonic()
    state: str = "unknown"
    software_version: str | None = None
    status: str | None = None


class KioskDriver:
    name = "kiosks"

    def __init__(self, services: "Services", tick_s: float = 5.0, settings_every_s: float = 60.0) -> None:
        self.services = services
        self.tick_s = tick_s
        self.settings_every_s = settings_every_s
        self.kiosks: dict[str, KioskState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None
        self._missed_done: set[tuple[str, str, date]] = set()
        m = services.metrics
        self.m_events = m.counter("gateway_kiosk_events_total", "Kiosk events by outcome", ("outcome",))
        self.m_heartbeats = m.counter("gateway_kiosk_heartbeats_total", "Kiosk heartbeats")

    async def start(self) -> None:
        self.services.bus.subscribe("kiosk-checkins", self._on_checkin, topics=("checkin",), maxsize=1000, overflow="block")
        self._task = asyncio.create_task(self._watch(), name="kiosk-watchdog")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- heartbeats and liveness ----------------------------------------
    async def heartbeat(self, kiosk_id: str, hb: Heartbeat) -> dict[str, Any]:
        self.m_heartbeats.inc()
        st = self.kiosks.setdefault(kiosk_id, KioskState())
        st.last_heartbeat = self.services.clock.monotonic()
        st.software_version, st.status = hb.software_version, problems(hb)
        async with self.services.db.session() as s:
            row = await s.get(Device, kiosk_id)
            if row is not None:
                row.last_seen_at = self.services.clock.now()
                reported = {"software_version": hb.software_version, "printer": hb.printer, "paper": hb.paper, "kiosk_state": hb.state}
                row.settings = {**(row.settings or {}), **{k: v for k, v in reported.items() if v is not None}}
                await s.commit()
        if st.state != "online":
            was_offline = st.state == "offline"
            st.state = "online"
            await self.services.bus.publish(DeviceState(device_id=kiosk_id, kind="kiosk", state="online", reason=st.status))
            if was_offline:
                await self.services.alerts.clear("kiosk_offline", device_id=kiosk_id, note="heartbeats resumed")
        return {"state": st.state, "status": st.status, "server_time": self.services.clock.now().isoformat()}

    async def _settings(self) -> dict[str, dict[str, Any]]:
        async with self.services.db.session() as s:
            rows = (await s.scalars(select(Device).where(Device.kind == "kiosk", Device.enabled.is_(True)))).all()
        return {r.id: dict(r.settings or {}) for r in rows}

    async def check_liveness(self, kiosks: dict[str, dict[str, Any]] | None = None) -> None:
        now = self.services.clock.monotonic()
        for kiosk_id, settings in (kiosks if kiosks is not None else await self._settings()).items():
            st = self.kiosks.get(kiosk_id)
            if st is None or st.last_heartbeat is None or st.state == "offline":
                continue  # never heard since start: nothing to compare against
            interval = int(settings.get("heartbeat_interval_s") or 60)
            limit = int(settings.get("offline_after_s") or 3 * interval)
            silent = now - st.last_heartbeat
            if silent > limit:
                st.state = "offline"
                reason = f"no heartbeat for {silent:.0f} s (expected every {interval} s)"
                await self.services.bus.publish(DeviceState(device_id=kiosk_id, kind="kiosk", state="offline", reason=reason))
                await self.services.alerts.raise_alert("kiosk_offline", device_id=kiosk_id, message=f"kiosk {kiosk_id} offline: {reason}")

    # -- events ----------------------------------------------------------
    async def apply_events(self, kiosk_id: str, events: list[KioskEventIn]) -> dict[str, Any]:
        """Applied once each, in the order sent; ids already stored are skipped.

        One lock per kiosk keeps two overlapping replays from interleaving; the
        unique (kiosk_id, event_id) constraint is the guarantee across processes.
        """
        lock = self._locks.setdefault(kiosk_id, asyncio.Lock())
        applied: list[str] = []
        duplicates: list[str] = []
        published: list[Event] = []
        async with lock:
            ids = [e.event_id for e in events]
            async with self.services.db.session() as s:
                existing = set((await s.scalars(select(KioskEventRow.event_id).where(KioskEventRow.kiosk_id == kiosk_id, KioskEventRow.event_id.in_(ids)))).all()) if ids else set()
            for e in events:
                if e.event_id in existing:
                    duplicates.append(e.event_id)
                    continue
                try:
                    async with self.services.db.session() as s:
                        s.add(KioskEventRow(kiosk_id=kiosk_id, event_id=e.event_id, kind=e.kind, occurred_at=e.occurred_at, received_at=self.services.clock.now(), payload=e.payload))
                        await s.commit()
                except IntegrityError:
                    duplicates.append(e.event_id)
                    continue
                existing.add(e.event_id)
                applied.append(e.event_id)
                published.append(KioskEvent(kiosk_id=kiosk_id, event_id=e.event_id, kind=e.kind, payload=e.payload, at=e.occurred_at or self.services.clock.now()))
            for ev in published:
                await self.services.bus.publish(ev)
        self.m_events.labels("applied").inc(len(applied))
        self.m_events.labels("duplicate").inc(len(duplicates))
        return {"applied": applied, "duplicates": duplicates}

    # -- check-in alerts -------------------------------------------------
    async def _on_checkin(self, event: Event) -> None:
        assert isinstance(event, CheckIn)
        if event.kiosk_id.startswith("user:"):
            return  # a console verification is not a check-in obligation
        if event.result == "rejected":
            await self.services.alerts.raise_alert(
                "checkin_failed", person_id=event.person_id, device_id=event.kiosk_id,
                message=f"check-in of {event.person_id} at {event.kiosk_id} rejected: {event.reason}",
                details={"checkin_id": event.checkin_id, "distance": event.distance},
            )
        elif event.result == "accepted":
            await self.services.alerts.clear("checkin_failed", person_id=event.person_id, device_id=event.kiosk_id, note=f"accepted check-in {event.checkin_id}")

    async def check_schedules(self, kiosks: dict[str, dict[str, Any]] | None = None) -> None:
        """Raise `checkin_missed` once per scheduled window that ended without an accepted check-in."""
        now = self.services.clock.now()
        for kiosk_id, settings in (kiosks if kiosks is not None else await self._settings()).items():
            for sc in settings.get("checkins") or []:
                tz = ZoneInfo(sc.get("timezone") or "Asia/Shanghai")
                local = now.astimezone(tz)
                for day in (local.date() - timedelta(days=1), local.date()):
                    if day.isoweekday() not in (sc.get("days") or range(1, 8)):
                        continue
                    start = datetime.combine(day, time.fromisoformat(sc.get("start", "09:00")), tz)
                    end = datetime.combine(day, time.fromisoformat(sc.get("end", "17:00")), tz)
                    if end <= start:
                        end += timedelta(days=1)
                    key = (kiosk_id, sc["person_id"], day)
                    if now < end or key in self._missed_done:
                        continue
                    self._missed_done.add(key)
                    async with self.services.db.session() as s:
                        ok = (await s.scalars(select(CheckInRow.id).where(
                            CheckInRow.person_id == sc["person_id"], CheckInRow.kiosk_id == kiosk_id, CheckInRow.result == "accepted",
                            CheckInRow.at >= start, CheckInRow.at <= end).limit(1))).first()
                    if ok is None and now - end < timedelta(days=1):
                        await self.services.alerts.raise_alert(
                            "checkin_missed", person_id=sc["person_id"], device_id=kiosk_id, key=f"checkin_missed:{sc['person_id']}:{kiosk_id}:{day.isoformat()}",
                            message=f"{sc['person_id']} did not check in at {kiosk_id} between {sc.get('start')} and {sc.get('end')} on {day.isoformat()}",
                            details={"day": day.isoformat(), "start": sc.get("start"), "end": sc.get("end")},
                        )

    async def _watch(self) -> None:
        kiosks: dict[str, dict[str, Any]] = {}
        read_at = -float("inf")
        while True:
            try:
                # The kiosks' settings (thresholds, schedules) are read once a minute, not
                # on every tick: that query was most of what the gateway did at rest. A
                # heartbeat from a kiosk not in them yet reads them again at once.
                now = self.services.clock.monotonic()
                if now - read_at >= self.settings_every_s or not self.kiosks.keys() <= kiosks.keys():
                    kiosks, read_at = await self._settings(), now
                await self.check_liveness(kiosks)
                await self.check_schedules(kiosks)
            except Exception:
                log.exception("kiosk watchdog pass failed")
            await asyncio.sleep(self.tick_s)
