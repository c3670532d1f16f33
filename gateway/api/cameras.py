"""Cameras: list with live state, snapshots, and WHEP live view (RFC 9725).

On several nodes a camera runs on one (gateway/api/relay.py): its live view, snapshot and
rotation are passed on to that node, and the list asks every node for the cameras it runs.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from gateway.api.deps import CamerasDep, CoreDep, Principal, Require
from gateway.api.relay import HOP, forwarded_headers, to_owner
from gateway.api.scope import device_in_reach, visible_devices
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
    node_id: str | None = Field(None, description="The gateway node that runs the camera (None: none does at the moment).")


class WhepClosed(BaseModel):
    closed: bool


class Rotated(BaseModel):
    camera_id: str
    rotated: bool = Field(description="The open segment was closed (and a new one opened); false when none was open.")


@router.get("", response_model=list[CameraPublic])
async def list_cameras(request: Request, core: CoreDep, area: CamerasDep, user: Viewer,
                       local: Annotated[bool, Query(description="Only the cameras this node runs (what nodes ask each other).")] = False
                       ) -> list[CameraPublic]:
    node = core.cluster.node_id
    async with core.db.session() as db:
        visible = await visible_devices(db, user)
    out = {}
    for cam in area.cameras.values():
        info = cam.fanout.info
        s = cam.session
        out[cam.id] = CameraPublic(id=cam.id, name=cam.cfg.name, room=cam.cfg.room, room_kind=cam.cfg.room_kind,
                                   state=s.state, detail=s.detail, fps=round(s.fps, 2), bitrate_bps=round(s.bitrate),
                                   codec=info.codec if info else None, profile=info.profile if info else None,
                                   width=info.width if info else None, height=info.height if info else None,
                                   recording=bool(cam.recorder and cam.recorder.open_segment), node_id=node)
    if visible is not None:
        out = {k: v for k, v in out.items() if k in visible}
    if local or request.headers.get(HOP):
        return list(out.values())
    for theirs in await _from_peers(request, core):
        if theirs.id in area.configs and theirs.id not in out:
            out[theirs.id] = theirs
    for cam_id, cfg in area.configs.items():  # enabled, and no node runs it right now
        if cam_id not in out and (visible is None or cam_id in visible):
            out[cam_id] = CameraPublic(id=cam_id, name=cfg.name, room=cfg.room, room_kind=cfg.room_kind, state="offline",
                                       detail="no gateway node runs this camera at the moment", fps=0, bitrate_bps=0, codec=None,
                                       profile=None, width=None, height=None, recording=False, node_id=None)
    return [out[k] for k in sorted(out)]


async def _in_reach(core: CoreDep, user: Principal, camera_id: str) -> None:
    async with core.db.session() as s:
        if not await device_in_reach(s, user, camera_id):
            raise HTTPException(404, "no such camera")


async def _from_peers(request: Request, core: CoreDep) -> list[CameraPublic]:
    """The cameras the other nodes run (a node that does not answer in time is left out)."""
    headers = forwarded_headers(request, core)
    out: list[CameraPublic] = []
    for _node, url in await core.cluster.peers():
        if not url or core.http is None:
            continue
        try:
            r = await core.http.get(f"{url}/api/cameras", params={"local": "true"}, headers=headers, timeout=3.0)
            if r.status_code == 200:
                out.extend(CameraPublic.model_validate(c) for c in r.json())
        except (httpx.HTTPError, ValueError, ValidationError):
            continue
    return out


@router.get("/{camera_id}/snapshot.jpg", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def snapshot(camera_id: str, request: Request, core: CoreDep, area: CamerasDep, user: Viewer) -> Response:
    from streams.snapshots import NoPicture

    await _in_reach(core, user, camera_id)
    if area.elsewhere(camera_id):
        relayed = await to_owner(request, core, area.kind, camera_id, f"/api/cameras/{camera_id}/snapshot.jpg")
        if relayed is not None:
            return relayed
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
    body = await request.body()
    offer = body.decode("utf-8", "replace")
    if not offer.startswith("v=0"):
        raise HTTPException(400, "the body is not an SDP offer")
    await _in_reach(core, user, camera_id)
    if area.elsewhere(camera_id):
        relayed = await to_owner(request, core, area.kind, camera_id, f"/api/cameras/{camera_id}/whep", body)
        if relayed is not None:
            return relayed
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
async def whep_delete(camera_id: str, session_id: str, request: Request, core: CoreDep, area: CamerasDep, user: Viewer) -> Response | WhepClosed:
    owner = area.live.owner(session_id)
    if owner is None and area.elsewhere(camera_id):
        relayed = await to_owner(request, core, area.kind, camera_id, f"/api/cameras/{camera_id}/whep/{session_id}")
        if relayed is not None:
            return relayed
    if owner is None or (owner != user.username and user.role != "admin") or not await area.live.close(session_id):
        raise HTTPException(404, "no such session")
    return WhepClosed(closed=True)


# No PATCH on a session (trickle ICE): aiortc gathers all candidates before answering, and
# the router answers a PATCH 405 with `Allow: DELETE`, as WHEP asks of a server without it.


@router.post("/{camera_id}/rotate", response_model=Rotated)
async def rotate(camera_id: str, request: Request, core: CoreDep, area: CamerasDep,
                 user: Annotated[Principal, Require("proceedings.write")]) -> Response | Rotated:
    """Close the camera's open segment now (a proceeding that stops seals what was recorded
    up to this moment); on the node that runs the camera."""
    await _in_reach(core, user, camera_id)
    if camera_id not in area.configs:
        raise HTTPException(404, "no such camera")
    if camera_id not in area.cameras:
        relayed = await to_owner(request, core, area.kind, camera_id, f"/api/cameras/{camera_id}/rotate")
        if relayed is not None:
            return relayed
        raise HTTPException(503, "the camera is being taken over by another node; try again in a few seconds")
    rec = area.cameras[camera_id].recorder
    if rec is None:
        return Rotated(camera_id=camera_id, rotated=False)
    had = rec.open_segment is not None
    return Rotated(camera_id=camera_id, rotated=had and await rec.rotate_now())
