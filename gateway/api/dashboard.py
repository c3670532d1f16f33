"""The command-centre dashboard: what monitors look at first, within their reach. One
request for the figures (a few aggregate queries; no list here is unbounded), refreshed by
the console when a push says something changed."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func, select

from gateway.alerts import AlertPublic
from gateway.alerts.service import alert_in_reach
from gateway.api.deps import CoreDep, CurrentUser, SessionDep
from gateway.api.scope import owned
from gateway.db.models import Alert, CheckInRow, Device, Person, Proceeding

router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])
LEVELS = ("red", "orange", "yellow", "blue")
DAYS = 30
OFFLINE_LISTED = 50


class DeviceCounts(BaseModel):
    online: int = 0
    offline: int = 0
    unknown: int = 0


class OfflineDevice(BaseModel):
    id: str
    kind: str
    name: str | None
    last_seen_at: datetime | None


class DayCounts(BaseModel):
    day: date
    red: int = 0
    orange: int = 0
    yellow: int = 0
    blue: int = 0


class CheckinsToday(BaseModel):
    due: int = Field(description="Scheduled check-ins of today (the kiosks' schedules).")
    done: int = Field(description="Of those, the ones with an accepted check-in today.")
    accepted: int
    rejected: int


class Dashboard(BaseModel):
    persons: int = Field(description="Persons under supervision (active).")
    persons_by_category: dict[str, int]
    persons_by_level: dict[str, int] = Field(description="strict, ordinary, lenient, none.")
    open_alerts: dict[str, int] = Field(description="Open or acknowledged alerts by level.")
    oldest_unacknowledged: AlertPublic | None
    devices: dict[str, DeviceCounts] = Field(description="By kind.")
    offline_devices: list[OfflineDevice] = Field(description=f"Enabled devices not online, longest silent first (at most {OFFLINE_LISTED}).")
    checkins_today: CheckinsToday
    proceedings_running: int
    proceedings_today: int
    alerts_per_day: list[DayCounts] = Field(description=f"Alerts opened per day over {DAYS} days, by level (the gateway's time zone).")


@router.get("", response_model=Dashboard)
async def dashboard(user: CurrentUser, s: SessionDep, core: CoreDep) -> Dashboard:
    tz = ZoneInfo(core.config.gateway.timezone)
    now = core.clock.now()
    today = now.astimezone(tz).date()
    midnight = datetime.combine(today, datetime.min.time(), tz)

    active = (Person.active.is_(True), owned(Person.unit_id, user))
    by_cat = dict((await s.execute(select(Person.category, func.count()).where(*active).group_by(Person.category))).all())
    by_level = dict((await s.execute(select(Person.supervision_level, func.count()).where(*active).group_by(Person.supervision_level))).all())

    visible = alert_in_reach(user.reach, user.username)
    ongoing = Alert.state.in_(("open", "acknowledged"))
    open_alerts = dict((await s.execute(select(Alert.level, func.count()).where(ongoing, visible).group_by(Alert.level))).all())
    oldest = (await s.scalars(select(Alert).where(Alert.state == "open", visible).order_by(Alert.opened_at).limit(1))).first()

    devices: dict[str, DeviceCounts] = defaultdict(DeviceCounts)
    mine = (Device.enabled.is_(True), owned(Device.unit_id, user))
    for kind, state, n in (await s.execute(select(Device.kind, Device.state, func.count()).where(*mine).group_by(Device.kind, Device.state))).all():
        setattr(devices[kind], state if state in ("online", "offline") else "unknown", getattr(devices[kind], state if state in ("online", "offline") else "unknown") + n)
    offline = (await s.scalars(select(Device).where(*mine, Device.state != "online")
                               .order_by(Device.last_seen_at.is_(None).desc(), Device.last_seen_at).limit(OFFLINE_LISTED))).all()

    checkins = dict((await s.execute(select(CheckInRow.result, func.count()).where(CheckInRow.at >= midnight, owned(CheckInRow.unit_id, user))
                                     .group_by(CheckInRow.result))).all())
    due = _due_today(list((await s.scalars(select(Device).where(*mine, Device.kind == "kiosk"))).all()), today)
    done_pairs = set((await s.execute(select(CheckInRow.person_id, CheckInRow.kiosk_id).where(
        CheckInRow.at >= midnight, CheckInRow.result == "accepted", owned(CheckInRow.unit_id, user)))).all()) if due else set()

    scoped = owned(Proceeding.unit_id, user)
    running = await s.scalar(select(func.count()).select_from(Proceeding).where(Proceeding.state == "recording", scoped)) or 0
    started_today = await s.scalar(select(func.count()).select_from(Proceeding).where(Proceeding.started_at >= midnight, scoped)) or 0

    # Counted by the database: one row per level, one sum per local day. The day boundaries
    # are the time zone's midnights, computed here (daylight saving included), so the query
    # is the same on SQLite and PostgreSQL and no alert row travels.
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    bounds = [datetime.combine(d, time(0), tzinfo=tz) for d in [*days, today + timedelta(days=1)]]
    sums = [func.sum(case((and_(Alert.opened_at >= bounds[i], Alert.opened_at < bounds[i + 1]), 1), else_=0)) for i in range(DAYS)]
    per_day = {d: DayCounts(day=d) for d in days}
    for level, *counts in (await s.execute(select(Alert.level, *sums).where(Alert.opened_at >= bounds[0], visible).group_by(Alert.level))).all():
        if level in LEVELS:
            for d, n in zip(days, counts, strict=True):
                setattr(per_day[d], level, int(n or 0))

    return Dashboard(
        persons=sum(by_cat.values()), persons_by_category={(k or ""): v for k, v in by_cat.items()},
        persons_by_level={(k or "none"): v for k, v in by_level.items()},
        open_alerts={lv: open_alerts.get(lv, 0) for lv in LEVELS},
        oldest_unacknowledged=AlertPublic.of(oldest) if oldest is not None else None,
        devices=dict(devices),
        offline_devices=[OfflineDevice(id=d.id, kind=d.kind, name=d.name, last_seen_at=d.last_seen_at) for d in offline],
        checkins_today=CheckinsToday(due=len(due), done=len(due & done_pairs), accepted=checkins.get("accepted", 0), rejected=checkins.get("rejected", 0)),
        proceedings_running=running, proceedings_today=started_today,
        alerts_per_day=[per_day[k] for k in sorted(per_day)],
    )


def _due_today(kiosks: list[Device], today: date) -> set[tuple[str, str]]:
    """(person, kiosk) of every check-in scheduled today."""
    out: set[tuple[str, str]] = set()
    for k in kiosks:
        for sc in (k.settings or {}).get("checkins") or []:
            days: list[Any] = sc.get("days") or [1, 2, 3, 4, 5, 6, 7]
            if today.isoweekday() in days and sc.get("person_id"):
                out.add((str(sc["person_id"]), k.id))
    return out
