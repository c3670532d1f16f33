"""Cameras: list with live state, snapshots, and WHEP live view (RFC 9725)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from gateway.api.deps import CamerasDep, CoreDep, Principal, Require
from streams.live import TooManyViewers

router = APIRouter(prefix="/api/cameras", tags=["cameras"])
Viewer = Annotated[Principal, Require("live.view")]


class CameraPublic(BaseModel):
    id: str
    name: str | None
    room: str | None
    room_kind: str
    state: str = Field(description="online, offline, auth_failed or unreachable")
    detail: str | None = Field(description="Why it is not online (never carries credentials).")
    fps: float
    bitrate_bps: int
    codec: str | None
    profile: str | None
    width: int | None
    height: int | None
    recording: bool = Field(description="A segment is open now.")


class WhepClosed(BaseModel):
    closed: bool


@router.get("", response_model=list[CameraPublic])
async def list_cameras(area: CamerasDep, user: Viewer) -> list[CameraPublic]:
    out = []
    for cam in area.cameras.values():
        info = cam.fanout.info
        s = cam.session
        out.append(CameraPublic(id=cam.id, name=cam.cfg.name, room=cam.cfg.room, room_kind=cam.cfg.room_kind,
                                state=s.state, detail=s.detail, fps=round(s.fps, 2), bitrate_bps=round(s.bitrate),
                                codec=info.codec if info else None, profile=info.profile if info else None,
                                width=info.width if info else None, height=info.height if info else None,
                                recording=bool(cam.recorder and cam.recorder.open_segment)))
    return out


@router.get("/{camera_id}/snapshot.jpg", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def snapshot(camera_id: str, area: CamerasDep, user: Viewer) -> Response:
    from streams.snapshots import NoPicture

    try:
        jpg = await area.snapshots.jpeg(camera_id)
    except KeyError:
        raise HTTPException(404, "no such camera") from None
    except NoPicture as e:
        raise HTTPException(503, f"no picture yet: {e}") from None
    return Response(jpg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post("/{camera_id}/whep", status_code=201, response_class=Response,
             openapi_extra={"requestBody": {"content": {"application/sdp": {"schema": {"type": "string"}}}, "required": True}})
async def whep(camera_id: str, request: Request, core: CoreDep, area: CamerasDep, user: Viewer) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/sdp":
        raise HTTPException(415, "WHEP offers must be application/sdp")
    offer = (await request.body()).decode("utf-8", "replace")
    if not offer.startswith("v=0"):
        raise HTTPException(400, "the body is not an SDP offer")
    try:
        sid, answer = await area.live.answer(camera_id, offer, user.username)
    except TooManyViewers as e:
        raise HTTPException(429, str(e)) from None
    except KeyError:
        raise HTTPException(404, "no such camera") from None
    except LookupError as e:
        raise HTTPException(503, str(e)) from None
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    await core.audit.log(user.username, "live.view", f"camera:{camera_id}", {"session": sid})
    return Response(answer, status_code=201, media_type="application/sdp",
                    headers={"Location": f"/api/cameras/{camera_id}/whep/{sid}", "ETag": f'"{sid}"'})


@router.delete("/{camera_id}/whep/{session_id}", status_code=200, response_model=WhepClosed)
async def whep_delete(camera_id: str, session_id: str, area: CamerasDep, user: Viewer) -> WhepClosed:
    owner = area.live.owner(session_id)
    if owner is None or (owner != user.username and user.role != "admin") or not await area.live.close(session_id):
        raise HTTPException(404, "no such session")
    return WhepClosed(closed=True)


# No PATCH on a session (trickle ICE): aiortc gathers all candidates before answering, and
# the router answers a PATCH 405 with `Allow: DELETE`, as WHEP asks of a server without it.
