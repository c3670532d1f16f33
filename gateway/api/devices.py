"""Devices of every kind (`/api/devices`).

`settings` are checked with the same typed model as the configuration file
(config/cameras.py, trackers.py, kiosks.py, uploads.py): an unknown key or a bad value
is a 422 naming it. A change is published as `DeviceChanged` after commit and applied by
the drivers before the answer: a tracker registered here is heard from its first
message, a camera added here is connected and recording, a device disabled here is
refused from its next request or message.

A camera's password is write-only: given in `password`, stored apart from the
settings, never returned (`has_password` says whether one is set).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, SecretStr, ValidationError
from sqlalchemy import delete, select

from config.devices import COLUMNS, DEVICE_MODELS, settings_fields
from gateway.api.deps import CoreDep, CurrentUser, Principal, Require, SessionDep
from gateway.api.scope import get_owned, owned, unit_for
from gateway.auth.tokens import hash_device_key, new_device_key
from gateway.db.models import Device, PairingCode, Person
from gateway.events import Change, DeviceChanged

router = APIRouter(prefix="/api/devices", tags=["devices"])
Admin = Annotated[Principal, Require("devices.write")]
Kind = Literal["camera", "tracker", "bodycam", "kiosk"]
KEYED = ("kiosk", "bodycam")
WITH_PERSON = ("tracker", "bodycam")
WITH_PASSWORD = ("camera",)
# what a device reports about itself (a kiosk's heartbeat), kept beside its settings
REPORTED = ("software_version", "printer", "paper", "kiosk_state")


class DeviceCreate(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Kind
    name: str | None = Field(None, max_length=200)
    person_id: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict, description="The kind's settings, as in the configuration file (e.g. a camera's url, transport, record).")
    password: SecretStr | None = Field(None, description="Camera only: the RTSP password. Write-only.")
    enabled: bool = True
    unit_id: str | None = Field(None, max_length=64, description="Your own unit when absent.")


class DeviceUpdate(BaseModel):
    name: str | None = Field(None, max_length=200)
    person_id: str | None = None
    settings: dict[str, Any] | None = Field(None, description="Merged into the current settings; a key set to null returns to its default.")
    password: SecretStr | None = Field(None, description="Camera only: a new RTSP password (an empty string removes it). Write-only.")
    enabled: bool | None = None
    unit_id: str | None = Field(None, max_length=64)


class DevicePublic(BaseModel):
    id: str
    kind: str
    unit_id: str
    name: str | None
    person_id: str | None
    settings: dict[str, Any]
    state: str
    state_reason: str | None
    last_seen_at: datetime | None
    battery: int | None
    enabled: bool
    source: str
    has_key: bool
    has_password: bool


class DeviceCreated(DevicePublic):
    key: str | None = Field(None, description="Kiosk and body-cam key. Shown once, never again.")


def public(d: Device) -> DevicePublic:
    return DevicePublic(
        id=d.id, kind=d.kind, unit_id=d.unit_id, name=d.name, person_id=d.person_id, settings=dict(d.settings or {}), state=d.state, state_reason=d.state_reason,
        last_seen_at=d.last_seen_at, battery=d.battery, enabled=d.enabled, source=d.source, has_key=d.key_hash is not None,
        has_password=d.secret is not None,
    )


def checked_settings(kind: str, device_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as the kind's typed model takes them (what was given, normalised);
    422 naming the first problem, in FastAPI's own shape ({loc, msg, type}: the console puts
    it next to the field)."""
    model = DEVICE_MODELS[kind]
    columns = sorted(k for k in settings if k in COLUMNS)
    if columns:
        raise HTTPException(422, [{"loc": ["body", "settings", columns[0]], "type": "not_a_setting",
                                   "msg": f"settings.{columns[0]}: not a setting (use the device's own field)"}])
    try:
        cfg = model.model_validate({**settings, "id": device_id, "kind": kind})
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise HTTPException(422, [{"loc": ["body", "settings", *err["loc"]], "type": err["type"],
                                   "msg": f"settings.{where}: {err['msg']}"}]) from None
    return cfg.model_dump(mode="json", include=set(settings) & settings_fields(kind))


async def _changed(core: CoreDep, d: Device, change: Change) -> None:
    await core.bus.publish(DeviceChanged(device_id=d.id, kind=d.kind, change=change))


@router.get("", response_model=list[DevicePublic])
async def list_devices(user: CurrentUser, s: SessionDep, kind: Kind | None = None,
                       limit: int = Query(20_000, ge=1, le=20_000, description="By kind and id; the console's pages ask for all (the default).")
                       ) -> list[DevicePublic]:
    stmt = select(Device).where(owned(Device.unit_id, user)).order_by(Device.kind, Device.id).limit(limit)
    if kind:
        stmt = stmt.where(Device.kind == kind)
    return [public(d) for d in (await s.scalars(stmt)).all()]


@router.get("/{device_id}", response_model=DevicePublic)
async def get_device(device_id: str, user: CurrentUser, s: SessionDep) -> DevicePublic:
    return public(await get_owned(s, Device, device_id, user, "device"))


