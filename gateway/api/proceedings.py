"""Proceedings: start/stop with pre-roll, sealed manifest, export (MP4 per camera + manifest)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.background import BackgroundTask

from gateway.api.deps import CamerasDep, CoreDep, Principal, Require, RowId, SessionDep
from gateway.api.relay import to_owner
from gateway.api.scope import device_in_reach, get_owned, owned
from gateway.db.models import Device, Person, Proceeding

router = APIRouter(prefix="/api/proceedings", tags=["proceedings"])
Writer = Annotated[Principal, Require("proceedings.write")]
Reader = Annotated[Principal, Require("read")]
Exporter = Annotated[Principal, Require("evidence.export")]


Kind = Literal["reception", "announcement", "warning", "talk", "mediation", "education", "release"]


class ProceedingStart(BaseModel):
    model_config = {"extra": "forbid"}
    camera_ids: list[str] = Field(min_length=1, max_length=32)
    person_id: str | None = Field(None, max_length=64)
    kind: Kind = Field(description="reception (报到), announcement (宣告), warning (警告/训诫), talk (谈话), mediation (调解), education (教育), release (解矫)")
    case_ref: str | None = Field(None, max_length=100)


class Attendance(BaseModel):
    person_id: str
    first_seen: datetime
    last_seen: datetime
    camera_ids: list[str]
    best_distance: float | None
    verified_minutes: float | None = Field(None, description="Remote sessions: minutes the person was verified present by face checks.")
    checks: int | None = Field(None, description="Remote sessions: identity checks of the person ...")
    impostor_checks: int | None = Field(None, description="... that saw someone else ...")
    absent_checks: int | None = Field(None, description="... and that saw nobody.")


class ProceedingPublic(BaseModel):
    id: int
    kind: str
    person_id: str | None
    case_ref: str | None
    camera_ids: list[str]
    state: Literal["recording", "sealed"]
    started_at: datetime
    stopped_at: datetime | None
    started_by: str
    stopped_by: str | None
    pre_roll_s: int
    manifest: dict[str, Any] | None = Field(description="The sealed manifest: segments with their SHA-256, gaps, and the previous manifest's hash.")
    manifest_sha256: str | None
    attendance: list[Attendance] = Field(description="Who the 1:N sampler saw on the proceeding's cameras during it.")


def _public(row: Proceeding) -> ProceedingPublic:
    from streams.proceedings import public

    return ProceedingPublic.model_validate(public(row))


@router.post("", status_code=201, response_model=ProceedingPublic)
async def start(body: ProceedingStart, core: CoreDep, cameras: CamerasDep, user: Writer) -> ProceedingPublic:
    from streams.proceedings import ProceedingError

    async with core.db.session() as s:
        # naming a camera or person outside the caller's reach is as if it did not exist
        for cam_id in body.camera_ids:
            if not await device_in_reach(s, user, cam_id):
                raise HTTPException(404, f"unknown camera(s): {cam_id}")
        if body.person_id is not None:
            person = await get_owned(s, Person, body.person_id, user, "person")
        # the proceeding belongs to its person's unit, else its (first) camera's
        unit = person.unit_id if body.person_id is not None else (
            await s.scalar(select(Device.unit_id).where(Device.id == body.camera_ids[0])) if body.camera_ids else None)
    try:
        row = await cameras.proceedings.start(body.camera_ids, body.person_id, body.kind, body.case_ref, user.username, unit or user.unit_id)
    except ProceedingError as e:
        raise HTTPException(e.status, str(e)) from None
    return _public(row)


@router.post("/{proceeding_id}/stop", response_model=ProceedingPublic)
async def stop(proceeding_id: RowId, request: Request, core: CoreDep, s: SessionDep, cameras: CamerasDep, user: Writer) -> ProceedingPublic:
    from streams.proceedings import ProceedingError

    row0 = await get_owned(s, Proceeding, proceeding_id, user, "proceeding")
    if row0.state == "recording":
        # cameras another node records: their open segments are closed there first
        for cam_id in row0.camera_ids:
            if cameras.elsewhere(cam_id):
                relayed = await to_owner(request, core, cameras.kind, cam_id, f"/api/cameras/{cam_id}/rotate")
                if relayed is not None and relayed.status_code != 200:
                    raise HTTPException(502, f"camera {cam_id}: its node could not close the open segment ({relayed.status_code})")
    try:
        row = await cameras.proceedings.stop(proceeding_id, user.username)
    except ProceedingError as e:
        raise HTTPException(e.status, str(e)) from None
    return _public(row)


@router.get("", response_model=list[ProceedingPublic])
async def list_proceedings(s: SessionDep, user: Reader, person_id: str | None = Query(None, max_length=64),
                           limit: int = Query(500, ge=1, le=2000, description="Newest first.")) -> list[ProceedingPublic]:
    q = select(Proceeding).where(owned(Proceeding.unit_id, user)).order_by(Proceeding.id.desc()).limit(limit)
    if person_id:
        q = q.where(Proceeding.person_id == person_id)
    return [_public(r) for r in (await s.scalars(q)).all()]


@router.get("/{proceeding_id}", response_model=ProceedingPublic)
async def get_one(proceeding_id: RowId, s: SessionDep, user: Reader) -> ProceedingPublic:
    return _public(await get_owned(s, Proceeding, proceeding_id, user, "proceeding"))


class Verified(BaseModel):
    proceeding_id: int
    ok: bool = Field(description="The manifest matches its hash, its chain link exists, and every segment file still has its recorded SHA-256.")
    segments: int
    manifest_sha256: str | None
    problems: list[str]


@router.post("/{proceeding_id}/verify", response_model=Verified, summary="Re-hash a sealed proceeding's files and check its manifest and chain (audited)")
async def verify(proceeding_id: RowId, core: CoreDep, user: Annotated[Principal, Require("evidence.read")]) -> Verified:
    from gateway.evidence import verify_proceeding

    async with core.db.session() as s:
        row = await get_owned(s, Proceeding, proceeding_id, user, "proceeding")
        if row.state != "sealed" or not row.manifest:
            raise HTTPException(409, "stop the proceeding before verifying it")
        n, problems = await verify_proceeding(s, core.media_dir, row)
    await core.audit.log(user.username, "proceeding.verified", f"proceeding:{row.id}", {"ok": not problems, "problems": problems[:20]})
    return Verified(proceeding_id=row.id, ok=not problems, segments=n, manifest_sha256=row.manifest_sha256, problems=problems)


@router.get("/{proceeding_id}/export", response_class=FileResponse, responses={200: {"content": {"application/zip": {}}}})
async def export(proceeding_id: RowId, s: SessionDep, core: CoreDep, user: Exporter) -> Response:
    from streams.proceedings import export_zip, remove_export

    row = await get_owned(s, Proceeding, proceeding_id, user, "proceeding")
    if row.state != "sealed" or not row.manifest:
        raise HTTPException(409, "stop the proceeding before exporting it")
    path = await export_zip(core.media_dir, row)
    await core.audit.log(user.username, "proceeding.exported", f"proceeding:{row.id}", {"manifest_sha256": row.manifest_sha256})
    # streamed from its file, which goes once it is sent
    return FileResponse(path, media_type="application/zip", filename=f"proceeding-{row.id}.zip",
                        background=BackgroundTask(remove_export, path.parent))
