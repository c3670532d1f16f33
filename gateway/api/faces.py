"""Faces: enrollment photos, 1:1 verification, 1:N identification, the check-in
log and who was seen in each room. Photos and thumbnails are served only to
authenticated users, from paths stored by the server (never from the request)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import (
    CoreDep,
    CurrentUser,
    Principal,
    RecognitionDep,
    Require,
    RowId,
    SessionDep,
    UtcTime,
)
from gateway.api.scope import device_in_reach, devices_in_reach, get_owned, owned, persons_in_reach
from gateway.db.models import CheckInRow, FaceEncoding, FaceMatch, Person
from gateway.evidence import confined
from gateway.units import ROOT_PATH
from recognition.service import FaceInputError

router = APIRouter(tags=["faces"])
Enroller = Annotated[Principal, Require("faces.enroll")]
Checker = Annotated[Principal, Require("faces.check")]


async def read_upload(f: UploadFile, what: str = "file") -> bytes:
    data = await f.read()
    if not data:
        raise FaceInputError(422, f"{what} is empty")
    return data


async def refused(core: Any, actor: str, action: str, target: str, e: FaceInputError) -> HTTPException:
    """Bad input leaves only an audit entry behind."""
    await core.audit.log(actor, action, target, {"status": e.status, "reason": str(e)})
    return HTTPException(e.status, str(e))


class VerdictPublic(BaseModel):
    """The quality verdict on an enrollment photo."""

    accepted: bool
    reasons: list[str] = Field(description="Why it was refused (face too small, blurred, duplicate of another person...).")
    metrics: dict[str, Any] = Field(description="Size, face size in px, sharpness, brightness as measured.")
    encoding_id: int | None
    duplicate_of: str | None = Field(description="The other person this face matches, when it does.")


class PhotoPublic(BaseModel):
    id: int
    person_id: str
    created_at: datetime
    quality: dict[str, Any]
    url: str


class DecisionPublic(BaseModel):
    """A 1:1 decision, stored as a check-in."""

    result: Literal["accepted", "rejected", "retry"]
    match: bool
    distance: float | None = Field(description="Median distance to the enrolled faces (lower is more alike).")
    threshold: float
    reason: str
    checkin_id: int | None
    liveness: dict[str, Any]


class Candidate(BaseModel):
    person_id: str
    distance: float


class IdentifiedFace(BaseModel):
    box: list[int] = Field(description="top, right, bottom, left in pixels")
    person_id: str | None = Field(description="Set only when the best candidate is clearly within the threshold.")
    distance: float | None
    candidates: list[Candidate]


class Identified(BaseModel):
    faces: list[IdentifiedFace]
    threshold: float


class CheckInPublic(BaseModel):
    id: int
    at: datetime = Field(description="When the person checked in (for a check-in queued at a terminal while the gateway was out of reach: when it was made).")
    received_at: datetime | None = Field(None, description="When it reached the gateway, if later than `at` (queued offline).")
    kiosk_id: str = Field(description="The kiosk, user:<name> for a check made from the console, remote:<link id> for a phone's remote check-in.")
    person_id: str
    result: str
    distance: float | None
    threshold: float | None
    reason: str | None
    liveness: dict[str, Any] | None
    thumbnail: str | None
    position: dict[str, Any] | None = Field(None, description="Remote check-ins: where the phone was ({lat, lon, accuracy_m, taken_at}) and the "
                                                              "verdict against the person's zones ({verdict: ok/uncertain/breach/no_zones, zones, notes}).")


class Sighting(BaseModel):
    person_id: str | None = Field(description="None: a face that matched nobody clearly.")
    last_seen: datetime
    distance: float | None
    match_id: int
    snapshot: str | None


class Seen(BaseModel):
    since: datetime
    cameras: dict[str, list[Sighting]]


def photo_public(row: FaceEncoding) -> PhotoPublic:
    return PhotoPublic(id=row.id, person_id=row.person_id, created_at=row.created_at, quality=dict(row.quality or {}),
                       url=f"/api/persons/{row.person_id}/photos/{row.id}/image")


async def _person(core: CoreDep, user: Principal, person_id: str) -> None:
    async with core.db.session() as s:
        await get_owned(s, Person, person_id, user, "person")


@router.post("/api/persons/{person_id}/photos", response_model=VerdictPublic, summary="Enroll a photo: quality verdict and stored encoding", status_code=201)
async def add_photo(person_id: str, user: Enroller, core: CoreDep, rec: RecognitionDep, file: UploadFile = File(...)) -> VerdictPublic:
    await _person(core, user, person_id)
    try:
        verdict = await rec.enroll(person_id, await read_upload(file), user.username)
    except FaceInputError as e:
        raise await refused(core, user.username, "face.enroll_bad_input", f"person:{person_id}", e) from None
    if not verdict.accepted:
        raise HTTPException(422, {"message": "photo refused: " + "; ".join(verdict.reasons), "verdict": verdict.to_dict()})
    return VerdictPublic(**verdict.to_dict())


@router.get("/api/persons/{person_id}/photos", response_model=list[PhotoPublic], summary="Enrollment photos with their quality verdicts")
async def list_photos(person_id: str, user: CurrentUser, s: SessionDep, limit: int = Query(200, ge=1, le=1000, description="Oldest first.")) -> list[PhotoPublic]:
    await get_owned(s, Person, person_id, user, "person")
    rows = (await s.scalars(select(FaceEncoding).where(FaceEncoding.person_id == person_id).order_by(FaceEncoding.id).limit(limit))).all()
    return [photo_public(r) for r in rows]


@router.get("/api/persons/{person_id}/photos/{photo_id}/image", summary="The enrollment photo itself", response_class=FileResponse)
async def photo_image(person_id: str, photo_id: RowId, user: Enroller, s: SessionDep, core: CoreDep) -> FileResponse:
    await get_owned(s, Person, person_id, user, "person")
    row = await s.get(FaceEncoding, photo_id)
    if row is None or row.person_id != person_id:
        raise HTTPException(404, f"no photo {photo_id} for person {person_id}")
    path = confined(core.media_dir, row.photo_path)
    if not path.is_file():
        raise HTTPException(404, "photo file missing")
    await core.audit.log(user.username, "face.photo_viewed", f"person:{person_id}", {"photo_id": photo_id})
    return FileResponse(path, headers={"Cache-Control": "private, no-store"})


@router.delete("/api/persons/{person_id}/photos/{photo_id}", status_code=204)
async def delete_photo(person_id: str, photo_id: RowId, user: Enroller, core: CoreDep, rec: RecognitionDep) -> None:
    await _person(core, user, person_id)
    if not await rec.delete_photo(person_id, photo_id, user.username):
        raise HTTPException(404, f"no photo {photo_id} for person {person_id}")


@router.post("/api/faces/verify", response_model=DecisionPublic, summary="1:1: is this photo the enrolled person?")
async def verify(user: Checker, core: CoreDep, rec: RecognitionDep, person_id: str = Form(...), file: UploadFile = File(...)) -> DecisionPublic:
    await _person(core, user, person_id)
    try:
        d = await rec.verify(person_id, [await read_upload(file)], source=f"user:{user.username}"[:64], actor=user.username, liveness=False)
    except FaceInputError as e:
        raise await refused(core, user.username, "face.verify_bad_input", f"person:{person_id}", e) from None
    return DecisionPublic(**d.to_dict())


@router.post("/api/faces/identify", response_model=Identified, summary="1:N: candidate persons for each face in the photo")
async def identify(user: Checker, core: CoreDep, rec: RecognitionDep, file: UploadFile = File(...), k: int = Query(5, ge=1, le=50)) -> Identified:
    try:
        out = await rec.identify(await read_upload(file), k)
    except FaceInputError as e:
        raise await refused(core, user.username, "face.identify_bad_input", "faces", e) from None
    if user.reach != ROOT_PATH:  # candidates outside the caller's reach are not named
        async with core.db.session() as s:
            mine = set((await s.scalars(persons_in_reach(user))).all())
        for face in out["faces"]:
            face["candidates"] = [c for c in face["candidates"] if c["person_id"] in mine]
            if face.get("person_id") not in mine:
                face["person_id"], face["distance"] = None, None
    await core.audit.log(user.username, "face.identify", "faces", {"faces": len(out["faces"]), "persons": [f["person_id"] for f in out["faces"]]})
    return Identified.model_validate(out)


@router.get("/api/checkins", response_model=list[CheckInPublic], summary="Check-in log, newest first")
async def list_checkins(
    user: CurrentUser, s: SessionDep, person_id: str | None = None, kiosk_id: str | None = None, result: str | None = None,
    since: UtcTime | None = None, limit: int = Query(100, ge=1, le=1000),
) -> list[CheckInPublic]:
    stmt = select(CheckInRow).where(owned(CheckInRow.unit_id, user)).order_by(CheckInRow.at.desc(), CheckInRow.id.desc()).limit(limit)
    if person_id:
        stmt = stmt.where(CheckInRow.person_id == person_id)
    if kiosk_id:
        stmt = stmt.where(CheckInRow.kiosk_id == kiosk_id)
    if result:
        stmt = stmt.where(CheckInRow.result == result)
    if since:
        stmt = stmt.where(CheckInRow.at >= since)
    return [
        CheckInPublic(id=c.id, at=c.at, received_at=c.received_at, kiosk_id=c.kiosk_id, person_id=c.person_id, result=c.result, distance=c.distance, threshold=c.threshold,
                      reason=c.reason, liveness=c.liveness, thumbnail=f"/api/checkins/{c.id}/thumbnail.jpg" if c.thumbnail else None,
                      position=c.position)
        for c in (await s.scalars(stmt)).all()
    ]


@router.get("/api/checkins/{checkin_id}/thumbnail.jpg", response_class=FileResponse)
async def checkin_thumbnail(checkin_id: RowId, user: CurrentUser, s: SessionDep, core: CoreDep) -> FileResponse:
    c = await get_owned(s, CheckInRow, checkin_id, user, "check-in")
    if not c.thumbnail:
        raise HTTPException(404, f"no thumbnail for check-in {checkin_id}")
    path = confined(core.media_dir, c.thumbnail)
    if not path.is_file():
        raise HTTPException(404, "thumbnail file missing")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.get("/api/faces/seen", response_model=Seen, summary="Who was seen in each room: latest sighting per camera and person")
async def seen(user: CurrentUser, s: SessionDep, core: CoreDep, camera_id: str | None = None, minutes: int = Query(60, ge=1, le=7 * 24 * 60)) -> Seen:
    since = core.clock.now() - timedelta(minutes=minutes)
    stmt = select(FaceMatch).where(FaceMatch.at >= since).order_by(FaceMatch.at.desc()).limit(5000)
    if user.reach != ROOT_PATH:  # what a room's camera saw belongs to the camera's unit
        stmt = stmt.where(FaceMatch.camera_id.in_(devices_in_reach(user)))
    if camera_id:
        stmt = stmt.where(FaceMatch.camera_id == camera_id)
    cams: dict[str, dict[str, Sighting]] = {}
    for m in (await s.scalars(stmt)).all():
        per = cams.setdefault(m.camera_id, {})
        key = m.person_id or f"unknown:{m.id}"
        if key not in per:
            per[key] = Sighting(person_id=m.person_id, last_seen=m.at, distance=m.distance, match_id=m.id,
                                snapshot=f"/api/faces/matches/{m.id}/snapshot.jpg" if m.snapshot else None)
    return Seen(since=since, cameras={c: list(v.values()) for c, v in cams.items()})


@router.get("/api/faces/matches/{match_id}/snapshot.jpg", response_class=FileResponse)
async def match_snapshot(match_id: RowId, user: CurrentUser, s: SessionDep, core: CoreDep) -> FileResponse:
    m = await s.get(FaceMatch, match_id)
    if m is None or not m.snapshot or not await device_in_reach(s, user, m.camera_id):
        raise HTTPException(404, f"no snapshot for face match {match_id}")
    path = confined(core.media_dir, m.snapshot)
    if not path.is_file():
        raise HTTPException(404, "snapshot file missing")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
