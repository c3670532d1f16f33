"""The units API on SQLite and PostgreSQL: the tree as each user sees it, creation below
one's own unit only, renames and moves (the subtree's paths follow, in one transaction, and
reach changes at once), and the refusals: a duplicate id 409, a move below itself 422, one's
own unit 403, a unit outside reach 404, a non-admin 403."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth.passwords import hash_password
from gateway.db.models import AuditEntry, Person, User
from tests.conftest import running

pytestmark = pytest.mark.postgres
PASSWORD = "correct-horse-1"


async def login(gw: Any, name: str, role: str, unit: str = "root") -> dict[str, str]:
    async with gw.services.db.session() as s:
        s.add(User(username=name, password_hash=hash_password(PASSWORD), role=role, unit_id=unit))
        await s.commit()
    r = await gw.client.post("/api/auth/token", data={"username": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_the_tree_creation_moves_and_refusals(any_db_url: str, make_config: Any) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        c = gw.client
        root = await login(gw, "chief", "admin")
        assert [u["id"] for u in (await c.get("/api/units", headers=root)).json()] == ["root"]  # a gateway without units: one root
        for uid, parent in (("sh", "root"), ("hp", "sh"), ("hp-a", "hp"), ("hp-b", "hp"), ("xh", "sh")):
            r = await c.post("/api/units", headers=root, json={"id": uid, "name": f"单位{uid}", "parent_id": parent})
            assert r.status_code == 201, r.text
        assert r.json() == {**r.json(), "parent_id": "sh", "path": "/root/sh/xh/", "depth": 2}
        assert (await c.post("/api/units", headers=root, json={"id": "hp", "name": "重复", "parent_id": "sh"})).status_code == 409
        assert (await c.post("/api/units", headers=root, json={"id": "Bad Id", "name": "x", "parent_id": "sh"})).status_code == 422

        hp_admin = await login(gw, "hp-admin", "admin", "hp")
        hp_officer = await login(gw, "hp-officer", "officer", "hp")
        assert [u["id"] for u in (await c.get("/api/units", headers=hp_admin)).json()] == ["hp", "hp-a", "hp-b"]
        assert (await c.get("/api/units/xh", headers=hp_admin)).status_code == 404
        assert (await c.get("/api/units/sh", headers=hp_admin)).status_code == 404
        assert (await c.post("/api/units", headers=hp_officer, json={"id": "hp-c", "name": "x", "parent_id": "hp"})).status_code == 403
        assert (await c.post("/api/units", headers=hp_admin, json={"id": "hp-c", "name": "x", "parent_id": "xh"})).status_code == 404
        assert (await c.post("/api/units", headers=hp_admin, json={"id": "hp-c", "name": "丙所", "parent_id": "hp"})).status_code == 201
        assert (await c.patch("/api/units/hp", headers=hp_admin, json={"name": "改名"})).status_code == 403  # its own: for the unit above
        assert (await c.patch("/api/units/hp-a", headers=hp_admin, json={"parent_id": "xh"})).status_code == 404
        assert (await c.patch("/api/units/hp-a", headers=hp_admin, json={"name": "甲司法所"})).json()["name"] == "甲司法所"

        # a move: hp-b (with a unit below it) goes under hp-a; the paths below follow
        assert (await c.post("/api/units", headers=root, json={"id": "hp-b1", "name": "乙所一组", "parent_id": "hp-b"})).status_code == 201
        async with gw.services.db.session() as s:
            s.add(Person(id="p-b1", name="某", unit_id="hp-b1"))
            await s.commit()
        b1_officer = await login(gw, "b1", "officer", "hp-b1")
        a_officer = await login(gw, "a1", "officer", "hp-a")
        assert (await c.get("/api/persons/p-b1", headers=a_officer)).status_code == 404
        assert (await c.patch("/api/units/hp-b", headers=hp_admin, json={"parent_id": "hp-b1"})).status_code == 422  # below itself
        r = await c.patch("/api/units/hp-b", headers=hp_admin, json={"parent_id": "hp-a"})
        assert r.status_code == 200 and r.json()["path"] == "/root/sh/hp/hp-a/hp-b/"
        assert (await c.get("/api/units/hp-b1", headers=root)).json()["path"] == "/root/sh/hp/hp-a/hp-b/hp-b1/"
        assert (await c.get("/api/persons/p-b1", headers=a_officer)).status_code == 200  # in hp-a's reach at once
        assert (await c.get("/api/persons/p-b1", headers=b1_officer)).status_code == 200
        assert [u["id"] for u in (await c.get("/api/units", headers=a_officer)).json()] == ["hp-a", "hp-b", "hp-b1"]
        async with gw.services.db.session() as s:
            from sqlalchemy import select
            actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("unit.%")))).all()
        assert actions.count("unit.created") == 7 and actions.count("unit.updated") == 2
