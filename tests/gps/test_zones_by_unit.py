"""A zone that names no persons applies to the persons of its unit and the units below it
(the root unit's to everyone): an office's exclusion zone around a school is not the
neighbouring office's. A person registered later in the unit is covered at once (the
trackers area reloads its zones on person and unit changes)."""

from __future__ import annotations

from typing import Any

from drivers.gps.zonestore import load_zones
from gateway.auth.passwords import hash_password
from gateway.db.models import User
from tests.conftest import running
from tests.waiting import wait_for

POINT = {"type": "Point", "coordinates": [121.47, 31.23]}


async def test_a_units_zone_applies_to_its_subtree(make_config: Any) -> None:
    cfg = make_config(
        units=[{"id": "county", "name": "县"}, {"id": "office-a", "name": "甲", "parent": "county"}, {"id": "office-b", "name": "乙", "parent": "county"},
               {"id": "empty", "name": "空", "parent": "county"}],
        persons=[{"id": "pa", "name": "a", "unit": "office-a"}, {"id": "pb", "name": "b", "unit": "office-b"}, {"id": "pc", "name": "c", "unit": "county"},
                 {"id": "pr", "name": "r"}],
        zones=[{"id": f"z-{u}", "kind": "exclusion", "unit": u, "geometry": POINT, "radius_m": 200} for u in ("office-a", "county", "empty")]
        + [{"id": "z-root", "kind": "exclusion", "geometry": POINT, "radius_m": 200},
           {"id": "z-named", "kind": "exclusion", "unit": "office-a", "geometry": POINT, "radius_m": 200, "person_ids": ["pb"]}],
    )
    async with running(cfg) as gw:
        async with gw.services.db.session() as s:
            specs = {z.id: z.person_ids for z in await load_zones(s)}
        assert specs == {"z-office-a": ("pa",), "z-county": ("pa", "pb", "pc"), "z-root": (), "z-named": ("pb",)}  # z-empty: nobody
        index = gw.areas.trackers.rules.index
        assert {index.zones[i].id for i in index.zones_of("pa")} == {"z-office-a", "z-county", "z-root"}
        assert {index.zones[i].id for i in index.zones_of("pr")} == {"z-root"}

        async with gw.services.db.session() as s:
            s.add(User(username="chief", password_hash=hash_password("correct-horse-1"), role="admin"))
            await s.commit()
        tok = (await gw.client.post("/api/auth/token", data={"username": "chief", "password": "correct-horse-1"})).json()["access_token"]
        r = await gw.client.post("/api/persons", headers={"Authorization": f"Bearer {tok}"}, json={"id": "pe", "name": "e", "unit_id": "empty"})
        assert r.status_code == 201

        def covered() -> bool:
            idx = gw.areas.trackers.rules.index
            return {idx.zones[i].id for i in idx.zones_of("pe")} == {"z-empty", "z-county", "z-root"}
        await wait_for(covered, 30, "the new person covered by the zones of their units")
