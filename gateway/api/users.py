from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import CoreDep, Principal, Require, RowId, SessionDep
from gateway.api.scope import get_owned, owned, unit_for
from gateway.auth.passwords import hash_password
from gateway.db.models import User
from gateway.events import UserChanged

router = APIRouter(prefix="/api/users", tags=["users"])
Admin = Annotated[Principal, Require("users.write")]


class UserCreate(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    password: str = Field(min_length=8, max_length=200)
    role: Literal["admin", "monitor", "officer"]
    unit_id: str | None = Field(None, max_length=64, description="Your own unit when absent.")


class UserUpdate(BaseModel):
    password: str | None = Field(None, min_length=8, max_length=200)
    role: Literal["admin", "monitor", "officer"] | None = None
    disabled: bool | None = None
    unit_id: str | None = Field(None, max_length=64)


class UserPublic(BaseModel):
    id: int
    username: str
    role: str
    disabled: bool
    unit_id: str


def _public(u: User) -> UserPublic:
    return UserPublic(id=u.id, username=u.username, role=u.role, disabled=u.disabled, unit_id=u.unit_id)


@router.get("", response_model=list[UserPublic])
async def list_users(admin: Admin, s: SessionDep, limit: int = Query(10_000, ge=1, le=10_000)) -> list[UserPublic]:
    return [_public(u) for u in (await s.scalars(select(User).where(owned(User.unit_id, admin)).order_by(User.id).limit(limit))).all()]


@router.post("", response_model=UserPublic, status_code=201)
async def create_user(body: UserCreate, admin: Admin, core: CoreDep) -> UserPublic:
    async with core.audit.tx() as s:
        if (await s.scalars(select(User).where(User.username == body.username))).first():
            raise HTTPException(409, f"user {body.username} exists")
        unit = await unit_for(s, admin, body.unit_id)
        u = User(username=body.username, password_hash=hash_password(body.password), role=body.role, unit_id=unit)
        s.add(u)
        await s.flush()
        await core.audit.add(s, admin.username, "user.created", f"user:{u.username}", {"role": u.role, "unit_id": unit})
    await core.bus.publish(UserChanged(user_id=u.id, change="created"))
    return _public(u)


@router.patch("/{user_id}", response_model=UserPublic)
async def update_user(user_id: RowId, body: UserUpdate, admin: Admin, core: CoreDep) -> UserPublic:
    async with core.audit.tx() as s:
        u = await get_owned(s, User, user_id, admin, "user")
        changed = body.model_dump(exclude_none=True, exclude={"password"})
        if body.password is not None:
            u.password_hash = hash_password(body.password)
            changed["password"] = "changed"
        if body.role is not None:
            u.role = body.role
        if body.disabled is not None:
            u.disabled = body.disabled
        if body.unit_id is not None:
            u.unit_id = await unit_for(s, admin, body.unit_id)
        if changed:
            u.token_version += 1  # a new password, role or disabling revokes the user's tokens
        await core.audit.add(s, admin.username, "user.updated", f"user:{u.username}", changed)
    await core.bus.publish(UserChanged(user_id=u.id, change="updated"))
    return _public(u)
