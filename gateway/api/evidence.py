"""Evidence catalogue (uploads and proceedings): search, details with the
custody log, Range-served playback, thumbnails and signed export manifests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from drivers.bodycam.manifest import load_or_create_key, public_key_b64, sign
from gateway.api.deps import CoreDep, Principal, Require, RowId, SessionDep, UtcTime
from gateway.api.ranges import file_response, serves_start
from gateway.api.scope import get_owned, owned
from gateway.db.models import Custody, Evidence
from gateway.evidence import confined

router = APIRouter(prefix="/api/evidence", tags=["evidence"])
Reader = Annotated[Principal, Require("evidence.read")]
Exporter = Annotated[Principal, Require("evidence.export")]
MEDIA_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska", ".ts": "video/mp2t", ".avi": "video/x-msvideo"}


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


def public(e: Evidence) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "state": e.state, "sha256": e.sha256, "size": e.size, "path": e.path, "filename": e.filename,
            "device_id": e.device_id, "officer": e.officer, "person_id": e.person_id, "case_ref": e.case_ref, "proceeding_id": e.proceeding_id,
            "recorded_at": _iso(e.recorded_at), "received_at": _iso(e.received_at), "media": e.media or {},
            "has_thumbnail": bool(e.thumbnail), "quarantine_reason": e.quarantine_reason}


def _custody(c: Custody) -> dict[str, Any]:
    return {"at": _iso(c.at), "action": c.action, "actor": c.actor, "details": c.details or {}}


class EvidencePublic(BaseModel):
    id: int
    kind: Literal["upload", "proceeding"]
    state: Literal["stored", "quarantined"]
    sha256: str
    size: int
    path: str = Field(description="Relative to the media folder.")
    filename: str | None
    device_id: str | None
    officer: str | None
    person_id: str | None
    case_ref: str | None
    proceeding_id: int | None
    recorded_at: datetime | None
    received_at: datetime
    media: dict[str, Any] = Field(description="Container, codecs, size, duration, creation time, GPS as probed.")
    has_thumbnail: bool
    quarantine_reason: str | None


class CustodyEntry(BaseModel):
    at: datetime
    action: str = Field(description="received, verified, viewed, exported, ...")
    actor: str
    details: dict[str, Any]


class EvidenceDetail(EvidencePublic):
    custody: list[CustodyEntry]


class SigningKey(BaseModel):
    algorithm: Literal["Ed25519"]
    public_key: str = Field(description="Base64 of the raw 32-byte key.")


class Signature(SigningKey):
    value: str = Field(description="Base64 Ed25519 signature.")
    signed: str = Field(description="What is signed: the canonical JSON of the manifest without `signature`.")


class SignedExport(BaseModel):
    """The export manifest exactly as signed (its values are kept as they were signed:
    times are the strings in the signed JSON)."""

    format: str
    exported_at: str
    exported_by: str
    evidence: dict[str, Any]
    file: dict[str, Any]
    custody: list[dict[str, Any]]
    signature: Signature


@router.get("", response_model=list[EvidencePublic], summary="Evidence, newest first; filters combine")
async def list_evidence(s: SessionDep, user: Reader, device_id: str | None = None, officer: str | None = None, person_id: str | None = None,
                        case_ref: str | None = None, kind: str | None = None, state: str | None = None, sha256: str | None = None,
                        since: UtcTime | None = None, until: UtcTime | None = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[EvidencePublic]:
    q = select(Evidence).where(owned(Evidence.unit_id, user))
    for col, value in ((Evidence.device_id, device_id), (Evidence.officer, officer), (Evidence.person_id, person_id), (Evidence.case_ref, case_ref),
                       (Evidence.kind, kind), (Evidence.state, state), (Evidence.sha256, sha256.lower() if sha256 else None)):
        if value is not None:
            q = q.where(col == value)
    if since:
        q = q.where(Evidence.recorded_at >= since)
    if until:
        q = q.where(Evidence.recorded_at <= until)
    rows = (await s.scalars(q.order_by(Evidence.recorded_at.desc(), Evidence.id.desc()).limit(limit))).all()
    return [EvidencePublic.model_validate(public(e)) for e in rows]


@router.get("/signing-key", response_model=SigningKey, summary="Ed25519 public key that signs export manifests")
async def signing_key(core: CoreDep, user: Reader) -> SigningKey:
    return SigningKey(algorithm="Ed25519", public_key=public_key_b64(load_or_create_key(core.config.gateway.data_dir)))


async def _get(s: Any, evidence_id: RowId, user: Principal) -> Evidence:
    return await get_owned(s, Evidence, evidence_id, user, "evidence")


@router.get("/{evidence_id}", response_model=EvidenceDetail, summary="One item with its media metadata and custody log")
async def get_evidence(evidence_id: RowId, s: SessionDep, user: Reader) -> EvidenceDetail:
    e = await _get(s, evidence_id, user)
    log = (await s.scalars(select(Custody).where(Custody.evidence_id == e.id).order_by(Custody.at, Custody.id))).all()
    return EvidenceDetail.model_validate({**public(e), "custody": [_custody(c) for c in log]})


def _file(core: Any, rel: str) -> Any:
    try:
        path = confined(core.media_dir, rel)
    except ValueError:
        raise HTTPException(404, "no such file") from None
    if not path.is_file():
        raise HTTPException(410, "the evidence file is missing; run `gateway evidence verify`")
    return path


@router.get("/{evidence_id}/file", response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content (Range)"}})
async def evidence_file(evidence_id: RowId, request: Request, s: SessionDep, core: CoreDep, user: Reader) -> FileResponse:
    e = await _get(s, evidence_id, user)
    if e.state != "stored":
        raise HTTPException(409, f"evidence is {e.state}: {e.quarantine_reason or ''}".strip())
    path = _file(core, e.path)
    response = file_response(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"), filename=e.filename or path.name,
                             content_disposition_type="inline")
    # A player fetches many ranges per viewing; the request that serves the file's start
    # (however its Range is written) is the one that marks a viewing in the custody log.
    if serves_start(request, response):
        async with core.audit.tx() as tx:
            tx.add(Custody(evidence_id=e.id, at=core.clock.now(), action="viewed", actor=user.username, details={"range": request.headers.get("range")}))
    return response


@router.get("/{evidence_id}/thumbnail.jpg", response_class=FileResponse, responses={200: {"content": {"image/jpeg": {}}}})
async def evidence_thumbnail(evidence_id: RowId, s: SessionDep, core: CoreDep, user: Reader) -> FileResponse:
    e = await _get(s, evidence_id, user)
    if not e.thumbnail:
        raise HTTPException(404, "no thumbnail for this evidence")
    return FileResponse(_file(core, e.thumbnail), media_type="image/jpeg")


@router.post("/{evidence_id}/export", response_model=SignedExport, summary="Signed (Ed25519) export manifest; adds an `exported` custody entry")
async def export_evidence(evidence_id: RowId, core: CoreDep, user: Exporter) -> SignedExport:
    async with core.audit.tx() as s:
        e = await _get(s, evidence_id, user)
        if e.state != "stored":
            raise HTTPException(409, f"evidence is {e.state}; quarantined files are not exported")
        now = core.clock.now()
        log = (await s.scalars(select(Custody).where(Custody.evidence_id == e.id).order_by(Custody.at, Custody.id))).all()
        manifest = {"format": "gateway-evidence-export/1", "exported_at": now.isoformat(), "exported_by": user.username,
                    "evidence": {k: v for k, v in public(e).items() if k not in ("has_thumbnail", "quarantine_reason")},
                    "file": {"sha256": e.sha256, "size": e.size, "url": f"/api/evidence/{e.id}/file"},
                    "custody": [_custody(c) for c in log] + [{"at": now.isoformat(), "action": "exported", "actor": user.username, "details": {}}]}
        signed = sign(load_or_create_key(core.config.gateway.data_dir), manifest)
        s.add(Custody(evidence_id=e.id, at=now, action="exported", actor=user.username, details={"signature": signed["signature"]["value"]}))
        await core.audit.add(s, user.username, "evidence.exported", f"evidence:{e.id}", {"sha256": e.sha256})
    return SignedExport.model_validate(signed)
