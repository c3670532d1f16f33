"""tus 1.0 endpoint at /api/uploads/ (CONTRACTS.md): authentication and HTTP
framing here, protocol rules and upload sessions in drivers/bodycam.

A body-cam authenticates with its device key (X-Device-Key or Bearer dk_...);
a user token with `uploads.write` may upload on behalf of a registered
body-cam (the docking station's operator). Request bodies are streamed
straight to the upload session, never read into memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from drivers.bodycam.service import Interrupted, Uploader, UploadSessions
from drivers.bodycam.tus import (
    CHECKSUM_ALGORITHMS,
    EXTENSIONS,
    OFFSET_CONTENT_TYPE,
    TUS_VERSION,
    TusError,
    http_date,
    parse_checksum,
    parse_length,
    parse_metadata,
    parse_offset,
)
from gateway.api.deps import (
    CoreDep,
    Principal,
    Require,
    UploadsDep,
    _bearer,
    current_device,
    current_user,
)
from gateway.api.scope import visible_devices
from gateway.auth.roles import allowed
from gateway.auth.tokens import DEVICE_KEY_PREFIX

router = APIRouter(prefix="/api/uploads", tags=["uploads"])
# A stalled 4G link must not hold an upload's lock forever: after this long
# without a byte, the PATCH ends and keeps what arrived.
IDLE_TIMEOUT_S = 60.0


async def uploader(request: Request, core: CoreDep) -> Uploader:
    """Device key first (body-cams), else a user token with uploads.write."""
    key = request.headers.get("x-device-key") or _bearer(request.headers.get("authorization"))
    if key and key.startswith(DEVICE_KEY_PREFIX):
        dev = await current_device(request, core)
        if dev.kind != "bodycam":
            raise HTTPException(403, f"{dev.kind} devices may not upload", headers={"Tus-Resumable": TUS_VERSION})
        return Uploader(actor=f"device:{dev.id}", device_id=dev.id)
    try:
        user: Principal = await current_user(request, core)
    except HTTPException as e:
        raise HTTPException(e.status_code, e.detail, headers={**(e.headers or {}), "Tus-Resumable": TUS_VERSION}) from None
    if not allowed(user.role, "uploads.write"):
        raise HTTPException(403, f"role {user.role} may not uploads.write", headers={"Tus-Resumable": TUS_VERSION})
    async with core.db.session() as s:
        visible = await visible_devices(s, user)
    return Uploader(actor=user.username, device_id=None, devices=frozenset(visible) if visible is not None else None)


UploaderDep = Annotated[Uploader, Depends(uploader)]


def _tus(status: int, headers: dict[str, str] | None = None, body: str | None = None) -> Response:
    h = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **(headers or {})}
    # text/plain even without a body: the answers of the tus routes have one media type
    return Response(body or b"", status_code=status, headers=h, media_type="text/plain; charset=utf-8")


def _error(sessions: UploadSessions, e: TusError, headers: dict[str, str] | None = None) -> Response:
    sessions.refuse(e)
    return _tus(e.status, headers, e.message)


def _version_ok(request: Request) -> Response | None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        return _tus(412, {"Tus-Version": TUS_VERSION}, f"Tus-Resumable must be {TUS_VERSION}")
    return None


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body; `Interrupted` when the client goes away or sends nothing for
    IDLE_TIMEOUT_S while we wait for it. One timer per body, re-armed from a timestamp:
    an `asyncio.timeout` around every chunk cost more loop time than the chunk itself."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    idle_s = IDLE_TIMEOUT_S
    waiting_since: float | None = None  # set only while awaiting the client
    expired = False
    timer: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal timer, expired
        since = waiting_since
        if since is not None and loop.time() - since >= idle_s:
            expired = True
            task.cancel()
            return
        timer = loop.call_at((since if since is not None else loop.time()) + idle_s, check)

    timer = loop.call_at(loop.time() + idle_s, check)
    stream = request.stream().__aiter__()
    try:
        while True:
            waiting_since = loop.time()
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except ClientDisconnect:
                raise Interrupted from None
            except asyncio.CancelledError:
                if expired and task.uncancel() == 0:
                    raise Interrupted from None
                raise
            waiting_since = None
            if chunk:
                yield chunk
    finally:
        timer.cancel()


def _location(upload_id: str) -> str:
    return f"/api/uploads/{upload_id}"


@router.options("/", status_code=204, summary="tus discovery: version, extensions, limits")
async def tus_options(who: UploaderDep, core: CoreDep) -> Response:
    return Response(status_code=204, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(core.config.uploads.max_size_bytes), "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS)})


@router.post("/", status_code=201, summary="tus creation (and creation-with-upload)",
             responses={201: {"description": "Created; Location names the upload"}, 400: {}, 403: {}, 412: {}, 413: {}, 460: {"description": "Checksum mismatch"},
                        507: {"description": "The disk is full"}})
async def tus_create(request: Request, who: UploaderDep, core: CoreDep, sessions: UploadsDep) -> Response:
    if (bad := _version_ok(request)) is not None:
        return bad
    try:
        if request.headers.get("upload-defer-length") is not None:
            raise TusError(400, "creation-defer-length is not supported; send Upload-Length", "defer_length")
        length = parse_length(request.headers.get("upload-length"), "Upload-Length", core.config.uploads.max_size_bytes)
        meta = parse_metadata(request.headers.get("upload-metadata"))
        with_body = request.headers.get("content-type", "").split(";")[0].strip().lower() == OFFSET_CONTENT_TYPE
        checksum = parse_checksum(request.headers.get("upload-checksum")) if with_body else None
        row = await sessions.create(who, length, meta)
    except TusError as e:
        return _error(sessions, e)
    headers = {"Location": _location(row.id), "Upload-Expires": http_date(row.expires_at)}
    if with_body:
        try:
            row = await sessions.patch(row.id, who, 0, checksum, _body(request))
        except TusError as e:
            return _error(sessions, e, headers)
        headers["Upload-Offset"] = str(row.offset)
        if row.state == "receiving":
            headers["Upload-Expires"] = http_date(row.expires_at)
    return _tus(201, headers)


class UploadInFlight(BaseModel):
    id: str
    device_id: str
    filename: str | None
    offset: int = Field(description="Bytes received and durable.")
    length: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime = Field(description="Removed if not resumed by then.")


@router.get("/", response_model=list[UploadInFlight], summary="Uploads in flight (console progress)")
async def in_flight(sessions: UploadsDep, core: CoreDep, user: Annotated[Principal, Require("read")],
                    limit: Annotated[int, Query(ge=1, le=1000, description="Oldest first.")] = 200) -> list[UploadInFlight]:
    async with core.db.session() as s:
        visible = await visible_devices(s, user)
    return [UploadInFlight.model_validate(u) for u in await sessions.in_flight(limit, visible)]


@router.head("/{upload_id}", summary="tus: current offset")
async def tus_head(upload_id: str, request: Request, who: UploaderDep, sessions: UploadsDep) -> Response:
    if _version_ok(request) is not None:
        return _tus(412, {"Tus-Version": TUS_VERSION})
    try:
        row = await sessions.head(upload_id, who)
    except TusError as e:
        sessions.refuse(e)
        return _tus(e.status)  # HEAD answers carry no body
    headers = {"Upload-Offset": str(row.offset), "Upload-Length": str(row.length)}
    if row.state == "receiving":
        headers["Upload-Expires"] = http_date(row.expires_at)
    meta = ",".join(f"{k} {v}" for k, v in _encoded_meta(row.meta or {}).items())
    if meta:
        headers["Upload-Metadata"] = meta
    return _tus(200, headers)


def _encoded_meta(meta: dict[str, str]) -> dict[str, str]:
    import base64

    return {k: base64.b64encode(v.encode()).decode() for k, v in meta.items() if v}


@router.patch("/{upload_id}", status_code=204, summary="tus: append bytes at Upload-Offset",
              responses={204: {}, 409: {"description": "Offset mismatch"}, 410: {"description": "Terminated or expired"}, 415: {}, 460: {"description": "Checksum mismatch"},
                         507: {"description": "The disk is full: the chunk was not stored (the offset did not move)"}})
async def tus_patch(upload_id: str, request: Request, who: UploaderDep, sessions: UploadsDep) -> Response:
    if (bad := _version_ok(request)) is not None:
        return bad
    try:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
            raise TusError(415, f"Content-Type must be {OFFSET_CONTENT_TYPE}", "content_type")
        offset = parse_offset(request.headers.get("upload-offset"))
        checksum = parse_checksum(request.headers.get("upload-checksum"))
        row = await sessions.patch(upload_id, who, offset, checksum, _body(request))
    except TusError as e:
        return _error(sessions, e)
    headers = {"Upload-Offset": str(row.offset)}
    if row.state == "receiving":
        headers["Upload-Expires"] = http_date(row.expires_at)
    return _tus(204, headers)


@router.delete("/{upload_id}", status_code=204, summary="tus termination")
async def tus_delete(upload_id: str, request: Request, who: UploaderDep, sessions: UploadsDep) -> Response:
    if (bad := _version_ok(request)) is not None:
        return bad
    try:
        await sessions.terminate(upload_id, who)
    except TusError as e:
        return _error(sessions, e)
    return _tus(204)
