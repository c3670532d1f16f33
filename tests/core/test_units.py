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


async def test_units_from_the_configuration_file(make_config: Any) -> None:
    """units: in the file, and unit: on persons, devices and zones; synced at start (a unit
    moved in the file takes its subtree along); a unit that does not exist is an error that
    names its line."""
    from config.loader import ConfigError

    units = [{"id": "county", "name": "某县司法局"}, {"id": "office", "name": "某司法所", "parent": "county"},
             {"id": "team", "name": "一组", "parent": "office"}, {"id": "other", "name": "另一县"}]
    cfg = make_config(units=units, persons=[{"id": "p1", "name": "甲", "unit": "team"}],
                      devices=[{"id": "t1", "kind": "tracker", "person_id": "p1", "unit": "team"}],
                      zones=[{"id": "z1", "kind": "inclusion", "unit": "office", "geometry": {"type": "Point", "coordinates": [121.4, 31.2]}, "radius_m": 100}])
    async with running(cfg) as gw:
        c = gw.client
        root = await login(gw, "chief", "admin")
        tree = {u["id"]: u["path"] for u in (await c.get("/api/units", headers=root)).json()}
        assert tree == {"root": "/root/", "county": "/root/county/", "office": "/root/county/office/", "team": "/root/county/office/team/",
                        "other": "/root/other/"}
        officer = await login(gw, "o", "officer", "office")
        assert (await c.get("/api/persons/p1", headers=officer)).json()["unit_id"] == "team"
        assert (await c.get("/api/devices/t1", headers=officer)).json()["unit_id"] == "team"
        assert (await c.get("/api/zones/z1", headers=officer)).json()["unit_id"] == "office"
    moved = [u if u["id"] != "office" else {**u, "parent": "other"} for u in units]
    async with running(make_config(units=moved, gateway={"data_dir": str(cfg.gateway.data_dir)})) as gw:
        async with gw.services.db.session() as s:
            from gateway.db.models import Unit
            assert (await s.get(Unit, "team")).path == "/root/other/office/team/"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"line \d+: persons\[0\]\.unit: 'p2' names unit 'nowhere'"):
        make_config(units=units, persons=[{"id": "p2", "name": "乙", "unit": "nowhere"}])
    with pytest.raises(ConfigError, match="is below itself"):
        make_config(units=[{"id": "x", "name": "x", "parent": "y"}, {"id": "y", "name": "y", "parent": "x"}])


async def test_a_user_added_from_the_command_line_belongs_to_a_unit_of_the_file(make_config: Any) -> None:
    from gateway.users import add_user

    cfg = make_config(units=[{"id": "county", "name": "某县"}, {"id": "office", "name": "某所", "parent": "county"}])
    await add_user(cfg, "u1", "officer", PASSWORD, "cli", unit="office")  # before the gateway ever ran
    with pytest.raises(ValueError, match="no unit nowhere"):
        await add_user(cfg, "u2", "officer", PASSWORD, "cli", unit="nowhere")
    async with running(cfg) as gw:
        r = await gw.client.post("/api/auth/token", data={"username": "u1", "password": PASSWORD})
        units = (await gw.client.get("/api/units", headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
        assert [u["id"] for u in units] == ["office"]
