"""Alerts: the list (filters), one alert with its history, the lifecycle (ack, resolve) and
handling (assign, assess, dispose, feedback, level, notes), and a CSV export for a period.

Every route is limited to the caller's reach (`alert_in_reach`: the alert's unit or the unit
it is assigned to lies inside the caller's unit); an alert outside it is a 404, as if it did
not exist."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select

from drivers.gps.geo import wgs84_to_gcj02
from gateway.alerts import AlertError, AlertPublic
from gateway.alerts.public import AlertPosition
from gateway.alerts.service import alert_in_reach
from gateway.api.deps import CoreDep, CurrentUser, Principal, Require, RowId, SessionDep, UtcTime
from gateway.clock import as_utc
from gateway.core import Core
from gateway.db.models import Alert
from gateway.units import unit_in_reach

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

Level = Literal["red", "orange", "yellow", "blue"]
StateFilter = Literal["open", "acknowledged", "resolved", "ongoing"]
EXPORT_MAX_ROWS = 100_000
EXPORT_BATCH = 1000


class NoteIn(BaseModel):
    note: str | None = Field(None, max_length=2000)


class AssignIn(BaseModel):
    unit_id: str = Field(min_length=1, max_length=64)
    assignee: str | None = Field(None, min_length=1, max_length=64, description="A user of that unit (or a unit below it); none: the unit as a whole.")


class AssessIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="The assessment (研判).")


class DisposeIn(BaseModel):
    disposal: str = Field(min_length=1, max_length=32, description="One of GET /api/alerts/disposals.")
    note: str | None = Field(None, max_length=4000)


class FeedbackIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="The feedback (反馈); it closes the alert.")


class LevelIn(BaseModel):
    level: Level
    reason: str = Field(min_length=1, max_length=2000)


class TextIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class DisposalPublic(BaseModel):
    id: str
    labels: dict[str, str] = Field(description="The label per console language (zh-CN, en).")


class Filters:
    """The query filters shared by the list and the export."""

    def __init__(
        self,
        state: StateFilter | None = None,
        level: Level | None = None,
        kind: str | None = Query(None, max_length=32),
        person_id: str | None = Query(None, max_length=64),
        device_id: str | None = Query(None, max_length=64),
        unit_id: str | None = Query(None, max_length=64, description="That unit and the units below it (its own alerts and those assigned to it)."),
        assignee: str | None = Query(None, max_length=64),
        since: UtcTime | None = Query(None, description="Opened at or after."),
        until: UtcTime | None = Query(None, description="Opened before."),
        updated_since: UtcTime | None = Query(None, description="Changed at or after (what a console catching up needs)."),
    ) -> None:
        self.state, self.level, self.kind, self.person_id, self.device_id = state, level, kind, person_id, device_id
        self.unit_id, self.assignee, self.since, self.until, self.updated_since = unit_id, assignee, since, until, updated_since

    async def apply(self, s: Any, user: Principal, stmt: Select[Any]) -> Select[Any]:
        stmt = stmt.where(alert_in_reach(user.reach, user.username))
        if self.unit_id is not None:
            unit = await unit_in_reach(s, self.unit_id, user.reach)
            if unit is None:
                raise HTTPException(404, f"no unit {self.unit_id}")
            stmt = stmt.where(alert_in_reach(unit.path))
        if self.state == "ongoing":
            stmt = stmt.where(Alert.state.in_(("open", "acknowledged")))
        elif self.state:
            stmt = stmt.where(Alert.state == self.state)
        for column, value in ((Alert.level, self.level), (Alert.kind, self.kind), (Alert.person_id, self.person_id),
                              (Alert.device_id, self.device_id), (Alert.assignee, self.assignee)):
            if value:
                stmt = stmt.where(column == value)
        if self.since:
            stmt = stmt.where(Alert.opened_at >= self.since)
        if self.until:
            stmt = stmt.where(Alert.opened_at < self.until)
        if self.updated_since:
            stmt = stmt.where(Alert.updated_at >= self.updated_since)
        return stmt

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in vars(self).items() if v is not None}


FiltersDep = Annotated[Filters, Depends()]


class ShownPosition(AlertPosition):
    display: tuple[float, float] | None = Field(
        None, description="[lat, lon] where the console draws it on GCJ-02 tiles (console.tile_datum); null with WGS-84 tiles.")


class AlertListed(AlertPublic):
    """An alert as the list gives it: its place also in the console's tile datum."""

    position: ShownPosition | None  # type: ignore[assignment]


