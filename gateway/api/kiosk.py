"""Kiosk protocol: heartbeats, idempotent event batches and synchronous check-ins.

Authenticated by the kiosk's own key (`X-Device-Key` or `Authorization: Bearer dk_...`);
a key identifies exactly one kiosk and the kiosk id is taken from the key, so one
kiosk's key can never act for another.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from drivers.kiosk.decoder import EventBatch, Heartbeat
from gateway.api.deps import CoreDep, CurrentDevice, DevicePrincipal, KiosksDep, RecognitionDep
from gateway.api.faces import read_upload, refused
from recognition.service import FaceInputError

router = APIRouter(prefix="/api/kiosk", tags=["kiosk"])


def kiosk_only(dev: DevicePrincipal, claimed: str | None = None) -> str:
    if dev.kind != "kiosk":
        raise HTTPException(403, f"device {dev.id} is a {dev.kind}, not a kiosk")
    if claimed and claimed != dev.id:
        raise HTTPException(403, f"this key belongs to kiosk {dev.id}, not {claimed}")
    return dev.id


@router.post("/heartbeat", summary="Kiosk state, printer and paper, software version")
async def heartbeat(body: Heartbeat, dev: CurrentDevice, kiosks: KiosksDep) -> dict[str, Any]:
    kiosk_id = kiosk_only(dev)
    return await kiosks.heartbeat(kiosk_id, body)


@router.post("/events", summary="A batch of kiosk events; replays (same event_id) are applied once, in order")
async def events(body: EventBatch, dev: CurrentDevice, kiosks: KiosksDep) -> dict[str, Any]:
    kiosk_id = kiosk_only(dev)
    return await kiosks.apply_events(kiosk_id, body.events)


@router.post("/checkins", summary="Check-in: person_id + a burst of frames → accepted / rejected / retry")
async def checkin(
    dev: CurrentDevice, core: CoreDep, rec: RecognitionDep,
    person_id: str = Form(..., min_length=1, max_length=64),
    kiosk_id: str | None = Form(None, description="Optional; must be the key's own kiosk."),
    frames: list[UploadFile] = File(default_factory=list, description="A burst of frames (JPEG/PNG), oldest first; at least liveness.min_frames."),
    clip: UploadFile | None = File(None, description="Instead of frames: a short clip (MP4, WebM); frames are taken from it."),
) -> dict[str, Any]:
    kid = kiosk_only(dev, kiosk_id)
    try:
        data = [await read_upload(f, f"frame {i}") for i, f in enumerate(frames)]
        video = await read_upload(clip, "clip") if clip is not None else None
        d = await rec.verify(person_id, data, source=kid, actor=f"kiosk:{kid}", liveness=True, clip=video)
    except FaceInputError as e:
        raise await refused(core, f"kiosk:{kid}", "kiosk.checkin_bad_input", f"person:{person_id}", e) from None
    out = d.to_dict()
    out["kiosk_id"] = kid
    return out
