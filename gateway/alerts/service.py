"""Alert lifecycle: open → acknowledged → resolved, deduplicated and escalated; and
handling as the corrections units work an alert: assigned to a unit (and maybe an officer),
assessed (研判), disposed of (处置), fed back (反馈: closes it), its level changed by hand with a
reason, notes at any time. Each step is a note on the alert's history, audited, staged to the
outbox and published, like acknowledge and resolve.

An ongoing condition has one dedup key (by default kind, person, device and
zone). Raising it again while an alert with that key is open or acknowledged
updates that alert (count, updated_at, position) instead of opening another.
`clear` resolves it when the condition ends (the tracker re-entered, contact
resumed). Every change is audited and published on the bus as AlertChanged,
which the delivery module turns into WebSocket, MQTT and webhook messages.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from config.schema import AlertSettings, EscalationRule
from gateway.alerts.public import alert_payload
from gateway.audit import Audit
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.db.models import Alert, AlertNote, Device, Person, User
from gateway.events import AlertChanged
from gateway.metrics import Metrics
from gateway.units import ROOT_PATH, unit_in_reach, within

log = logging.getLogger(__name__)

LEVELS = ("blue", "yellow", "orange", "red")  # ascending severity
ONGOING = ("open", "acknowledged")

DEFAULT_LEVELS: dict[str, str] = {
    "exclusion_breach": "red",
    "tamper": "red",
    "sos": "red",
    "call_impostor": "red",  # someone else in front of the camera in a remote session
    "disk_full": "red",
    "recording_failed": "red",
    "inclusion_exit": "orange",
    "call_absent": "orange",  # nobody in front of the camera in a remote session
    "curfew": "orange",
    "camera_offline": "orange",
    "lost_contact": "yellow",
    "no_fix": "yellow",
    "checkin_failed": "yellow",
    "checkin_missed": "yellow",
    "checkin_out_of_zone": "orange",  # a remote check-in from outside the allowed area (or a zone's own level)
    "kiosk_offline": "yellow",
    "assistance_requested": "yellow",  # "call the duty officer" at a kiosk
    "upload_quarantined": "yellow",
    "low_battery": "blue",
}


class AlertError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def alert_in_reach(reach: str, username: str | None = None) -> ColumnElement[bool]:
    """An alert is in a user's reach when its unit is, or the unit it is assigned to is (an
    alert assigned to an office is that office's to handle, wherever it was raised), or it
    is assigned to the user by name (an officer of a team below the assigned unit)."""
    if reach == ROOT_PATH:
        return within(Alert.unit_id, reach)  # true(): no filter for the root
    mine = [Alert.assignee == username] if username else []
    return or_(within(Alert.unit_id, reach), within(Alert.assigned_unit_id, reach), *mine)


def default_key(kind: str, person_id: str | None, device_id: str | None, zone_id: str | None) -> str:
    return f"{kind}|{person_id or ''}|{device_id or ''}|{zone_id or ''}"


@dataclass(slots=True)
class _Staged:
    """One change applied to an alert object, waiting for the alert's id (a new alert
    gets it at the batch's flush) to be audited and published."""

    change: str
    alert: Alert
    payload: dict[str, Any]
    audit: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertCall:
    """A raise or clear waiting for `AlertService.apply`."""

    raise_: bool
    kind: str
    kw: dict[str, Any]


class ChangeSink(Protocol):
    """Where an alert change is written for delivery beyond the console (the outbox): in the
    transaction that makes the change, so a change is delivered if and only if it happened."""

    def stage(self, s: Session | AsyncSession, change: str, payload: dict[str, Any]) -> None: ...