@router.post("", response_model=DeviceCreated, status_code=201)
async def create_device(body: DeviceCreate, admin: Admin, core: CoreDep) -> DeviceCreated:
    if body.person_id and body.kind not in WITH_PERSON:
        raise HTTPException(422, "only trackers and body-cams belong to a person")
    if body.password is not None and body.kind not in WITH_PASSWORD:
        raise HTTPException(422, f"a {body.kind} has no password")
    settings = checked_settings(body.kind, body.id, body.settings)
    key = new_device_key() if body.kind in KEYED else None
    async with core.audit.tx() as s:
        unit = await unit_for(s, admin, body.unit_id)
        if await s.get(Device, body.id):
            raise HTTPException(409, f"device {body.id} exists")
        if body.person_id:
            await get_owned(s, Person, body.person_id, admin, "person")
        d = Device(id=body.id, kind=body.kind, unit_id=unit, name=body.name, person_id=body.person_id, settings=settings, enabled=body.enabled, source="api",
                   key_hash=hash_device_key(key) if key else None, secret=body.password.get_secret_value() if body.password else None)
        s.add(d)
        await s.flush()
        await core.audit.add(s, admin.username, "device.created", f"device:{body.id}", {"kind": body.kind})
    await _changed(core, d, "created")
    return DeviceCreated(**public(d).model_dump(), key=key)


@router.post("/{device_id}/key", response_model=DeviceCreated, summary="Issue a new key (the old one stops working)")
async def rotate_key(device_id: str, admin: Admin, core: CoreDep) -> DeviceCreated:
    key = new_device_key()
    async with core.audit.tx() as s:
        d = await get_owned(s, Device, device_id, admin, "device")
        if d.kind not in KEYED:
            raise HTTPException(422, f"{d.kind} devices do not use keys")
        d.key_hash = hash_device_key(key)
        await core.audit.add(s, admin.username, "device.key_issued", f"device:{device_id}")
    return DeviceCreated(**public(d).model_dump(), key=key)


class PairingCodePublic(BaseModel):
    device_id: str
    code: str = Field(description="Eight digits, typed on the kiosk terminal (/kiosk); shown once, single use.")
    expires_at: datetime


@router.post("/{device_id}/pairing", response_model=PairingCodePublic, status_code=201,
             summary="A one-time pairing code for a kiosk terminal (earlier unused codes of the kiosk stop working)")
async def pairing_code(device_id: str, admin: Admin, core: CoreDep) -> PairingCodePublic:
    code = f"{secrets.randbelow(10**8):08d}"
    expires = core.clock.now() + timedelta(seconds=core.config.auth.pairing_code_ttl_s)
    async with core.audit.tx() as s:
        d = await get_owned(s, Device, device_id, admin, "device")
        if d.kind != "kiosk":
            raise HTTPException(422, f"{d.id} is a {d.kind}: only kiosk terminals pair with a code")
        if not d.enabled:
            raise HTTPException(409, f"kiosk {d.id} is disabled")
        await s.execute(delete(PairingCode).where(PairingCode.device_id == d.id, PairingCode.used_at.is_(None)))
        s.add(PairingCode(code_hash=hash_device_key(code), device_id=d.id, expires_at=expires, created_by=admin.username))
        await core.audit.add(s, admin.username, "device.pairing_code", f"device:{device_id}", {"expires_at": expires.isoformat()})
    return PairingCodePublic(device_id=device_id, code=code, expires_at=expires)


@router.patch("/{device_id}", response_model=DevicePublic)
async def update_device(device_id: str, body: DeviceUpdate, admin: Admin, core: CoreDep) -> DevicePublic:
    changes = body.model_dump(exclude_unset=True, exclude={"password", "settings"})
    async with core.audit.tx() as s:
        d = await get_owned(s, Device, device_id, admin, "device")
        if "enabled" in changes and changes["enabled"] is None:
            raise HTTPException(422, "enabled: must be true or false")
        if "unit_id" in changes:
            changes["unit_id"] = await unit_for(s, admin, changes["unit_id"])
        if changes.get("person_id"):
            if d.kind not in WITH_PERSON:
                raise HTTPException(422, "only trackers and body-cams belong to a person")
            await get_owned(s, Person, changes["person_id"], admin, "person")
        audited: dict[str, Any] = dict(changes)
        if body.settings is not None:
            known = settings_fields(d.kind)
            merged = {k: v for k, v in (d.settings or {}).items() if k in known}
            for k, v in body.settings.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            reported = {k: v for k, v in (d.settings or {}).items() if k in REPORTED}
            d.settings = {**reported, **checked_settings(d.kind, d.id, merged)}
            audited["settings"] = sorted(body.settings)
        if "password" in body.model_fields_set:
            if d.kind not in WITH_PASSWORD:
                raise HTTPException(422, f"a {d.kind} has no password")
            secret = body.password.get_secret_value() if body.password else ""
            d.secret = secret or None
            audited["password"] = "changed" if secret else "removed"
        for k, v in changes.items():
            setattr(d, k, v)
        await core.audit.add(s, admin.username, "device.updated", f"device:{device_id}", audited)
    await _changed(core, d, "updated")
    return public(d)


@router.delete("/{device_id}", status_code=204)
async def delete_device(device_id: str, admin: Admin, core: CoreDep) -> None:
    """Disables the device and revokes its key; its data stays."""
    async with core.audit.tx() as s:
        d = await get_owned(s, Device, device_id, admin, "device")
        d.enabled, d.key_hash = False, None
        await core.audit.add(s, admin.username, "device.disabled", f"device:{device_id}")
    await _changed(core, d, "updated")
