"""A person's timeline: one merged list, newest first, of their alerts (with their handling),
check-ins, faces seen, proceedings, body-cam evidence, and their positions summarised as
stays and trips (gateway/stays.py), in pages.

Paging is by keyset: items are ordered by (time, kind, id) descending and `next` is an opaque
cursor naming the last item of the page, so an item added meanwhile never shifts a page.
Each source is read with the page's bound (`limit` + 1 rows newer than the cursor). Stays and
trips are summarised from at most `MAX_FIXES` positions per page, read back from the
boundary the cursor carries (the first fix of the oldest segment already shown): when the
page's fixes are capped the oldest segment may have begun earlier, so it is left for the next
page (with the items older than the oldest complete segment), unless it is the only one:
then it is shown with `partial` set, and its earlier part follows on the next page. The
fixes of all the person's trackers are summarised together, in fix time order.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, func, or_, select

from gateway.alerts import AlertPublic
from gateway.api.deps import MAX_ROW_ID, CurrentUser, Principal, SessionDep, UtcTime
from gateway.api.scope import get_owned, owned
from gateway.auth.roles import allowed
from gateway.clock import as_utc
from gateway.db.models import (
    Alert,
    CheckInRow,
    Evidence,
    FaceMatch,
    KioskEventRow,
    Person,
    PositionRow,
    Proceeding,
)
from gateway.stays import Point, Stay, Trip, summarise

router = APIRouter(prefix="/api/persons", tags=["persons"])

# also the order of items of the same time: an alert first, a trip last
KINDS = ("alert", "checkin", "face", "proceeding", "evidence", "kiosk", "stay", "trip")
RANK = {k: len(KINDS) - n for n, k in enumerate(KINDS)}  # items are ordered by (time, rank, id) descending
KIND_OF = {r: k for k, r in RANK.items()}
MAX_FIXES = 5000  # positions read per page for stays and trips
MAX_ROUNDS = 20  # pages read at most for one answer when they hold nothing wanted


class _Item(BaseModel):
    at: datetime = Field(description="When it happened: an alert's opening, a stay's or trip's start.")
    id: int = Field(description="The row's id in its kind (for a stay or trip: its first position's).")


class AlertItem(_Item):
    kind: Literal["alert"] = "alert"
    alert: AlertPublic = Field(description="The alert with its handling: state, assignee, assessment, disposal, feedback and notes.")


class CheckinItem(_Item):
    kind: Literal["checkin"] = "checkin"
    kiosk_id: str
    result: str
    distance: float | None
    threshold: float | None
    reason: str | None
    position: dict[str, Any] | None = Field(None, description="A remote check-in's position and its verdict against the person's zones.")


class FaceItem(_Item):
    """The person seen by a camera (a face match)."""

    kind: Literal["face"] = "face"
    camera_id: str
    distance: float | None


class ProceedingItem(_Item):
    kind: Literal["proceeding"] = "proceeding"
    proceeding_kind: str = Field(description="reception, announcement, warning, talk, ...")
    case_ref: str | None
    state: str
    stopped_at: datetime | None
    camera_ids: list[str] = Field(description="Empty for a remote video session (its recording is the session's file).")
    verified_minutes: float | None = Field(None, description="A remote session: minutes the person was verified present by face.")


class EvidenceItem(_Item):
    """A body-cam upload bound to the person. `at`: when it was recorded, else received."""

    kind: Literal["evidence"] = "evidence"
    device_id: str | None
    filename: str | None
    officer: str | None
    case_ref: str | None
    size: int
    state: str
    recorded_at: datetime | None
    received_at: datetime


class KioskItem(_Item):
    """What the person did at a kiosk terminal: a written report, a leave request, a call for
    the duty officer, an SOS (`event`), with what they entered (`payload`, shown as text)."""

    kind: Literal["kiosk"] = "kiosk"
    event: str = Field(description="report, leave_request, call_officer, sos, ...")
    kiosk_id: str
    payload: dict[str, Any]


class StayItem(_Item):
    """Fixes within about 100 m for 5 minutes or more."""

    kind: Literal["stay"] = "stay"
    end: datetime
    lat: float = Field(description="Centre, WGS-84.")
    lon: float
    radius_m: float = Field(description="The farthest fix from the centre.")
    fixes: int
    partial: bool = Field(False, description="It began before the fixes read for this page: its earlier part is on the next page.")


class TripItem(_Item):
    """The way between two stays: from leaving the one to reaching the next."""

    kind: Literal["trip"] = "trip"
    end: datetime
    distance_m: float
    fixes: int = Field(description="Its own fixes (not the stays' at either end).")
    max_speed_mps: float | None = Field(description="The fastest reported speed, else the fastest leg.")
    partial: bool = False


TimelineItem = Annotated[AlertItem | CheckinItem | FaceItem | ProceedingItem | EvidenceItem | KioskItem | StayItem | TripItem, Field(discriminator="kind")]


class Timeline(BaseModel):
    person_id: str
    items: list[TimelineItem] = Field(description="Newest first.")
    next: str | None = Field(description="Pass as `before` for the next (older) page; null on the last.")
    fixes_read: int = Field(description="Positions read for this page's stays and trips.")
    fixes_capped: bool = Field(description=f"True when there were more than {MAX_FIXES}: the rest are summarised on the next pages.")


Key = tuple[datetime, int, int]  # at, kind rank, id


@dataclass(frozen=True)
class Cursor:
    key: Key
    fixes_before: tuple[datetime, int] | None  # positions before this (fix time, id) are still to summarise

    def encode(self) -> str:
        at, rank, rid = self.key
        raw = {"t": at.isoformat(), "k": KIND_OF[rank], "i": rid,
               "b": [self.fixes_before[0].isoformat(), self.fixes_before[1]] if self.fixes_before else None}
        return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            key = (as_utc(datetime.fromisoformat(raw["t"])), RANK[raw["k"]], int(raw["i"]))
            b = raw["b"]
            before = (as_utc(datetime.fromisoformat(b[0])), int(b[1])) if b is not None else None
            if not 0 <= key[2] <= MAX_ROW_ID or (before is not None and not 0 <= before[1] <= MAX_ROW_ID):
                raise ValueError("id out of range")
        except (ValueError, KeyError, TypeError, IndexError, binascii.Error, json.JSONDecodeError):
            raise HTTPException(422, "before: not a cursor from this timeline's `next`") from None
        return cls(key, before)


def _older(at: Any, rid: Any, rank: int, c: Key | None) -> list[ColumnElement[bool]]:
    """Rows of a source of kind `rank` that come after the cursor, newest first."""
    if c is None:
        return []
    cat, crank, cid = c
    if rank < crank:
        return [at <= cat]
    if rank > crank:
        return [at < cat]
    return [or_(at < cat, and_(at == cat, rid < cid))]


@dataclass(frozen=True)
class Source:
    kind: str
    model: Any
    at: Any  # column or expression
    person: Callable[[str], ColumnElement[bool]]
    item: Callable[[Any], Any]


def _verified(r: Proceeding) -> float | None:
    """A remote session's verified minutes of its person (streams/calls.py attendance)."""
    return next((a.get("verified_minutes") for a in r.attendance or [] if a.get("person_id") == r.person_id and "verified_minutes" in a), None)


