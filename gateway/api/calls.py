"""Remote video sessions (streams/calls.py, docs/calls.md): officers set them up, join,
verify identities and hang up; parties with a join link take part through `/call`.

Signalling is one request per join (SDP offer in, SDP answer out, as WHEP does). A session
runs on one node; a request about it reaching another node is passed on to that node
(`on_its_node`), so a session works whichever node the parties reach.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi import Path as FPath
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from gateway.api.deps import (
    CallsDep,
    CoreDep,
    CurrentDevice,
    Principal,
    Require,
    SessionDep,
)
from gateway.api.kiosk import kiosk_only
from gateway.api.ranges import file_response, serves_start
from gateway.api.relay import to_node
from gateway.api.scope import device_in_reach, get_owned, owned
from gateway.db.models import CallParty, CallSession, Device, Person
from gateway.evidence import confined
from streams.calls import CallError, Calls, Live, PartySpec, token_hash

router = APIRouter(prefix="/api/calls", tags=["calls"])
links = APIRouter(prefix="/api/call-link", tags=["calls"])
Writer = Annotated[Principal, Require("proceedings.write")]
Reader = Annotated[Principal, Require("read")]

Kind = Literal["reception", "announcement", "warning", "talk", "mediation", "education", "release"]
TOKEN_HEADER = "X-Call-Token"


class PartyIn(BaseModel):
    model_config = {"extra": "forbid"}
    role: Literal["kiosk", "link"] = Field(description="kiosk: a paired kiosk terminal, called; link: anyone with the join link (a phone, a PC).")
    device_id: str | None = Field(None, max_length=64, description="The kiosk (role kiosk).")
    label: str | None = Field(None, max_length=100, description="How the party is named in the session (调解员, 当事人甲...).")
    person_id: str | None = Field(None, max_length=64, description="A supervised person: checked by face during the session.")

    @model_validator(mode="after")
    def _kiosk_named(self) -> PartyIn:
        if self.role == "kiosk" and not self.device_id:
            raise ValueError("a kiosk party names its device_id")
        if self.role == "link" and not self.label:
            raise ValueError("a link party has a label")
        return self


class CallStart(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Kind = Field(description="talk (谈话), mediation (调解), education (教育), ... as proceedings.")
    person_id: str | None = Field(None, max_length=64, description="The supervised person the session is about (its proceeding's person).")
    case_ref: str | None = Field(None, max_length=100)
    parties: list[PartyIn] = Field(min_length=1, max_length=8, description="Everyone but the officer, who joins from the console.")
    checks: bool | None = Field(None, description="Identity checks at random moments (default: for education sessions).")


class CheckPublic(BaseModel):
    outcome: Literal["present", "impostor", "absent", "uncertain"]
    distance: float | None
    reason: str
    at: datetime
    why: str = Field(description="start, random or officer")


class PartyPublic(BaseModel):
    id: str
    role: Literal["officer", "kiosk", "link"]
    label: str
    person_id: str | None
    device_id: str | None
    username: str | None
    state: Literal["invited", "connected", "dropped", "left"]
    joined_at: datetime | None
    gaps: list[dict[str, Any]] = Field(description="While the party was dropped: started_at, ended_at, reason.")
    last_check: CheckPublic | None = None


class CallPublic(BaseModel):
    id: str
    kind: str
    state: Literal["ringing", "active", "ended"]
    person_id: str | None
    case_ref: str | None
    proceeding_id: int | None
    checks: bool
    created_by: str
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    node_id: str
    parties: list[PartyPublic]


class JoinLink(BaseModel):
    party_id: str
    label: str
    url: str = Field(description="Send it to the party: the token is in the fragment (#...), which browsers never send to a server.")


class CallCreated(BaseModel):
    session: CallPublic
    links: list[JoinLink] = Field(description="The join links, shown once (stored hashed).")


class Offer(BaseModel):
    sdp: str = Field(min_length=10, max_length=100_000, description="The browser's SDP offer (ICE candidates gathered).")


class Answer(BaseModel):
    session_id: str
    party_id: str
    sdp: str


class CheckResult(BaseModel):
    party_id: str
    label: str
    person_id: str | None
    outcome: Literal["present", "impostor", "absent", "uncertain"]
    distance: float | None
    reason: str
    at: datetime


class Ended(BaseModel):
    session_id: str
    proceeding_id: int


class LinkInfo(BaseModel):
    session_id: str
    party_id: str
    kind: str
    label: str
    state: Literal["ringing", "active", "ended"]
    officer: str | None


def failed(e: CallError) -> HTTPException:
    return HTTPException(e.status, str(e))


def public_live(live: Live) -> CallPublic:
    return CallPublic(id=live.id, kind=live.kind, state="ringing" if live.state == "ringing" else "active", person_id=live.person_id,
                      case_ref=live.case_ref, proceeding_id=live.proceeding_id, checks=live.checks, created_by=live.created_by,
                      created_at=live.created_at, ended_at=None, end_reason=None, node_id="",
                      parties=[PartyPublic.model_validate(p.summary()) for p in live.parties.values()])


async def public_row(s: Any, row: CallSession, calls: Calls) -> CallPublic:
    if row.id in calls.live:
        return public_live(calls.live[row.id]).model_copy(update={"node_id": row.node_id})
    parties = (await s.scalars(select(CallParty).where(CallParty.session_id == row.id))).all()
    return CallPublic(id=row.id, kind=row.kind, state=row.state, person_id=row.person_id, case_ref=row.case_ref,  # type: ignore[arg-type]
                      proceeding_id=row.proceeding_id, checks=row.checks, created_by=row.created_by, created_at=row.created_at,
                      ended_at=row.ended_at, end_reason=row.end_reason, node_id=row.node_id,
                      parties=[PartyPublic(id=p.id, role=p.role, label=p.label, person_id=p.person_id, device_id=p.device_id,  # type: ignore[arg-type]
                                           username=p.username, state=p.state, joined_at=p.joined_at, gaps=p.gaps or []) for p in parties])


async def on_its_node(request: Request, core: Any, calls: Calls, session_id: str, body: bytes | None = None) -> Response | None:
    """The answer of the node that runs the session, when it is not this one; None when it is
    this one (or the session is not running anywhere: the caller says so)."""
    if session_id in calls.live:
        return None
    async with core.db.session() as s:
        row = await s.get(CallSession, session_id)
    if row is None or row.state == "ended" or row.node_id == core.cluster.node_id:
        return None
    return await to_node(request, core, row.node_id, request.url.path, body)


async def owned_call(call_id: Annotated[str, FPath(max_length=32)], s: SessionDep, user: Reader) -> CallSession:
    """The session, when it is in the user's reach (else 404, before the body is read)."""
    return await get_owned(s, CallSession, call_id, user, "session")


