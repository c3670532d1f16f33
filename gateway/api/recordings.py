"""Recorded segments and gaps; segment files served with HTTP Range support."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import CoreDep, Principal, Require, RowId, SessionDep, UtcTime
from gateway.api.ranges import file_response, serves_start
from gateway.api.scope import device_in_reach, devices_in_reach
from gateway.auth.roles import allowed
from gateway.db.models import Recording
from gateway.evidence import confined
from gateway.units import ROOT_PATH

router = APIRouter(prefix="/api/recordings", tags=["recordings"])
Reader = Annotated[Principal, Require("read")]


class RecordingPublic(BaseModel):
    id: int
    camera_id: str
    kind: Literal["segment", "gap"] = Field(description="A recorded segment, or a gap: a span that was not recorded (camera or gateway down, disk full).")
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    size: int | None
    sha256: str | None
    codec: str | None
    has_audio: bool | None
    hold: bool = Field(description="Part of a sealed proceeding: retention never deletes it.")
    open: bool = Field(description="A segment still being written (no hash yet).")


def public(r: Recording) -> RecordingPublic:
    return RecordingPublic.model_validate(dict(
        id=r.id, camera_id=r.camera_id, kind=r.kind, started_at=r.started_at, ended_at=r.ended_at, duration_s=r.duration_s,
        size=r.size, sha256=r.sha256, codec=r.codec, has_audio=r.has_audio, hold=r.hold, open=r.kind == "segment" and r.sha256 is None))


@router.get("", response_model=list[RecordingPublic])
async def list_recordings(s: SessionDep, user: Reader, camera_id: str | None = None, since: UtcTime | None = None,
                          until: UtcTime | None = None, limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> list[RecordingPublic]:
    q = select(Recording)
    if user.reach != ROOT_PATH:  # a recording belongs to its camera's unit
        q = q.where(Recording.camera_id.in_(devices_in_reach(user)))
    if camera_id:
        q = q.where(Recording.camera_id == camera_id)
    if since:
        q = q.where((Recording.ended_at.is_(None)) | (Recording.ended_at >= since))
    if until:
        q = q.where(Recording.started_at <= until)
    rows = (await s.scalars(q.order_by(Recording.started_at, Recording.id).limit(limit))).all()
    return [public(r) for r in rows]


@router.get("/{recording_id}/file", response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content (Range)"},
                       403: {"description": "The segment is held as evidence (part of a sealed proceeding): needs evidence.read"}})
async def recording_file(recording_id: RowId, request: Request, s: SessionDep, core: CoreDep, user: Reader) -> FileResponse:
    """Every viewing is audited (`recording.viewed`: the request that serves the file's
    start; a player's further ranges are not). A segment held by a proceeding is evidence:
    only roles that may read evidence get it."""
    r = await s.get(Recording, recording_id)
    if r is None or r.kind != "segment" or not r.path or not await device_in_reach(s, user, r.camera_id):
        raise HTTPException(404, "no such recording")
    if r.hold and not allowed(user.role, "evidence.read"):
        raise HTTPException(403, "this segment is held as evidence of a proceeding; your role may not read evidence")
    try:
        path = confined(core.media_dir, r.path)
    except ValueError:
        raise HTTPException(404, "no such recording") from None
    if not path.is_file():
        raise HTTPException(410, "the segment file is gone (retention or deletion)")
    # Starlette's FileResponse answers Range requests with 206 / multipart / 416
    response = file_response(path, media_type="video/mp4", filename=path.name, content_disposition_type="inline")
    if serves_start(request, response):
        await core.audit.log(user.username, "recording.viewed", f"recording:{r.id}",
                             {"camera_id": r.camera_id, "held": r.hold, "range": request.headers.get("range")})
    return response