def _evidence_at(e: Evidence) -> datetime:
    return e.recorded_at or e.received_at


SOURCES = (
    Source("alert", Alert, Alert.opened_at, lambda p: Alert.person_id == p, lambda a: AlertItem(at=a.opened_at, id=a.id, alert=AlertPublic.of(a))),
    Source("checkin", CheckInRow, CheckInRow.at, lambda p: CheckInRow.person_id == p,
           lambda c: CheckinItem(at=c.at, id=c.id, kiosk_id=c.kiosk_id, result=c.result, distance=c.distance, threshold=c.threshold, reason=c.reason,
                                     position=c.position)),
    Source("face", FaceMatch, FaceMatch.at, lambda p: FaceMatch.person_id == p, lambda m: FaceItem(at=m.at, id=m.id, camera_id=m.camera_id, distance=m.distance)),
    Source("proceeding", Proceeding, Proceeding.started_at, lambda p: Proceeding.person_id == p,
           lambda r: ProceedingItem(at=r.started_at, id=r.id, proceeding_kind=r.kind, case_ref=r.case_ref, state=r.state, stopped_at=r.stopped_at,
                                    camera_ids=[str(c) for c in r.camera_ids or []], verified_minutes=_verified(r))),
    Source("evidence", Evidence, func.coalesce(Evidence.recorded_at, Evidence.received_at), lambda p: and_(Evidence.person_id == p, Evidence.kind == "upload"),
           lambda e: EvidenceItem(at=_evidence_at(e), id=e.id, device_id=e.device_id, filename=e.filename, officer=e.officer, case_ref=e.case_ref,
                                  size=e.size, state=e.state, recorded_at=e.recorded_at, received_at=e.received_at)),
    Source("kiosk", KioskEventRow, KioskEventRow.received_at, lambda p: KioskEventRow.person_id == p,
           lambda k: KioskItem(at=k.received_at, id=k.id, event=k.kind, kiosk_id=k.kiosk_id, payload=k.payload or {})),
)