OwnedCall = Annotated[CallSession, Depends(owned_call)]


@router.post("", status_code=201, response_model=CallCreated, summary="Set up a session: the officer calls a kiosk and/or sends join links")
async def create(body: CallStart, request: Request, s: SessionDep, calls: CallsDep, user: Writer) -> CallCreated:
    if body.person_id is not None:
        person = await get_owned(s, Person, body.person_id, user, "person")
    for p in body.parties:
        if p.device_id and not await device_in_reach(s, user, p.device_id):
            raise HTTPException(404, f"no kiosk {p.device_id}")
        if p.person_id is not None:
            await get_owned(s, Person, p.person_id, user, "person")
    specs = []
    for p in body.parties:
        label = p.label
        if p.role == "kiosk" and not label:
            dev = await s.get(Device, p.device_id)
            label = (dev.name if dev else None) or p.device_id
        specs.append(PartySpec(p.role, label or p.role, p.person_id or (body.person_id if p.role == "kiosk" else None), p.device_id))
    unit = person.unit_id if body.person_id is not None else user.unit_id
    try:
        live, tokens = await calls.create(kind=body.kind, person_id=body.person_id, case_ref=body.case_ref, unit_id=unit, created_by=user.username,
                                          officer=(user.username, user.username), parties=specs,
                                          checks=body.checks if body.checks is not None else body.kind == "education")
    except CallError as e:
        raise failed(e) from None
    base = str(request.base_url).rstrip("/")
    out = [JoinLink(party_id=pid, label=live.parties[pid].label, url=f"{base}/call#{tok}") for pid, tok in tokens.items()]
    return CallCreated(session=public_live(live).model_copy(update={"node_id": calls.node_id}), links=out)


