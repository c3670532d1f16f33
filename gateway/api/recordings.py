"""Recorded segments and gaps; segment files served with HTTP Range support."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import CoreDep, Principal, Require, SessionDep
from gateway.db.models import Recording
from gateway.evidence import confined

router = APIRouter(prefix="/api/recordings", tags=["recordings"])
Reader = Annotated[Principal, Require("read")]


def _naive(dt: datetime | None) -> datetime | None:
    return (dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)) if dt else None


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt and not dt.tzinfo else dt


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
        id=r.id, camera_id=r.camera_id, kind=r.kind, started_at=_aware(r.started_at), ended_at=_aware(r.ended_at), duration_s=r.duration_s,
        size=r.size, sha256=r.sha256, codec=r.codec, has_audio=r.has_audio, hold=r.hold, open=r.kind == "segment" and r.sha256 is None))


@router.get("", response_model=list[RecordingPublic])
async def list_recordings(s: SessionDep, user: Reader, camera_id: str | None = None, since: datetime | None = None,
                          until: datetime | None = None, limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> list[RecordingPublic]:
    q = select(Recording)
    if camera_id:
        q = q.where(Recording.camera_id == camera_id)
    if since:
        q = q.where((Recording.ended_at.is_(None)) | (Recording.ended_at >= _naive(since)))
    if until:
        q = q.where(Recording.started_at <= _naive(until))
    rows = (await s.scalars(q.order_by(Recording.started_at, Recording.id).limit(limit))).all()
    return [public(r) for r in rows]


@router.get("/{recording_id}/file", response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content (Range)"}})
async def recording_file(recording_id: int, s: SessionDep, core: CoreDep, user: Reader) -> FileResponse:
    r = await s.get(Recording, recording_id)
    if r is None or r.kind != "segment" or not r.path:
        raise HTTPException(404, "no such recording")
    try:
        path = confined(core.media_dir, r.path)
    except ValueError:
        raise HTTPException(404, "no such recording") from None
    if not path.is_file():
        raise HTTPException(410, "the segment file is gone (retention or deletion)")
    # Starlette's FileResponse answers Range requests with 206 / multipart / 416
    return FileResponse(path, media_type="video/mp4", filename=path.name, content_disposition_type="inline")