def _key(item: Any) -> Key:
    return (item.at, RANK[item.kind], item.id)


def _parse_kinds(text: str | None, user: Principal) -> set[str]:
    if text is None:
        kinds = set(KINDS)
        if not allowed(user.role, "evidence.read"):
            kinds.discard("evidence")
        return kinds
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        raise HTTPException(422, f"kinds: unknown {', '.join(unknown) or '(none given)'}; one or more of {', '.join(KINDS)}")
    if "evidence" in kinds and not allowed(user.role, "evidence.read"):
        raise HTTPException(403, "evidence needs the evidence.read permission")
    return kinds


async def _rows(s: Any, src: Source, person_id: str, user: Principal, since: datetime | None, until: datetime | None,
                cursor: Key | None, limit: int) -> list[Any]:
    conds = [src.person(person_id), *_older(src.at, src.model.id, RANK[src.kind], cursor)]
    if since is not None:
        conds.append(src.at >= since)
    if until is not None:
        conds.append(src.at <= until)
    if src.model is Evidence:
        conds.append(owned(Evidence.unit_id, user))
    stmt = select(src.model).where(*conds).order_by(src.at.desc(), src.model.id.desc()).limit(limit)
    return [src.item(r) for r in (await s.scalars(stmt)).all()]


@dataclass
class Segments:
    items: list[StayItem | TripItem]  # complete ones (and a lone partial), oldest first
    starts: list[tuple[datetime, int]]  # each one's first own fix (fix time, id), for the next cursor
    read: int
    capped: bool


async def _segments(s: Any, person_id: str, since: datetime | None, until: datetime | None, before: tuple[datetime, int] | None) -> Segments:
    conds: list[ColumnElement[bool]] = [PositionRow.person_id == person_id]
    if since is not None:
        conds.append(PositionRow.fix_time >= since)
    if before is not None:
        bt, bid = before
        conds.append(or_(PositionRow.fix_time < bt, and_(PositionRow.fix_time == bt, PositionRow.id < bid)))
    elif until is not None:
        conds.append(PositionRow.fix_time <= until)
    cols = (PositionRow.id, PositionRow.fix_time, PositionRow.lat, PositionRow.lon, PositionRow.speed_mps)
    rows = list((await s.execute(select(*cols).where(*conds).order_by(PositionRow.fix_time.desc(), PositionRow.id.desc()).limit(MAX_FIXES + 1))).all())
    capped = len(rows) > MAX_FIXES
    rows = rows[:MAX_FIXES]
    rows.reverse()
    after = None
    if before is not None:
        # the person's own: the cursor comes from the client
        nxt = (await s.execute(select(*cols).where(PositionRow.id == before[1], PositionRow.person_id == person_id))).first()
        after = Point(nxt.fix_time, nxt.lat, nxt.lon, nxt.speed_mps, nxt.id) if nxt is not None else None
    points = [Point(r.fix_time, r.lat, r.lon, r.speed_mps, r.id) for r in rows]
    times = {p.ref: p.t for p in points}
    segs = summarise(points, after)
    partial = capped and len(segs) == 1
    if capped and len(segs) > 1:
        segs = segs[1:]  # it may have begun before the fixes read: summarised again on the next page
    items: list[StayItem | TripItem] = []
    starts: list[tuple[datetime, int]] = []
    for g in segs:
        if isinstance(g, Stay):
            items.append(StayItem(at=g.start, id=g.first_ref, end=g.end, lat=g.lat, lon=g.lon, radius_m=round(g.radius_m, 1), fixes=g.fixes, partial=partial))
        elif isinstance(g, Trip):
            items.append(TripItem(at=g.start, id=g.first_ref, end=g.end, distance_m=round(g.distance_m, 1), fixes=g.fixes,
                                  max_speed_mps=round(g.max_speed_mps, 2) if g.max_speed_mps is not None else None, partial=partial))
        starts.append((times.get(g.first_ref, g.start), g.first_ref))
    return Segments(items, starts, len(points), capped)