@router.get("", response_model=list[CallPublic], summary="Sessions: running ones first, then the newest ended")
async def list_calls(s: SessionDep, calls: CallsDep, user: Reader, state: Literal["ringing", "active", "ended"] | None = None,
                     limit: int = Query(100, ge=1, le=500)) -> list[CallPublic]:
    q = select(CallSession).where(owned(CallSession.unit_id, user)).order_by(CallSession.created_at.desc()).limit(limit)
    if state is not None:
        q = q.where(CallSession.state == state)
    rows = (await s.scalars(q)).all()
    out = [await public_row(s, r, calls) for r in rows]
    return sorted(out, key=lambda c: c.state == "ended")


@router.get("/{call_id}", response_model=CallPublic)
async def get_one(row: OwnedCall, s: SessionDep, calls: CallsDep) -> CallPublic:
    return await public_row(s, row, calls)


@router.post("/{call_id}/answer", response_model=CallPublic, summary="Take a call a kiosk made (it rang on the consoles)")
async def answer(user: Writer, row: OwnedCall, request: Request, core: CoreDep, calls: CallsDep) -> Any:
    call_id = row.id
    if (elsewhere := await on_its_node(request, core, calls, call_id)) is not None:
        return elsewhere
    try:
        await calls.answer(call_id, user.username, user.username)
    except CallError as e:
        raise failed(e) from None
    return public_live(calls.get(call_id)).model_copy(update={"node_id": calls.node_id})


@router.post("/{call_id}/join", response_model=Answer, summary="The officer's browser joins: SDP offer in, answer out")
async def join(user: Writer, row: OwnedCall, body: Offer, request: Request, core: CoreDep, calls: CallsDep) -> Any:
    call_id = row.id
    if (elsewhere := await on_its_node(request, core, calls, call_id, await request.body())) is not None:
        return elsewhere
    try:
        party = calls.add_officer(call_id, user.username, user.username)
        if calls.get(call_id).state == "ringing":
            await calls.answer(call_id, user.username, user.username)
        sdp = await calls.join(call_id, party.id, body.sdp)
    except CallError as e:
        raise failed(e) from None
    except ValueError as e:
        raise HTTPException(409, str(e)) from None
    return Answer(session_id=call_id, party_id=party.id, sdp=sdp)


@router.post("/{call_id}/verify", response_model=list[CheckResult], summary="Start verification: check every supervised party's face now")
async def verify(user: Writer, row: OwnedCall, request: Request, core: CoreDep, calls: CallsDep) -> Any:
    call_id = row.id
    if (elsewhere := await on_its_node(request, core, calls, call_id)) is not None:
        return elsewhere
    try:
        return [CheckResult.model_validate(r) for r in await calls.check(call_id, "officer")]
    except CallError as e:
        raise failed(e) from None


@router.post("/{call_id}/hangup", response_model=Ended, summary="End the session: its recording is sealed as the session's proceeding")
async def hangup(user: Writer, row: OwnedCall, request: Request, core: CoreDep, calls: CallsDep) -> Any:
    call_id = row.id
    if (elsewhere := await on_its_node(request, core, calls, call_id)) is not None:
        return elsewhere
    try:
        return Ended(session_id=call_id, proceeding_id=await calls.hangup(call_id, user.username))
    except CallError as e:
        raise failed(e) from None