@router.get("", response_model=list[AlertListed])
async def list_alerts(user: CurrentUser, s: SessionDep, core: CoreDep, f: FiltersDep, limit: int = Query(200, ge=1, le=2000)) -> list[AlertListed]:
    stmt = await f.apply(s, user, select(Alert).order_by(Alert.updated_at.desc(), Alert.id.desc()).limit(limit))
    gcj = core.config.console.tile_datum == "gcj02"
    out = []
    for a in (await s.scalars(stmt)).all():
        pub = AlertPublic.of(a)
        pos = pub.position
        shown = ShownPosition(lat=pos.lat, lon=pos.lon, display=wgs84_to_gcj02(pos.lat, pos.lon) if gcj else None) if pos else None
        out.append(AlertListed.model_construct(**{**dict(pub), "position": shown}))
    return out


class AlertCounts(BaseModel):
    total: int
    by_level: dict[str, int] = Field(description="red, orange, yellow, blue (each present, 0 when none).")


@router.get("/counts", response_model=AlertCounts, summary="How many alerts match the filters, by level (the menu badge: ?state=open)")
async def count_alerts(user: CurrentUser, s: SessionDep, f: FiltersDep) -> AlertCounts:
    stmt = await f.apply(s, user, cast("Select[Any]", select(Alert.level, func.count()).group_by(Alert.level)))
    got = {level: n for level, n in (await s.execute(stmt)).all()}
    by_level = {lv: got.get(lv, 0) for lv in ("red", "orange", "yellow", "blue")}
    return AlertCounts(total=sum(got.values()), by_level=by_level)


@router.get("/disposals", response_model=list[DisposalPublic])
async def disposals(_: CurrentUser, core: CoreDep) -> list[DisposalPublic]:
    return [DisposalPublic(id=d.id, labels={"zh-CN": d.zh_cn, "en": d.en}) for d in core.alerts.settings.disposals]