@router.get("/{person_id}/timeline", response_model=Timeline, summary="Everything about a person, merged, newest first, in pages")
async def timeline(
    person_id: str, user: CurrentUser, s: SessionDep,
    kinds: str | None = Query(None, max_length=200, description=f"Comma-separated, any of: {', '.join(KINDS)}. All by default "
                              "(evidence only with the evidence.read permission: asking for it without is a 403)."),
    since: UtcTime | None = Query(None, description="Only what happened at or after this (a date is its midnight UTC)."),
    until: UtcTime | None = Query(None, description="Only what happened at or before this."),
    before: str | None = Query(None, max_length=500, description="The previous page's `next`."),
    limit: int = Query(50, ge=1, le=200),
) -> Timeline:
    """One page of the person's timeline, newest first: alerts (with their handling), check-ins,
    faces seen by cameras, proceedings, body-cam evidence, and their positions summarised as
    stays (about 100 m for 5 minutes or more) and the trips between them. Follow `next` with
    `?before=` until it is null; keep the same `kinds`, `since` and `until`. 404 for a person
    outside your units."""
    await get_owned(s, Person, person_id, user, "person")
    wanted = _parse_kinds(kinds, user)
    cursor = Cursor.decode(before) if before else None
    for _ in range(MAX_ROUNDS):  # a page may hold nothing wanted yet (a capped stretch of unwanted segments): read on
        page, read, capped, cursor = await _page(s, person_id, user, wanted, since, until, cursor, limit)
        if page or cursor is None:
            break
    return Timeline(person_id=person_id, items=page, next=cursor.encode() if cursor else None, fixes_read=read, fixes_capped=capped)


async def _page(s: Any, person_id: str, user: Principal, wanted: set[str], since: datetime | None, until: datetime | None,
                cursor: Cursor | None, limit: int) -> tuple[list[Any], int, bool, Cursor | None]:
    """One page and the cursor after it (None on the last)."""
    ckey = cursor.key if cursor else None
    candidates: list[Any] = []
    for src in SOURCES:
        if src.kind in wanted:
            candidates += await _rows(s, src, person_id, user, since, until, ckey, limit + 1)
    segs = Segments([], [], 0, False)
    if wanted & {"stay", "trip"}:
        segs = await _segments(s, person_id, since, until, cursor.fixes_before if cursor else None)
    shown = [g for g in segs.items if g.kind in wanted and (ckey is None or _key(g) < ckey)]
    candidates += shown
    if segs.capped and segs.items and not segs.items[0].partial:
        # the segment left out may have begun after anything older than the oldest complete one
        floor = segs.items[0].at
        candidates = [c for c in candidates if c.at >= floor]
    candidates.sort(key=_key, reverse=True)
    page = candidates[:limit]
    fixes_before = cursor.fixes_before if cursor else None
    on_page = {id(c) for c in page}
    if segs.items and all(id(g) in on_page for g in shown):
        fixes_before = segs.starts[0]  # every segment from there on is shown: summarise before it next
    if not (len(candidates) > limit or segs.capped):
        return page, segs.read, segs.capped, None
    if page:
        last = _key(page[-1])
    else:  # nothing wanted down to the oldest segment read: go on from there
        oldest = _key(segs.items[0])
        last = min(ckey, oldest) if ckey else oldest
    return page, segs.read, segs.capped, Cursor(last, fixes_before)
