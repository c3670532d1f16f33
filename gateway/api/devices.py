from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import CurrentUser, Principal, Require, ServicesDep, SessionDep
from gateway.auth.tokens import hash_device_key, new_device_key
from gateway.db.models import Device, Person

router = APIRouter(prefix="/api/devices", tags=["devices"])
Admin = Annotated[Principal, Require("devices.write")]
Kind = Literal["camera", "tracker", "bodycam", "kiosk"]
KEYED = ("kiosk", "bodycam")


class DeviceCreate(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Kind
    name: str | None = Field(None, max_length=200)
    person_id: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class DeviceUpdate(BaseModel):
    name: str | None = Field(None, max_length=200)
    person_id: str | None = None
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class DevicePublic(BaseModel):
    id: str
    kind: str
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


class DeviceCreated(DevicePublic):
    key: str | None = Field(None, description="Kiosk and body-cam key. Shown once, never again.")


def public(d: Device) -> DevicePublic:
    settings = {k: v for k, v in (d.settings or {}).items() if k not in ("password",)}
    return DevicePublic(
        id=d.id, kind=d.kind, name=d.name, person_id=d.person_id, settings=settings, state=d.state, state_reason=d.state_reason,
        last_seen_at=d.last_seen_at, battery=d.battery, enabled=d.enabled, source=d.source, has_key=d.key_hash is not None,
    )


@router.get("", response_model=list[DevicePublic])
async def list_devices(_: CurrentUser, s: SessionDep, kind: Kind | None = None) -> list[DevicePublic]:
    stmt = select(Device).order_by(Device.kind, Device.id)
    if kind:
        stmt = stmt.where(Device.kind == kind)
    return [public(d) for d in (await s.scalars(stmt)).all()]


@router.get("/{device_id}", response_model=DevicePublic)
async def get_device(device_id: str, _: CurrentUser, s: SessionDep) -> DevicePublic:
    d = await s.get(Device, device_id)
    if d is None:
        raise HTTPException(404, f"no device {device_id}")
    return public(d)


@router.post("", response_model=DeviceCreated, status_code=201)
async def create_device(body: DeviceCreate, admin: Admin, services: ServicesDep) -> DeviceCreated:
    if body.person_id and body.kind not in ("tracker", "bodycam"):
        raise HTTPException(422, "only trackers and body-cams belong to a person")
    key = new_device_key() if body.kind in KEYED else None
    async with services.audit.tx() as s:
        if await s.get(Device, body.id):
            raise HTTPException(409, f"device {body.id} exists")
        if body.person_id and await s.get(Person, body.person_id) is None:
            raise HTTPException(422, f"no person {body.person_id}")
        d = Device(id=body.id, kind=body.kind, name=body.name, person_id=body.person_id, settings=body.settings, enabled=body.enabled, source="api", key_hash=hash_device_key(key) if key else None)
        s.add(d)
        await s.flush()
        await services.audit.add(s, admin.username, "device.created", f"device:{body.id}", {"kind": body.kind})
    return DeviceCreated(**public(d).model_dump(), key=key)


@router.post("/{device_id}/key", response_model=DeviceCreated, summary="Issue a new key (the old one stops working)")
async def rotate_key(device_id: str, admin: Admin, services: ServicesDep) -> DeviceCreated:
    key = new_device_key()
    async with services.audit.tx() as s:
        d = await s.get(Device, device_id)
        if d is None:
            raise HTTPException(404, f"no device {device_id}")
        if d.kind not in KEYED:
            raise HTTPException(422, f"{d.kind} devices do not use keys")
        d.key_hash = hash_device_key(key)
        await services.audit.add(s, admin.username, "device.key_issued", f"device:{device_id}")
    return DeviceCreated(**public(d).model_dump(), key=key)


@router.patch("/{device_id}", response_model=DevicePublic)
async def update_device(device_id: str, body: DeviceUpdate, admin: Admin, services: ServicesDep) -> DevicePublic:
    async with services.audit.tx() as s:
        d = await s.get(Device, device_id)
        if d is None:
            raise HTTPException(404, f"no device {device_id}")
        changes = body.model_dump(exclude_unset=True)
        if changes.get("person_id") and await s.get(Person, changes["person_id"]) is None:
            raise HTTPException(422, f"no person {changes['person_id']}")
        for k, v in changes.items():
            setattr(d, k, v)
        await services.audit.add(s, admin.username, "device.updated", f"device:{device_id}", {k: v for k, v in changes.items() if k != "settings"})
    return public(d)


@router.delete("/{device_id}", status_code=204)
async def delete_device(device_id: str, admin: Admin, services: ServicesDep) -> None:
    """Disables the device and revokes its key; its data stays."""
    async with services.audit.tx() as s:
        d = await s.get(Device, device_id)
        if d is None:
            raise HTTPException(404, f"no device {device_id}")
        d.enabled, d.key_hash = False, None
        await services.audit.add(s, admin.username, "device.disabled", f"device:{device_id}")