@router.get("/{call_id}/recording", response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content (Range)"}})
async def recording(row: OwnedCall, request: Request, core: CoreDep,
                    user: Annotated[Principal, Require("evidence.read")]) -> FileResponse:
    """The session's recording (every party in one picture, and the mix), once the session has
    ended: evidence, so only roles that may read evidence get it; each viewing is audited."""
    if row.state != "ended" or not row.path:
        raise HTTPException(409, "the session is still running: its recording is sealed when it ends")
    try:
        path = confined(core.media_dir, row.path)
    except ValueError:
        raise HTTPException(404, "no such recording") from None
    if not path.is_file():
        raise HTTPException(410, "the recording file is gone")
    response = file_response(path, media_type="video/mp4", filename=f"session-{row.id}.mp4", content_disposition_type="inline")
    if serves_start(request, response):
        await core.audit.log(user.username, "recording.viewed", f"call:{row.id}", {"proceeding_id": row.proceeding_id, "range": request.headers.get("range")})
    return response


# -- parties with a join link (no account: the link's token is their credential) ------------

class Elsewhere(Exception):
    """The link's session runs on another node: its answer."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def by_token(request: Request, core: Any, calls: Calls, token: str) -> tuple[Any, Any]:
    addr = f"addr:{request.client.host if request.client else '?'}"
    if not core.login_limiter.allowed(addr):
        raise HTTPException(429, "too many attempts; wait and try again", headers={"Retry-After": str(core.login_limiter.retry_after(addr))})
    async with core.db.session() as s:
        party = await s.scalar(select(CallParty).where(CallParty.token_sha256 == token_hash(token)))
    if party is not None and party.session_id not in calls.live:
        if (elsewhere := await on_its_node(request, core, calls, party.session_id, await request.body())) is not None:
            raise Elsewhere(elsewhere)
    try:
        return await calls.party_by_token(token)
    except CallError as e:
        if e.status == 404:
            core.login_limiter.record(addr)  # guessing links costs like guessing passwords
        raise failed(e) from None


def link_token(token: Annotated[str | None, Header(alias=TOKEN_HEADER, description="The token from the join link's fragment.")] = None) -> str:
    """The link's token is the party's credential: without it, 401 (before anything else is read)."""
    if not token or len(token) > 100:
        raise HTTPException(401, f"this route needs the join link's token in {TOKEN_HEADER}", headers={"WWW-Authenticate": TOKEN_HEADER})
    return token


Token = Annotated[str, Depends(link_token)]


@links.get("", response_model=LinkInfo, summary="What a join link is for (the join page shows it before asking for the camera)")
async def link_info(request: Request, core: CoreDep, calls: CallsDep, token: Token) -> Any:
    try:
        live, party = await by_token(request, core, calls, token)
    except Elsewhere as e:
        return e.response
    officer = next((p.label for p in live.parties.values() if p.role == "officer"), None)
    return LinkInfo(session_id=live.id, party_id=party.id, kind=live.kind, label=party.label, state="ringing" if live.state == "ringing" else "active",
                    officer=officer)


@links.post("/join", response_model=Answer, summary="A party with a join link joins (again, after a drop): SDP offer in, answer out")
async def link_join(body: Offer, request: Request, core: CoreDep, calls: CallsDep, token: Token) -> Any:
    try:
        live, party = await by_token(request, core, calls, token)
    except Elsewhere as e:
        return e.response
    try:
        return Answer(session_id=live.id, party_id=party.id, sdp=await calls.join(live.id, party.id, body.sdp))
    except CallError as e:
        raise failed(e) from None


@links.post("/leave", status_code=204, summary="The party hangs up (the session goes on with the others)")
async def link_leave(request: Request, core: CoreDep, calls: CallsDep, token: Token) -> Response:
    try:
        live, party = await by_token(request, core, calls, token)
    except Elsewhere as e:
        return e.response
    await calls.leave(live.id, party.id)
    return Response(status_code=204)


# -- kiosks: calls to a kiosk ring on it; a kiosk calls the duty officer --------------------

kiosk_calls = APIRouter(prefix="/api/kiosk/calls", tags=["kiosk"])


class IncomingCall(BaseModel):
    session_id: str
    party_id: str
    kind: str
    caller: str | None = Field(description="Who calls (the officer's name), when an officer set the session up.")


class KioskCalls(BaseModel):
    call: IncomingCall | None = Field(description="A session waiting for this kiosk to join; null when none.")


class KioskCallStart(BaseModel):
    model_config = {"extra": "forbid"}
    person_id: str | None = Field(None, max_length=64, description="Who is at the terminal, if known.")


@kiosk_calls.get("", response_model=KioskCalls, summary="Is a session ringing for this kiosk? (polled by the kiosk app)")
async def kiosk_ringing(dev: CurrentDevice, calls: CallsDep) -> KioskCalls:
    found = calls.ringing_for(kiosk_only(dev))
    if found is None:
        return KioskCalls(call=None)
    live, party = found
    caller = next((p.label for p in live.parties.values() if p.role == "officer"), None)
    return KioskCalls(call=IncomingCall(session_id=live.id, party_id=party.id, kind=live.kind, caller=caller))


@kiosk_calls.post("", status_code=201, response_model=IncomingCall, summary="The terminal calls the duty officer: a video session rings on the consoles")
async def kiosk_call(body: KioskCallStart, dev: CurrentDevice, s: SessionDep, calls: CallsDep) -> IncomingCall:
    kid = kiosk_only(dev)
    row = await s.get(Device, kid)
    person = await s.get(Person, body.person_id) if body.person_id else None
    unit = person.unit_id if person is not None else (row.unit_id if row is not None else "root")
    label = (row.name if row is not None else None) or kid
    try:
        live, _ = await calls.create(kind="talk", person_id=person.id if person else None, case_ref=None, unit_id=unit, created_by=f"kiosk:{kid}",
                                     officer=None, parties=[PartySpec("kiosk", label, person.id if person else None, kid)], checks=False, ringing=True)
    except CallError as e:
        raise failed(e) from None
    party = next(iter(live.parties.values()))
    return IncomingCall(session_id=live.id, party_id=party.id, kind=live.kind, caller=None)


def _kiosk_party(calls: Calls, session_id: str, kiosk_id: str) -> str:
    live = calls.get(session_id)
    party = next((p for p in live.parties.values() if p.role == "kiosk" and p.device_id == kiosk_id), None)
    if party is None:
        raise CallError(404, "this kiosk is not a party of that session")
    return party.id


@kiosk_calls.post("/{call_id}/join", response_model=Answer, summary="The kiosk joins the session it was called to (or made)")
async def kiosk_join(call_id: str, body: Offer, request: Request, core: CoreDep, dev: CurrentDevice, calls: CallsDep) -> Any:
    kid = kiosk_only(dev)
    if (elsewhere := await on_its_node(request, core, calls, call_id, await request.body())) is not None:
        return elsewhere
    try:
        pid = _kiosk_party(calls, call_id, kid)
        return Answer(session_id=call_id, party_id=pid, sdp=await calls.join(call_id, pid, body.sdp))
    except CallError as e:
        raise failed(e) from None


@kiosk_calls.post("/{call_id}/leave", status_code=204, summary="The kiosk hangs up")
async def kiosk_leave(call_id: str, request: Request, core: CoreDep, dev: CurrentDevice, calls: CallsDep) -> Response:
    kid = kiosk_only(dev)
    if (elsewhere := await on_its_node(request, core, calls, call_id)) is not None:
        return elsewhere
    try:
        await calls.leave(call_id, _kiosk_party(calls, call_id, kid))
    except CallError as e:
        raise failed(e) from None
    return Response(status_code=204)