class AlertService:
    def __init__(self, settings: AlertSettings, audit: Audit, bus: EventBus, clock: Clock, metrics: Metrics,
                 outbox: ChangeSink | None = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self.audit = audit
        self.bus = bus
        self.clock = clock
        self._changes = metrics.counter("gateway_alert_changes_total", "Alert lifecycle changes", ("kind", "change"))
        self._open = metrics.gauge("gateway_alerts_ongoing", "Open or acknowledged alerts (sampled at escalation checks)", ("level",))
        # when the next open alert is due to escalate (None: none is), and whether an alert
        # opened, was acknowledged or resolved since that was worked out: the check skips
        # the database until one of the two says there is something to do
        self._next_due: datetime | None = None
        self._stale = True

    def level_for(self, kind: str, requested: str | None = None) -> str:
        level = requested or self.settings.levels.get(kind) or DEFAULT_LEVELS.get(kind, "yellow")
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}")
        return level

    async def raise_alert(
        self,
        kind: str,
        *,
        person_id: str | None = None,
        device_id: str | None = None,
        zone_id: str | None = None,
        level: str | None = None,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        lat: float | None = None,
        lon: float | None = None,
        key: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Open an alert, or update the ongoing one with the same key."""
        kw = {"person_id": person_id, "device_id": device_id, "zone_id": zone_id, "level": level, "message": message,
              "details": details, "lat": lat, "lon": lon, "key": key, "at": at}
        [(change, payload)] = await self.audit.tx_sync(self._apply, [AlertCall(True, kind, kw)])
        await self._emit(change, payload)
        return payload

    async def clear(self, kind: str, *, person_id: str | None = None, device_id: str | None = None, zone_id: str | None = None, key: str | None = None, note: str | None = None, at: datetime | None = None) -> dict[str, Any] | None:
        """The condition has ended: resolve its ongoing alert, if any."""
        kw = {"person_id": person_id, "device_id": device_id, "zone_id": zone_id, "key": key, "note": note, "at": at}
        done = await self.audit.tx_sync(self._apply, [AlertCall(False, kind, kw)])
        for change, payload in done:
            await self._emit(change, payload)
        return done[0][1] if done else None

    async def apply(self, changes: list[AlertCall]) -> None:
        """Raises and clears collected while handling one batch of device input, in one
        transaction: a transaction per alert was most of the cost of a busy tracker batch.
        If that transaction fails, each change is retried on its own, so one bad change
        cannot take the others down."""
        if not changes:
            return
        try:
            done = await self.audit.tx_sync(self._apply, changes)
        except Exception:
            log.exception("a batch of %d alert changes failed; applying them one by one", len(changes))
            for c in changes:
                try:
                    await (self.raise_alert if c.raise_ else self.clear)(c.kind, **c.kw)
                except Exception:
                    log.exception("alert %s %s failed", "raise" if c.raise_ else "clear", c.kind)
            return
        for change, payload in done:
            await self._emit(change, payload)

    def _apply(self, s: Session, changes: list[AlertCall]) -> list[tuple[str, dict[str, Any]]]:
        """Apply the changes in order inside `s` (see `Audit.tx_sync`): a few statements for
        the whole list, not a few per change. Through aiosqlite every round trip is a
        hand-off to the driver's thread, and under load each costs far more than the
        statement itself; on SQLite this usually runs inline on the loop, with none."""
        keys = {c.kw.get("key") or default_key(c.kind, c.kw.get("person_id"), c.kw.get("device_id"), c.kw.get("zone_id")) for c in changes}
        known: dict[str, Alert | None] = dict.fromkeys(keys)
        # the ongoing alerts of every key, in one query; the newest wins
        rows = s.scalars(select(Alert).where(Alert.dedup_key.in_(keys), Alert.state.in_(ONGOING)).order_by(Alert.id)).all()
        known.update((a.dedup_key, a) for a in rows)
        units = self._units_of(s, [c for c in changes if c.raise_ and known.get(c.kw.get("key") or default_key(
            c.kind, c.kw.get("person_id"), c.kw.get("device_id"), c.kw.get("zone_id"))) is None])
        staged = [st for c in changes if (st := (self._stage_raise if c.raise_ else self._stage_clear)(s, known, units, c.kind, **c.kw)) is not None]
        if any(st.alert.id is None for st in staged):
            s.flush()  # ids of the new alerts, for their audit entries: one INSERT for all
        out = []
        for st in staged:
            st.payload["id"] = st.alert.id
            self.audit.append(s, "system", f"alert.{st.change}", f"alert:{st.alert.id}", st.audit)
            self._stage_out(s, st.change, st.payload)
            out.append((st.change, st.payload))
        return out

    @staticmethod
    def _units_of(s: Session, raises: list[AlertCall]) -> dict[tuple[str | None, str | None], str]:
        """The unit each new alert belongs to: its person's, else its device's, else the root
        unit (a full disk). Two queries for the batch, and none when no alert is new."""
        if not raises:
            return {}
        pids = {p for c in raises if (p := c.kw.get("person_id"))}
        dids = {d for c in raises if (d := c.kw.get("device_id"))}
        persons: dict[str | None, str] = {r[0]: r[1] for r in s.execute(select(Person.id, Person.unit_id).where(Person.id.in_(pids)))} if pids else {}
        devices: dict[str | None, str] = {r[0]: r[1] for r in s.execute(select(Device.id, Device.unit_id).where(Device.id.in_(dids)))} if dids else {}
        out = {}
        for c in raises:
            pid, did = c.kw.get("person_id"), c.kw.get("device_id")
            out[(pid, did)] = persons.get(pid) or devices.get(did) or "root"
        return out

    def _stage_out(self, s: Session | AsyncSession, change: str, payload: dict[str, Any]) -> None:
        if self.outbox is not None:
            self.outbox.stage(s, change, payload)

    def _stage_raise(self, s: Session, known: dict[str, Alert | None], units: dict[tuple[str | None, str | None], str], kind: str, *, person_id: str | None = None, device_id: str | None = None,
                     zone_id: str | None = None, level: str | None = None, message: str | None = None, details: dict[str, Any] | None = None,
                     lat: float | None = None, lon: float | None = None, key: str | None = None, at: datetime | None = None) -> _Staged:
        at = at or self.clock.now()
        dedup = key or default_key(kind, person_id, device_id, zone_id)
        alert = known[dedup]
        if alert is None:
            lvl = self.level_for(kind, level)
            alert = Alert(
                kind=kind, level=lvl, original_level=lvl, state="open", dedup_key=dedup,
                person_id=person_id, device_id=device_id, zone_id=zone_id, message=message,
                unit_id=units.get((person_id, device_id), "root"),
                details=details or {}, lat=lat, lon=lon, count=1, opened_at=at, updated_at=at,
                notes=[AlertNote(at=at, author="system", action="opened", text=message)],
            )
            s.add(alert)
            known[dedup] = alert
            change = "opened"
        else:
            alert.count += 1
            alert.updated_at = at
            if message:
                alert.message = message
            if details:
                alert.details = {**(alert.details or {}), **details}
            if lat is not None and lon is not None:
                alert.lat, alert.lon = lat, lon
            change = "updated"
        # the payload as of this change: a later change in the same batch may resolve it
        return _Staged(change, alert, alert_payload(alert), {"kind": kind, "level": alert.level, "count": alert.count})

    def _stage_clear(self, s: Session, known: dict[str, Alert | None], units: dict[tuple[str | None, str | None], str], kind: str, *, person_id: str | None = None, device_id: str | None = None,
                     zone_id: str | None = None, key: str | None = None, note: str | None = None, at: datetime | None = None) -> _Staged | None:
        dedup = key or default_key(kind, person_id, device_id, zone_id)
        alert = known[dedup]
        if alert is None:
            return None
        known[dedup] = None
        self._resolve(alert, "system", note or "condition ended", at or self.clock.now())
        return _Staged("resolved", alert, alert_payload(alert), {"kind": alert.kind, "note": note})

    async def acknowledge(self, alert_id: int, user: str, note: str | None = None, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        async with self.audit.tx() as s:
            alert = await self._get(s, alert_id, reach, user)
            if alert.state != "open":
                raise AlertError(409, f"alert {alert_id} is {alert.state}; only open alerts can be acknowledged")
            now = self.clock.now()
            alert.state, alert.acknowledged_at, alert.acknowledged_by, alert.updated_at = "acknowledged", now, user, now
            alert.notes.append(AlertNote(alert_id=alert.id, at=now, author=user, action="acknowledged", text=note))
            await self.audit.add(s, user, "alert.acknowledged", f"alert:{alert.id}", {"note": note})
            payload = alert_payload(alert)
            self._stage_out(s, "acknowledged", payload)
        await self._emit("acknowledged", payload)
        return payload

    async def resolve(self, alert_id: int, user: str, note: str | None = None, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        async with self.audit.tx() as s:
            alert = await self._get(s, alert_id, reach, user)
            if alert.state == "resolved":
                raise AlertError(409, f"alert {alert_id} is already resolved")
            self._resolve(alert, user, note, self.clock.now())
            await self.audit.add(s, user, "alert.resolved", f"alert:{alert.id}", {"note": note})
            payload = alert_payload(alert)
            self._stage_out(s, "resolved", payload)
        await self._emit("resolved", payload)
        return payload

    # ---- handling ------------------------------------------------------------------------
    # Each step: the alert (404 outside the caller's reach: never a hint that it exists), the
    # order rules (409), the change, a note on the history, the audit entry and the outbox,
    # all in one transaction; then the event.

    async def assign(self, alert_id: int, user: str, unit_id: str, assignee: str | None = None, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        """Assign to a unit inside the caller's reach and, optionally, to an enabled officer of
        that unit or of a unit below it. Reassigning is allowed until the alert is closed."""
        async def step(s: AsyncSession, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
            self._not_closed(alert, "assigned")
            unit = await unit_in_reach(s, unit_id, reach)
            if unit is None:
                raise AlertError(404, f"no unit {unit_id}")
            if assignee is not None:
                u = (await s.scalars(select(User).where(User.username == assignee))).first()
                home = await unit_in_reach(s, u.unit_id, reach) if u is not None else None
                if u is None or home is None:
                    raise AlertError(404, f"no user {assignee}")
                if u.disabled:
                    raise AlertError(422, f"user {assignee} is disabled")
                if not home.path.startswith(unit.path):
                    raise AlertError(422, f"user {assignee} is not a member of unit {unit_id}")
            alert.assigned_unit_id, alert.assignee, alert.assigned_at = unit.id, assignee, now
            return f"{unit.name} ({unit.id})" + (f" → {assignee}" if assignee else ""), {"unit_id": unit.id, "assignee": assignee}

        return await self._handle(alert_id, user, reach, "assigned", step)

    async def assess(self, alert_id: int, user: str, note: str, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        """Record an assessment (研判). Taking an alert up acknowledges it (it stops escalating);
        a later assessment replaces the earlier one, which stays on the history."""
        text_ = self._required(note, "an assessment")

        async def step(s: AsyncSession, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
            self._not_closed(alert, "assessed")
            self._take_up(alert, user, now)
            alert.assessment, alert.assessed_at, alert.assessed_by = text_, now, user
            return text_, {"note": text_}

        return await self._handle(alert_id, user, reach, "assessed", step)

    async def dispose(self, alert_id: int, user: str, disposal: str, note: str | None = None, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        """Record how the alert was disposed of (处置), from `alerts.disposals`; it must have
        been assessed first."""
        if disposal not in self.disposal_ids():
            raise AlertError(422, f"unknown disposal {disposal!r}; one of: {', '.join(self.disposal_ids())}")
        note = (note or "").strip() or None

        async def step(s: AsyncSession, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
            self._not_closed(alert, "disposed of")
            if alert.assessed_at is None:
                raise AlertError(409, f"alert {alert_id} has not been assessed; assess it before disposing of it")
            self._take_up(alert, user, now)
            alert.disposal, alert.disposal_note, alert.disposed_at, alert.disposed_by = disposal, note, now, user
            return disposal + (f": {note}" if note else ""), {"disposal": disposal, "note": note}

        return await self._handle(alert_id, user, reach, "disposed", step)

    async def feedback(self, alert_id: int, user: str, text_: str, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        """The feedback (反馈) on what the disposal achieved: it closes the alert."""
        fb = self._required(text_, "feedback")

        async def step(s: AsyncSession, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
            self._not_closed(alert, "fed back")
            if alert.disposed_at is None:
                raise AlertError(409, f"alert {alert_id} has no disposal yet; dispose of it before feeding back")
            alert.feedback, alert.fed_back_at, alert.fed_back_by = fb, now, user
            alert.state, alert.resolved_at, alert.resolved_by = "resolved", now, user
            return fb, {"note": fb}

        return await self._handle(alert_id, user, reach, "fed_back", step)

    async def set_level(self, alert_id: int, user: str, level: str, reason: str, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        """Change the level by hand; the reason is required. `original_level` keeps the level
        the alert opened with; escalation counts again from this change."""
        if level not in LEVELS:
            raise AlertError(422, f"unknown level {level!r}")
        why = self._required(reason, "a reason")

        async def step(s: AsyncSession, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
            self._not_closed(alert, "changed in level")
            if alert.level == level:
                raise AlertError(409, f"alert {alert_id} is already {level}")
            old, alert.level, alert.escalated_at = alert.level, level, now
            return f"{old} → {level}: {why}", {"from": old, "to": level, "reason": why}

        return await self._handle(alert_id, user, reach, "level", step)

    async def note(self, alert_id: int, user: str, text_: str, *, reach: str = ROOT_PATH) -> dict[str, Any]:
        """A note on the history: any time, in any state (a closed alert included)."""
        body = self._required(text_, "a note")

        async def step(s: AsyncSession, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
            return body, {"note": body}

        return await self._handle(alert_id, user, reach, "note", step)

    def disposal_ids(self) -> list[str]:
        return [d.id for d in self.settings.disposals]

    async def _handle(self, alert_id: int, user: str, reach: str, action: str, step: Any) -> dict[str, Any]:
        change = "noted" if action == "note" else "level_changed" if action == "level" else action
        async with self.audit.tx() as s:
            alert = await self._get(s, alert_id, reach, user)
            now = self.clock.now()
            text_, details = await step(s, alert, now)
            alert.updated_at = now
            alert.notes.append(AlertNote(alert_id=alert.id, at=now, author=user, action=action, text=text_))
            await self.audit.add(s, user, f"alert.{change}", f"alert:{alert.id}", details)
            payload = alert_payload(alert)
            self._stage_out(s, change, payload)
        await self._emit(change, payload)
        return payload

    @staticmethod
    def _not_closed(alert: Alert, what: str) -> None:
        if alert.state == "resolved":
            raise AlertError(409, f"alert {alert.id} is resolved; it can no longer be {what}, only noted")

    @staticmethod
    def _required(text_: str | None, what: str) -> str:
        value = (text_ or "").strip()
        if not value:
            raise AlertError(422, f"{what} is required")
        return value

    @staticmethod
    def _take_up(alert: Alert, user: str, now: datetime) -> None:
        """Handling an open alert acknowledges it: someone has it in hand."""
        if alert.state == "open":
            alert.state, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", now, user

    async def escalate_due(self) -> int:
        """Raise unacknowledged alerts one level once they wait past their level's limit."""
        now = self.clock.now()
        changed: list[dict[str, Any]] = []
        next_due: datetime | None = None
        self._stale = False  # before the query: a change during it marks it stale again
        async with self.audit.tx() as s:
            alerts = (await s.scalars(select(Alert).where(Alert.state == "open"))).all()
            counts = dict.fromkeys(LEVELS, 0)
            for a in alerts:
                counts[a.level] += 1
                rule = self._rule(a.level)
                if rule is None:
                    continue
                if now >= (a.escalated_at or a.opened_at) + timedelta(seconds=rule.after_s):
                    old = a.level
                    a.level = LEVELS[LEVELS.index(old) + 1]
                    a.escalated_at = a.updated_at = now
                    text_ = f"unacknowledged for {rule.after_s} s: {old} → {a.level}"
                    a.notes.append(AlertNote(alert_id=a.id, at=now, author="system", action="escalated", text=text_))
                    await self.audit.add(s, "system", "alert.escalated", f"alert:{a.id}", {"from": old, "to": a.level})
                    changed.append(alert_payload(a))
                    self._stage_out(s, "escalated", changed[-1])
                    rule = self._rule(a.level)  # the new level's, for when it is due next
                    if rule is None:
                        continue
                due = (a.escalated_at or a.opened_at) + timedelta(seconds=rule.after_s)
                next_due = due if next_due is None else min(next_due, due)
        self._next_due = next_due
        for level, n in counts.items():
            self._open.labels(level).set(n)
        for payload in changed:
            await self._emit("escalated", payload)
        return len(changed)

    def _rule(self, level: str) -> EscalationRule | None:
        """How long an alert of `level` may wait unacknowledged; None: it does not escalate."""
        return None if level == "red" else self.settings.escalate.get(level)  # type: ignore[call-overload]

    def changed_elsewhere(self) -> None:
        """An alert changed on another node: what is due must be worked out again."""
        self._stale = True

    async def run_escalation(self, interval_s: float = 5.0) -> None:
        """Runs on one node of a cluster (a singleton lease), which may not be the one where
        the alerts change: its first check reads the database (one interval after it
        starts: not in the middle of the start-up it is part of)."""
        self._stale = True
        while True:
            await asyncio.sleep(interval_s)
            try:
                if self._stale or (self._next_due is not None and self.clock.now() >= self._next_due):
                    await self.escalate_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._stale = True  # try again next time
                log.exception("escalation check failed")

    def _resolve(self, alert: Alert, user: str, note: str | None, at: datetime) -> None:
        alert.state, alert.resolved_at, alert.resolved_by, alert.updated_at = "resolved", at, user, at
        alert.notes.append(AlertNote(alert_id=alert.id, at=at, author=user, action="resolved", text=note))

    async def _get(self, s: AsyncSession, alert_id: int, reach: str = ROOT_PATH, user: str | None = None) -> Alert:
        alert = (await s.scalars(select(Alert).where(Alert.id == alert_id, alert_in_reach(reach, user)))).first()
        if alert is None:
            raise AlertError(404, f"no alert {alert_id}")
        return alert

    async def _emit(self, change: str, payload: dict[str, Any]) -> None:
        if change not in ("updated", "noted", "assigned"):
            self._stale = True  # what is due to escalate may have changed (state, level)
        self._changes.labels(payload["kind"], change).inc()
        await self.bus.publish(AlertChanged(change=change, alert=payload))  # type: ignore[arg-type]
