"""Kiosk protocol: heartbeats, idempotent event batches, liveness challenges and synchronous check-ins.

Authenticated by the kiosk's own key (`X-Device-Key` or `Authorization: Bearer dk_...`);
a key identifies exactly one kiosk and the kiosk id is taken from the key, so one
kiosk's key can never act for another.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from pydantic import BaseModel, Field

from config.faces import ChallengeKind
from drivers.kiosk.decoder import EventBatch, Heartbeat
from gateway.api.deps import CoreDep, CurrentDevice, DevicePrincipal, KiosksDep, RecognitionDep
from gateway.api.faces import DecisionPublic, read_upload, refused
from gateway.kiosk import pairing, submissions
from recognition.service import FaceInputError

router = APIRouter(prefix="/api/kiosk", tags=["kiosk"])


def kiosk_only(dev: DevicePrincipal, claimed: str | None = None) -> str:
    if dev.kind != "kiosk":
        raise HTTPException(403, f"device {dev.id} is a {dev.kind}, not a kiosk")
    if claimed and claimed != dev.id:
        raise HTTPException(403, f"this key belongs to kiosk {dev.id}, not {claimed}")
    return dev.id


class HeartbeatAck(BaseModel):
    challenge_required: bool = Field(False, description="Check-ins must answer a challenge (POST /api/kiosk/challenges; offline: `offline_challenge`).")
    state: str = Field(description="online, as the gateway now sees the kiosk")
    status: str | None = Field(description="What the kiosk reported as wrong (printer, paper...), if anything.")
    server_time: datetime = Field(description="The gateway's clock, for kiosks to correct theirs.")


class EventsApplied(BaseModel):
    applied: list[str] = Field(description="event_ids stored now, in the order sent")
    duplicates: list[str] = Field(description="event_ids stored before (a replay): not applied again")


class ChallengeRequest(BaseModel):
    person_id: str = Field(min_length=1, max_length=64, description="Who is about to check in.")


class ChallengePublic(BaseModel):
    challenge_id: str = Field(description="Send it back as the check-in's challenge_id form field; single use.")
    kind: ChallengeKind
    prompt: dict[str, str] = Field(description="What to show the person, by language (zh-CN, en).")
    frames_wanted: int = Field(description="Frames to send, oldest first ...")
    interval_ms: int = Field(description="... this far apart, starting when the prompt is shown.")
    expires_at: datetime = Field(description="The check-in must reach the gateway before this.")


class KioskDecision(DecisionPublic):
    kiosk_id: str


@router.post("/heartbeat", response_model=HeartbeatAck, summary="Kiosk state, printer and paper, software version")
async def heartbeat(body: Heartbeat, dev: CurrentDevice, kiosks: KiosksDep, core: CoreDep) -> HeartbeatAck:
    kiosk_id = kiosk_only(dev)
    return HeartbeatAck.model_validate({**await kiosks.heartbeat(kiosk_id, body),
                                        "challenge_required": core.config.thresholds.faces.active_liveness.required})


@router.post("/events", response_model=EventsApplied, summary="A batch of kiosk events; replays (same event_id) are applied once, in order")
async def events(body: EventBatch, dev: CurrentDevice, kiosks: KiosksDep) -> EventsApplied:
    kiosk_id = kiosk_only(dev)
    return EventsApplied.model_validate(await kiosks.apply_events(kiosk_id, body.events))


@router.post("/challenges", response_model=ChallengePublic, summary="Active liveness: a random challenge (turn left/right, blink, move closer) for the next check-in")
async def challenge(body: ChallengeRequest, dev: CurrentDevice, core: CoreDep, rec: RecognitionDep) -> ChallengePublic:
    kid = kiosk_only(dev)
    try:
        c = await rec.issue_challenge(kid, body.person_id)
    except FaceInputError as e:
        raise await refused(core, f"kiosk:{kid}", "kiosk.challenge_bad_input", f"person:{body.person_id}", e) from None
    return ChallengePublic.model_validate(c, from_attributes=True)


@router.post("/checkins", response_model=KioskDecision, summary="Check-in: person_id + a burst of frames → accepted / rejected / retry")
async def checkin(
    dev: CurrentDevice, core: CoreDep, rec: RecognitionDep,
    person_id: str = Form(..., min_length=1, max_length=64),
    kiosk_id: str | None = Form(None, description="Optional; must be the key's own kiosk."),
    frames: list[UploadFile] = File(default_factory=list, description="A burst of frames (JPEG/PNG), oldest first; at least liveness.min_frames."),
    clip: UploadFile | None = File(None, description="Instead of frames: a short clip (MP4, WebM); frames are taken from it."),
    client_ref: str | None = Form(None, min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$",
                                  description="The terminal's own id of this check-in: a replay (answer lost, terminal was offline) "
                                              "gets the first decision and makes no second check-in."),
    challenge_id: str | None = Form(None, max_length=64, description="The challenge this check-in answers (POST /api/kiosk/challenges); required when active_liveness.required."),
    offline_challenge: ChallengeKind | None = Form(None, description="Made while the gateway was out of reach: the challenge the terminal chose and "
                                                                      "showed (judged the same way, marked terminal-chosen; active_liveness.allow_offline)."),
    made_at: datetime | None = Form(None, description="When the terminal filmed the check-in (ISO 8601): a check-in queued while the gateway was out of "
                                                       "reach counts at that time, never after it arrived nor before the lapsed challenge it answered was issued."),
    lapsed_challenge_id: str | None = Form(None, max_length=64, description="With offline_challenge: the gateway's challenge of that kind the person answered, which "
                                                                            "lapsed while the check-in waited in the terminal's outbox; recorded with the decision "
                                                                            "(`liveness.challenge.lapsed`)."),
) -> KioskDecision:
    kid = kiosk_only(dev, kiosk_id)
    if client_ref is not None:
        first = await submissions.claim(core, kid, client_ref)
        if first is not None:
            return KioskDecision.model_validate(first)
    try:
        try:
            data = [await read_upload(f, f"frame {i}") for i, f in enumerate(frames)]
            video = await read_upload(clip, "clip") if clip is not None else None
            d = await rec.verify(person_id, data, source=kid, actor=f"kiosk:{kid}", liveness=True, clip=video, challenge_id=challenge_id,
                                 offline_challenge=offline_challenge, lapsed_challenge_id=lapsed_challenge_id, made_at=made_at)
        except FaceInputError as e:
            raise await refused(core, f"kiosk:{kid}", "kiosk.checkin_bad_input", f"person:{person_id}", e) from None
    except BaseException:
        if client_ref is not None:  # no decision was made: the reference may be sent again
            await submissions.release(core, kid, client_ref)
        raise
    out = KioskDecision(**d.to_dict(), kiosk_id=kid)
    if client_ref is not None:
        await submissions.settle(core, kid, client_ref, out.model_dump(mode="json"))
    return out


class PairingIn(BaseModel):
    code: str = Field(min_length=8, max_length=12, description="The eight digits shown in the console (spaces and dashes ignored).")


class Paired(BaseModel):
    device_id: str
    name: str | None
    location: str | None
    key: str = Field(description="The kiosk's device key (dk_...): kept by the terminal, sent as X-Device-Key. Any earlier key stops working.")


@router.post("/pair", response_model=Paired, summary="A kiosk terminal trades a one-time pairing code for its key (no other authentication)")
async def pair(body: PairingIn, request: Request, core: CoreDep) -> Paired:
    return Paired.model_validate(await pairing.redeem(core, body.code, request.client.host if request.client else "?"))
