from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from gateway.api.deps import CoreDep, CurrentUser, Principal, Require, SessionDep
from gateway.api.scope import get_owned, owned, unit_for
from gateway.db.models import Person, User
from gateway.events import PersonChanged

router = APIRouter(prefix="/api/persons", tags=["persons"])
Writer = Annotated[Principal, Require("persons.write")]


SupervisionLevel = Literal["strict", "ordinary", "lenient"]


class PersonBase(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    category: str | None = Field(None, max_length=64, description="community_corrections, resettlement, or a free category.")
    notes: str | None = Field(None, max_length=10_000)
    active: bool = True
    supervision_level: SupervisionLevel | None = Field(None, description="严管 strict, 普管 ordinary, 宽管 lenient.")
    officer: str | None = Field(None, max_length=64, description="The responsible officer: a user of the person's unit or a unit above it.")


class PersonCreate(PersonBase):
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Chosen id; generated when absent.")
    unit_id: str | None = Field(None, max_length=64, description="Your own unit when absent.")


class PersonUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, max_length=64)
    notes: str | None = Field(None, max_length=10_000)
    active: bool | None = None
    unit_id: str | None = Field(None, max_length=64)
    supervision_level: SupervisionLevel | None = None
    officer: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _not_null(self) -> "PersonUpdate":
        # left out: unchanged; given as null: a mistake (the person must keep a name)
        for f in ("name", "active", "unit_id"):
            if f in self.model_fields_set and getattr(self, f) is None:
                raise ValueError(f"{f} may be left out, not set to null")
        return self


class PersonPublic(PersonBase):
    id: str
    unit_id: str
    source: str
    created_at: datetime
    updated_at: datetime


def _public(p: Person) -> PersonPublic:
    return PersonPublic(id=p.id, unit_id=p.unit_id, name=p.name, category=p.category, notes=p.notes, active=p.active, source=p.source,
                        supervision_level=p.supervision_level, officer=p.officer,  # type: ignore[arg-type]
                        created_at=p.created_at, updated_at=p.updated_at)


async def _check_officer(s: Any, user: Principal, name: str | None) -> None:
    """The officer must be a user the caller can see (404 otherwise, as for anything outside reach)."""
    if name is not None and (await s.scalars(select(User.id).where(User.username == name, owned(User.unit_id, user)))).first() is None:
        raise HTTPException(404, f"no user {name}")


@router.get("", response_model=list[PersonPublic])
async def list_persons(user: CurrentUser, s: SessionDep, q: str | None = Query(None, max_length=100),
                       limit: int = Query(10_000, ge=1, le=10_000, description="By name; the console's pickers and name lookups ask for all (the default).")
                       ) -> list[PersonPublic]:
    stmt = select(Person).where(owned(Person.unit_id, user)).order_by(Person.name, Person.id).limit(limit)
    if q:
        stmt = stmt.where(Person.name.contains(q) | Person.id.contains(q))
    return [_public(p) for p in (await s.scalars(stmt)).all()]


@router.post("", response_model=PersonPublic, status_code=201)
async def create_person(body: PersonCreate, user: Writer, core: CoreDep) -> PersonPublic:
    pid = body.id or f"p-{uuid.uuid4().hex[:10]}"
    async with core.audit.tx() as s:
        unit = await unit_for(s, user, body.unit_id)
        if await s.get(Person, pid):
            raise HTTPException(409, f"person {pid} exists")
        await _check_officer(s, user, body.officer)
        p = Person(id=pid, name=body.name, category=body.category, notes=body.notes, active=body.active, source="api", unit_id=unit,
                   supervision_level=body.supervision_level, officer=body.officer)
        s.add(p)
        await s.flush()
        await core.audit.add(s, user.username, "person.created", f"person:{pid}", {"name": body.name, "unit_id": unit})
    await core.bus.publish(PersonChanged(person_id=pid, change="created"))
    return _public(p)


@router.get("/{person_id}", response_model=PersonPublic)
async def get_person(person_id: str, user: CurrentUser, s: SessionDep) -> PersonPublic:
    return _public(await get_owned(s, Person, person_id, user, "person"))


@router.patch("/{person_id}", response_model=PersonPublic)
async def update_person(person_id: str, body: PersonUpdate, user: Writer, core: CoreDep) -> PersonPublic:
    async with core.audit.tx() as s:
        p = await get_owned(s, Person, person_id, user, "person")
        changes = body.model_dump(exclude_unset=True)
        if "unit_id" in changes:
            changes["unit_id"] = await unit_for(s, user, changes["unit_id"])
        if changes.get("officer"):
            await _check_officer(s, user, changes["officer"])
        for k, v in changes.items():
            setattr(p, k, v)
        await core.audit.add(s, user.username, "person.updated", f"person:{person_id}", changes)
    await core.bus.publish(PersonChanged(person_id=person_id, change="updated"))
    return _public(p)


@router.delete("/{person_id}", status_code=204)
async def delete_person(person_id: str, user: Writer, core: CoreDep) -> None:
    """Marks the person inactive: their positions, alerts and evidence stay."""
    async with core.audit.tx() as s:
        p = await get_owned(s, Person, person_id, user, "person")
        p.active = False
        await core.audit.add(s, user.username, "person.deactivated", f"person:{person_id}")
    await core.bus.publish(PersonChanged(person_id=person_id, change="updated"))
