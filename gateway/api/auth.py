"""OAuth2 password flow for API clients; the same check sets the console's cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import COOKIE, CoreDep, CurrentUser
from gateway.auth.passwords import hash_password, verify_password
from gateway.auth.ratelimit import NAME_FACTOR
from gateway.db.models import User
from gateway.events import UserChanged

router = APIRouter(prefix="/api/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class MeOut(BaseModel):
    id: int
    username: str
    role: str
    unit_id: str


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=8, max_length=200)


async def _authenticate(core: CoreDep, request: Request, username: str, password: str) -> User:
    client = request.client.host if request.client else "?"
    limiter = core.login_limiter
    addr, name = f"addr:{client}", f"user:{username.lower()[:64]}"
    # the address first, every attempt counted; then the name, which counts failures only
    for key, factor in ((addr, 1), (name, NAME_FACTOR)):
        if not limiter.allowed(key, factor):
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many login attempts; wait and try again", headers={"Retry-After": str(limiter.retry_after(key))})
    limiter.record(addr)
    async with core.db.session() as s:
        user = (await s.scalars(select(User).where(User.username == username))).first()
    ok = verify_password(user.password_hash if user else None, password) and user is not None and not user.disabled
    await core.audit.log(username[:64] or "?", "auth.login" if ok else "auth.login_failed", f"user:{username[:64]}", {"client": client})
    if not ok:
        limiter.record(name)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password", headers={"WWW-Authenticate": "Bearer"})
    assert user is not None
    return user


@router.post("/token", response_model=TokenOut, summary="OAuth2 password flow")
async def token(core: CoreDep, request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    user = await _authenticate(core, request, form.username, form.password)
    return TokenOut(access_token=core.signer.issue(user.id, user.role, user.token_version), expires_in=core.signer.ttl_s, role=user.role)


@router.post("/login", response_model=MeOut, summary="Console login: sets the session cookie")
async def login(core: CoreDep, request: Request, response: Response, username: Annotated[str, Form()], password: Annotated[str, Form()]) -> MeOut:
    user = await _authenticate(core, request, username, password)
    response.set_cookie(
        COOKIE, core.signer.issue(user.id, user.role, user.token_version), max_age=core.signer.ttl_s,
        # Secure whenever the browser came over HTTPS (directly, or through a proxy uvicorn
        # trusts with X-Forwarded-Proto), or when the site says so
        httponly=True, samesite="strict", secure=core.config.auth.cookie_secure or request.url.scheme == "https", path="/",
    )
    return MeOut(id=user.id, username=user.username, role=user.role, unit_id=user.unit_id)


def _set_session(core: CoreDep, request: Request, response: Response, user: User) -> None:
    response.set_cookie(
        COOKIE, core.signer.issue(user.id, user.role, user.token_version), max_age=core.signer.ttl_s,
        # Secure whenever the browser came over HTTPS (directly, or through a proxy uvicorn
        # trusts with X-Forwarded-Proto), or when the site says so
        httponly=True, samesite="strict", secure=core.config.auth.cookie_secure or request.url.scheme == "https", path="/",
    )


@router.post("/password", response_model=MeOut, summary="Change your own password (your other sessions and tokens end)")
async def change_password(body: PasswordChange, user: CurrentUser, core: CoreDep, request: Request, response: Response) -> MeOut:
    """The current password is asked again (a session left open must not be enough); failures
    count against the login limit of the user's name. Every token of the user is revoked;
    the console's session continues with a new cookie."""
    name = f"user:{user.username.lower()[:64]}"
    if not core.login_limiter.allowed(name, NAME_FACTOR):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many attempts; wait and try again", headers={"Retry-After": str(core.login_limiter.retry_after(name))})
    async with core.audit.tx() as s:
        row = await s.get(User, user.id)
        if row is None or not verify_password(row.password_hash, body.current_password):
            core.login_limiter.record(name)
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the current password is wrong")
        if body.new_password == body.current_password:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the new password is the current one")
        row.password_hash = hash_password(body.new_password)
        row.token_version += 1
        await core.audit.add(s, user.username, "auth.password_changed", f"user:{user.username}")
    await core.bus.publish(UserChanged(user_id=user.id, change="updated"))
    _set_session(core, request, response, row)
    return MeOut(id=row.id, username=row.username, role=row.role, unit_id=row.unit_id)


@router.post("/logout", status_code=204, summary="Ends the session: every token of the user is revoked (on every device)")
async def logout(user: CurrentUser, core: CoreDep, response: Response) -> Response:
    # Tokens are signed, not stored: revoking one means revoking the user's every token
    # (the version they carry), so a stolen cookie stops working once its owner logs out.
    async with core.audit.tx() as s:
        row = await s.get(User, user.id)
        if row is not None:
            row.token_version += 1
        await core.audit.add(s, user.username, "auth.logout", f"user:{user.username}")
    await core.bus.publish(UserChanged(user_id=user.id, change="updated"))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut)
async def me(user: CurrentUser) -> MeOut:
    return MeOut(id=user.id, username=user.username, role=user.role, unit_id=user.unit_id)
