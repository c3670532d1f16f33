"""Dependencies shared by every router.

    async def route(user: CurrentUser, s: SessionDep, core: CoreDep): ...
    @router.post(..., dependencies=[Require("zones.write")])
    async def route(user: Annotated[Principal, Require("zones.write")]): ...
    async def route(cameras: CamerasDep): ...   # an area, typed; 503 when it is not running
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Path, Request, WebSocket, status
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncSession

from drivers.bodycam.service import UploadSessions
from drivers.camera import CameraArea
from drivers.gps.driver import TrackerDriver
from drivers.kiosk.session import KioskDriver
from gateway.assembly import Areas
from gateway.auth.roles import allowed
from gateway.auth.tokens import DEVICE_KEY_PREFIX, device_key_matches, hash_device_key
from gateway.clock import as_utc
from gateway.core import Core
from gateway.db.models import Device, User
from gateway.units import ROOT, ROOT_PATH, reach_of
from recognition.service import Recognition
from streams.calls import Calls

# A database id in a path: bounded, so a value beyond 64 bits is a 422, not the database
# driver's OverflowError (a 500)
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
# A time in a query (since, until): one given without an offset is read as UTC, the same on
# every route (the database takes aware times only: a naive one was a 500)
UtcTime = Annotated[datetime, AfterValidator(as_utc)]

COOKIE = "gw_session"
CSRF_HEADER = "x-requested-with"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Principal:
    id: int
    username: str
    role: str
    unit_id: str = ROOT
    # the path of the user's unit: what they see and act on (gateway/units.py, `within`)
    reach: str = ROOT_PATH


@dataclass(frozen=True)
class DevicePrincipal:
    id: str
    kind: str
    person_id: str | None


def get_core(request: Request) -> Core:
    return request.app.state.core  # type: ignore[no-any-return]


CoreDep = Annotated[Core, Depends(get_core)]


def get_areas(request: Request) -> Areas:
    return request.app.state.areas  # type: ignore[no-any-return]


A = TypeVar("A")


def _running(area: A | None, what: str) -> A:
    if area is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{what} is not running")
    return area


def get_cameras(request: Request) -> CameraArea:
    return _running(get_areas(request).cameras, "the cameras area")


def get_recognition(request: Request) -> Recognition:
    return _running(get_areas(request).recognition, "face recognition")


def get_kiosks(request: Request) -> KioskDriver:
    return _running(get_areas(request).kiosks, "the kiosk driver")


def get_calls(request: Request) -> Calls:
    return _running(get_areas(request).calls, "remote video sessions")


def get_uploads(request: Request) -> UploadSessions:
    return _running(get_areas(request).uploads, "the uploads area")


def get_trackers(request: Request) -> TrackerDriver:
    return _running(get_areas(request).trackers, "the trackers area")


CamerasDep = Annotated[CameraArea, Depends(get_cameras)]
RecognitionDep = Annotated[Recognition, Depends(get_recognition)]
KiosksDep = Annotated[KioskDriver, Depends(get_kiosks)]
UploadsDep = Annotated[UploadSessions, Depends(get_uploads)]
CallsDep = Annotated[Calls, Depends(get_calls)]


async def get_session(core: CoreDep) -> AsyncIterator[AsyncSession]:
    async with core.db.session() as s:
        yield s


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_UNAUTHORIZED = HTTPException(status.HTTP_401_UNAUTHORIZED, "authentication required", headers={"WWW-Authenticate": "Bearer"})


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


async def principal_from_token(core: Core, token: str) -> Principal | None:
    claims = core.signer.verify(token)
    if claims is None:
        return None
    async with core.db.session() as s:
        user = await s.get(User, claims.user_id)
        if user is None or user.disabled or user.token_version != claims.version:
            return None
        reach = await reach_of(s, user.unit_id)
    return Principal(user.id, user.username, user.role, user.unit_id, reach)


async def current_user(request: Request, core: CoreDep) -> Principal:
    token = _bearer(request.headers.get("authorization"))
    via_cookie = False
    if token is None:
        token = request.cookies.get(COOKIE)
        via_cookie = token is not None
    if token is None or token.startswith(DEVICE_KEY_PREFIX):
        raise _UNAUTHORIZED
    p = await principal_from_token(core, token)
    if p is None:
        raise _UNAUTHORIZED
    # A cookie is sent by the browser on its own; unsafe requests must also
    # carry a header that only our own scripts set (other origins cannot set
    # it without a CORS preflight, which we never grant).
    if via_cookie and request.method in UNSAFE and request.headers.get(CSRF_HEADER) != "gateway-console":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing X-Requested-With: gateway-console on a cookie-authenticated request")
    return p


CurrentUser = Annotated[Principal, Depends(current_user)]


def Require(permission: str) -> Any:  # noqa: N802 - reads like a type in signatures
    async def check(user: CurrentUser) -> Principal:
        if not allowed(user.role, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {user.role} may not {permission}")
        return user

    check.permission = permission  # type: ignore[attr-defined]  # read by the role-matrix test
    return Depends(check)


def websocket_token(ws: WebSocket) -> str | None:
    return _bearer(ws.headers.get("authorization")) or ws.query_params.get("token") or ws.cookies.get(COOKIE)


def origin_allowed(origin: str | None, host: str | None, public_url: str | None) -> bool:
    """A browser's WebSocket to us must come from our own pages: its Origin is this
    gateway (as the browser reached it, or as `gateway.public_url` names it). Without an
    Origin the client is not a browser, and its token alone decides."""
    if origin is None:
        return True
    allowed = {f"{scheme}://{host}".lower() for scheme in ("http", "https")} if host else set()
    if public_url:
        u = urlsplit(public_url)
        allowed.add(f"{u.scheme}://{u.netloc}".lower())
    return origin.strip().rstrip("/").lower() in allowed


async def current_device(request: Request, core: CoreDep) -> DevicePrincipal:
    """Kiosks and body-cams: `X-Device-Key: dk_...` or `Authorization: Bearer dk_...`."""
    key = request.headers.get("x-device-key") or _bearer(request.headers.get("authorization"))
    if not key or not key.startswith(DEVICE_KEY_PREFIX):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "device key required", headers={"WWW-Authenticate": "Bearer"})
    from sqlalchemy import select

    async with core.db.session() as s:
        dev = (await s.scalars(select(Device).where(Device.key_hash == hash_device_key(key)))).first()
    if dev is None or not device_key_matches(dev.key_hash, key) or not dev.enabled:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or disabled device key", headers={"WWW-Authenticate": "Bearer"})
    return DevicePrincipal(dev.id, dev.kind, dev.person_id)


CurrentDevice = Annotated[DevicePrincipal, Depends(current_device)]