# One row per alert, the handling fields included; the history stays in the API (notes).
CSV_COLUMNS = (
    "id", "kind", "level", "original_level", "state", "unit_id", "person_id", "device_id", "zone_id", "message",
    "opened_at", "updated_at", "count", "acknowledged_at", "acknowledged_by", "escalated_at",
    "assigned_unit_id", "assignee", "assigned_at", "assessment", "assessed_at", "assessed_by",
    "disposal", "disposal_note", "disposed_at", "disposed_by", "feedback", "fed_back_at", "fed_back_by",
    "resolved_at", "resolved_by",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A cell as text; one a spreadsheet would read as a formula (= + - @, tab, CR) gets a
    leading ' (OWASP's CSV injection advice): an alert message is partly device input."""
    if value is None:
        return ""
    text_ = as_utc(value).isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text_ if text_.startswith(_FORMULA) else text_


def _csv_line(values: Any) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()


@router.get("/export.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": f"UTF-8 CSV with a BOM; at most {EXPORT_MAX_ROWS} rows (`X-Export-Truncated: true` and a last line say so when cut)."}})
async def export_csv(user: Annotated[Principal, Require("alerts.export")], core: CoreDep, s: SessionDep,
                     f: FiltersDep) -> StreamingResponse:
    base = await f.apply(s, user, select(*(getattr(Alert, c) for c in CSV_COLUMNS)))
    # counted first, so the header can tell a cut export before the body starts
    total = await s.scalar(select(func.count()).select_from(base.subquery())) or 0
    truncated = total > EXPORT_MAX_ROWS
    async with core.audit.tx() as tx:
        await core.audit.add(tx, user.username, "alerts.exported", None, {"filters": f.as_dict(), "rows": min(total, EXPORT_MAX_ROWS), "truncated": truncated})
    stamp = core.clock.now().strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="alerts-{stamp}.csv"', "X-Export-Rows": str(min(total, EXPORT_MAX_ROWS)),
               "X-Export-Truncated": "true" if truncated else "false", "Cache-Control": "no-store"}
    return StreamingResponse(_rows(core, base, truncated), media_type="text/csv; charset=utf-8", headers=headers)


async def _rows(core: Core, base: Select[Any], truncated: bool) -> AsyncIterator[bytes]:
    """Batches by id (keyset), each in a short session of its own: no transaction is held
    open while a slow client reads."""
    yield ("\ufeff" + _csv_line(CSV_COLUMNS)).encode()
    sent, last = 0, 0
    while sent < EXPORT_MAX_ROWS:
        async with core.db.session() as s:
            rows = (await s.execute(base.where(Alert.id > last).order_by(Alert.id).limit(min(EXPORT_BATCH, EXPORT_MAX_ROWS - sent)))).all()
        if not rows:
            break
        yield "".join(_csv_line([csv_cell(v) for v in row]) for row in rows).encode()
        sent += len(rows)
        last = rows[-1][0]
    if truncated:
        yield _csv_line([f"# truncated: the first {EXPORT_MAX_ROWS} rows only; narrow the period or the filters"]).encode()


@router.get("/{alert_id}", response_model=AlertPublic)
async def get_alert(alert_id: RowId, user: CurrentUser, s: SessionDep) -> AlertPublic:
    a = (await s.scalars(select(Alert).where(Alert.id == alert_id, alert_in_reach(user.reach, user.username)))).first()
    if a is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return AlertPublic.of(a)


async def _answer(call: Awaitable[dict[str, Any]]) -> AlertPublic:
    try:
        return AlertPublic.model_validate(await call)
    except AlertError as e:
        raise HTTPException(e.status, str(e)) from None


@router.post("/{alert_id}/ack", response_model=AlertPublic)
async def acknowledge(alert_id: RowId, user: Annotated[Principal, Require("alerts.ack")], core: CoreDep, body: NoteIn | None = None) -> AlertPublic:
    return await _answer(core.alerts.acknowledge(alert_id, user.username, body.note if body else None, reach=user.reach))


@router.post("/{alert_id}/resolve", response_model=AlertPublic)
async def resolve(alert_id: RowId, user: Annotated[Principal, Require("alerts.resolve")], core: CoreDep, body: NoteIn | None = None) -> AlertPublic:
    return await _answer(core.alerts.resolve(alert_id, user.username, body.note if body else None, reach=user.reach))


@router.post("/{alert_id}/assign", response_model=AlertPublic)
async def assign(alert_id: RowId, body: AssignIn, user: Annotated[Principal, Require("alerts.assign")], core: CoreDep) -> AlertPublic:
    return await _answer(core.alerts.assign(alert_id, user.username, body.unit_id, body.assignee, reach=user.reach))


@router.post("/{alert_id}/assess", response_model=AlertPublic)
async def assess(alert_id: RowId, body: AssessIn, user: Annotated[Principal, Require("alerts.handle")], core: CoreDep) -> AlertPublic:
    return await _answer(core.alerts.assess(alert_id, user.username, body.note, reach=user.reach))


@router.post("/{alert_id}/dispose", response_model=AlertPublic)
async def dispose(alert_id: RowId, body: DisposeIn, user: Annotated[Principal, Require("alerts.handle")], core: CoreDep) -> AlertPublic:
    return await _answer(core.alerts.dispose(alert_id, user.username, body.disposal, body.note, reach=user.reach))


@router.post("/{alert_id}/feedback", response_model=AlertPublic)
async def feedback(alert_id: RowId, body: FeedbackIn, user: Annotated[Principal, Require("alerts.handle")], core: CoreDep) -> AlertPublic:
    return await _answer(core.alerts.feedback(alert_id, user.username, body.note, reach=user.reach))


@router.post("/{alert_id}/level", response_model=AlertPublic)
async def set_level(alert_id: RowId, body: LevelIn, user: Annotated[Principal, Require("alerts.handle")], core: CoreDep) -> AlertPublic:
    return await _answer(core.alerts.set_level(alert_id, user.username, body.level, body.reason, reach=user.reach))


@router.post("/{alert_id}/notes", response_model=AlertPublic)
async def add_note(alert_id: RowId, body: TextIn, user: Annotated[Principal, Require("alerts.note")], core: CoreDep) -> AlertPublic:
    return await _answer(core.alerts.note(alert_id, user.username, body.text, reach=user.reach))


