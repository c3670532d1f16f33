"""Remote check-in (issue 20, part 3): an officer sends a person a one-time link; the phone's
browser (/remote) answers a liveness challenge with its camera and sends its position; the
face is verified 1:1 and the position judged against the person's zones (gateway/kiosk/remote.py).

Officers: `/api/persons/{id}/checkin-links` (persons.write, the person in reach, else 404).
The phone: `/api/remote/...`, authenticated by the link's token alone, in the `X-Checkin-Token`
header (the link carries it in its fragment, which no server log sees)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, HTTPException, Request, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import CoreDep, Principal, RecognitionDep, Require, RowId, SessionDep, UtcTime
from gateway.api.faces import DecisionPublic, read_upload, refused
from gateway.api.kiosk import ChallengePublic
from gateway.api.scope import get_owned
from gateway.db.models import CheckinLink, Person
from gateway.kiosk import remote
from recognition.service import FaceInputError

router = APIRouter(tags=["remote check-in"])
Officer = Annotated[Principal, Require("persons.write")]
Token = Annotated[str | None, Header(alias=remote.HEADER, description="The token from the link's fragment (/remote#<token>).")]

LinkState = Literal["unused", "used", "expired", "revoked", "exhausted"]


class LinkIn(BaseModel):
    valid_minutes: int = Field(remote.DEFAULT_MINUTES, ge=1, le=remote.MAX_MINUTES, description="How long the link may be used.")
    note: str | None = Field(None, max_length=500, description="For the officers (shown in the list), never to the phone.")


class LinkPublic(BaseModel):
    id: int
    person_id: str
    note: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    state: LinkState = Field(description="unused; used (a decision was made); expired; revoked; exhausted (every attempt spent on retries).")
    attempts: int = Field(description="Check-ins sent with it so far (retries included).")
    max_attempts: int
    used_at: datetime | None
    result: str | None = Field(description="The last decision made with it (accepted, rejected, retry).")
    checkin_id: int | None = Field(description="The check-in of that decision.")
    revoked_at: datetime | None
    revoked_by: str | None


class LinkCreated(LinkPublic):
    url: str = Field(description="To send to the person: /remote#<token>. Shown once; the gateway keeps only the token's hash.")


class LinkForPhone(BaseModel):
    person_name: str | None
    expires_at: datetime
    attempts_left: int
    challenge_required: bool = Field(description="The check-in must answer a challenge (POST /api/remote/challenges).")


class ZoneJudgement(BaseModel):
    zone_id: str
    name: str | None
    kind: str
    alert_kind: str
    level: str | None
    depth_m: float | None = Field(description="How far on the wrong side of the border (<= 0: the right side); None: far outside.")
    state: Literal["ok", "border", "breach"]


class PositionVerdict(BaseModel):
    lat: float
    lon: float
    accuracy_m: float
    taken_at: datetime
    verdict: Literal["ok", "uncertain", "breach", "no_zones"]
    zones: list[ZoneJudgement]
    notes: list[str] = Field(description="Why the verdict is uncertain beyond the zones: accuracy too coarse, position not recent.")


class RemoteDecision(DecisionPublic):
    position: PositionVerdict
    link_state: LinkState
    attempts_left: int


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _url(request: Request, core: Any, token: str) -> str:
    base = core.config.gateway.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/remote#{token}"


async def _person(s: Any, person_id: str, user: Principal) -> Person:
    return await get_owned(s, Person, person_id, user, "person")


@router.post("/api/persons/{person_id}/checkin-links", response_model=LinkCreated, status_code=201,
             summary="A one-time remote check-in link for the person (the token is in the URL's fragment)")
async def create_link(person_id: str, body: LinkIn, user: Officer, s: SessionDep, core: CoreDep, rec: RecognitionDep, request: Request) -> LinkCreated:
    person = await _person(s, person_id, user)
    if not person.active:
        raise HTTPException(409, f"person {person_id} is no longer supervised")
    if len(rec.index.of_person(person_id)) == 0:  # the phone could not be verified: say so now, not on the phone
        raise HTTPException(409, f"person {person_id} has no enrolled face photos: enroll one before sending a check-in link")
    link, token = await remote.create(core, person, user.username, body.valid_minutes, body.note)
    return LinkCreated(**remote.public(link, core.clock.now()), url=_url(request, core, token))


@router.get("/api/persons/{person_id}/checkin-links", response_model=list[LinkPublic], summary="The person's remote check-in links, newest first")
async def list_links(person_id: str, user: Officer, s: SessionDep, core: CoreDep) -> list[LinkPublic]:
    await _person(s, person_id, user)
    rows = (await s.scalars(select(CheckinLink).where(CheckinLink.person_id == person_id).order_by(CheckinLink.id.desc()).limit(100))).all()
    now = core.clock.now()
    return [LinkPublic(**remote.public(r, now)) for r in rows]


@router.delete("/api/persons/{person_id}/checkin-links/{link_id}", response_model=LinkPublic, summary="Withdraw a link that was not used")
async def revoke_link(person_id: str, link_id: RowId, user: Officer, s: SessionDep, core: CoreDep) -> LinkPublic:
    await _person(s, person_id, user)
    link = await remote.revoke(core, person_id, link_id, user.username)
    return LinkPublic(**remote.public(link, core.clock.now()))


# -- the phone -----------------------------------------------------------------
@router.get("/api/remote/link", response_model=LinkForPhone, summary="The phone: what this link is for (token in X-Checkin-Token)")
async def link_info(request: Request, core: CoreDep, token: Token = None) -> LinkForPhone:
    link = await remote.open_link(core, token, _client(request))
    return LinkForPhone(person_name=await remote.person_name(core, link.person_id), expires_at=link.expires_at,
                        attempts_left=max(0, remote.MAX_ATTEMPTS - link.attempts),
                        challenge_required=core.config.thresholds.faces.active_liveness.required)


@router.post("/api/remote/challenges", response_model=ChallengePublic, summary="The phone: a liveness challenge for the link's person")
async def remote_challenge(request: Request, core: CoreDep, rec: RecognitionDep, token: Token = None) -> ChallengePublic:
    link = await remote.open_link(core, token, _client(request))
    source = remote.source_of(link.id)
    try:
        c = await rec.issue_challenge(source, link.person_id, actor=source)
    except FaceInputError as e:
        raise await refused(core, source, "remote.challenge_bad_input", f"person:{link.person_id}", e) from None
    return ChallengePublic.model_validate(c, from_attributes=True)


@router.post("/api/remote/checkins", response_model=RemoteDecision, summary="The phone: frames answering the challenge, and where the phone is")
async def remote_checkin(
    request: Request, core: CoreDep, rec: RecognitionDep,
    lat: float = Form(..., ge=-90, le=90), lon: float = Form(..., ge=-180, le=180),
    accuracy_m: float = Form(..., ge=0, le=100_000, description="The browser's accuracy radius (GeolocationCoordinates.accuracy)."),
    taken_at: UtcTime = Form(..., description="When the browser took the position (GeolocationPosition.timestamp), ISO 8601."),
    frames: list[UploadFile] = File(default_factory=list, description="The frames the challenge wants, oldest first."),
    challenge_id: str | None = Form(None, max_length=64),
    token: Token = None,
) -> RemoteDecision:
    client = _client(request)
    link = await remote.open_link(core, token, client)
    await remote.claim(core, link, client)
    source = remote.source_of(link.id)
    result: str | None = None
    checkin_id: int | None = None
    try:
        position = await remote.judge(core, link.person_id, lat, lon, accuracy_m, taken_at)
        try:
            data = [await read_upload(f, f"frame {i}") for i, f in enumerate(frames)]
            d = await rec.verify(link.person_id, data, source=source, actor=source, liveness=True, challenge_id=challenge_id, position=position)
        except FaceInputError as e:
            raise await refused(core, source, "remote.checkin_bad_input", f"person:{link.person_id}", e) from None
        result, checkin_id = d.result, d.checkin_id
    finally:
        await remote.settle(core, link.id, result, checkin_id)
    assert checkin_id is not None
    await core.audit.log(source, "remote.checkin", f"person:{link.person_id}",
                         {"checkin_id": checkin_id, "result": result, "verdict": position["verdict"], "lat": lat, "lon": lon, "accuracy_m": accuracy_m})
    if position["verdict"] == "breach" and result in ("accepted", "rejected"):
        await remote.raise_breach(core, link, checkin_id, position)
    attempts = link.attempts + 1
    state = "used" if result in ("accepted", "rejected") else "exhausted" if attempts >= remote.MAX_ATTEMPTS else "unused"
    return RemoteDecision(**d.to_dict(), position=PositionVerdict.model_validate(position), link_state=state,
                          attempts_left=0 if state == "used" else max(0, remote.MAX_ATTEMPTS - attempts))

