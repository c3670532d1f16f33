"""The duty roster API on SQLite and PostgreSQL: shifts created, listed, changed and deleted
within the caller's reach (404 outside it), overlap rules, clear 422s for bad input, who is
on duty now with the nearest ancestor's shift covering a unit that has none, and the
handover view listing exactly the open and acknowledged alerts of the unit's subtree.

The tree (rows written through the ORM: the units API lands in parallel):
root -> county -> office-a -> office-a1, and county -> office-b.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.auth.passwords import hash_password
from gateway.db.models import Alert, AlertNote, AuditEntry, Person, Unit, User
from gateway.duty import nearest, on_duty_query
from tests.conftest import running

PASSWORD = "correct-horse-1"
TREE = (("county", "root", "某县司法局"), ("office-a", "county", "甲司法所"), ("office-a1", "office-a", "甲司法所一组"),
        ("office-b", "county", "乙司法所"))


def iso(t: datetime) -> str:
    return t.isoformat()


async def arrange(gw: Any, users: dict[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    """The unit tree and users {name: (role, unit)}; their Authorization headers."""
    now = datetime.now(UTC)
    async with gw.services.db.session() as s:
        paths = {"root": "/root/"}
        for uid, parent, name in TREE:
            paths[uid] = f"{paths[parent]}{uid}/"
            s.add(Unit(id=uid, name=name, parent_id=parent, path=paths[uid], source="api", created_at=now, updated_at=now))
        for name, (role, unit) in users.items():
            s.add(User(username=name, password_hash=hash_password(PASSWORD), role=role, unit_id=unit))
        await s.commit()
    return {name: await gw.login(name, role) for name, (role, _) in users.items()}


def shift(unit: str, start: datetime, hours: float, **kw: Any) -> dict[str, Any]:
    return {"unit_id": unit, "starts_at": iso(start), "ends_at": iso(start + timedelta(hours=hours)), **kw}


@pytest.mark.postgres
async def test_shifts_within_reach_overlap_rules_and_bad_input(any_db_url: str, make_config: Any) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        h = await arrange(gw, {"oa": ("officer", "office-a"), "oa2": ("officer", "office-a"), "ob": ("officer", "office-b"),
                               "chief": ("officer", "county"), "watch": ("monitor", "office-a")})
        c = gw.client
        t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)

        r = await c.post("/api/duty", headers=h["oa"], json=shift("office-a", t0, 12, officer="oa", channel="wecom-a", address="oa@example.org"))
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["name"] == "oa" and first["unit_name"] == "甲司法所" and first["created_by"] == "oa"
        # a second officer on duty at the same time: allowed (a unit may have two on duty)
        r = await c.post("/api/duty", headers=h["oa"], json=shift("office-a", t0 + timedelta(hours=2), 4, officer="oa2"))
        assert r.status_code == 201, r.text
        second = r.json()
        # the same officer twice at once: a double entry
        r = await c.post("/api/duty", headers=h["oa"], json=shift("office-a", t0 + timedelta(hours=11), 3, officer="oa"))
        assert r.status_code == 409 and "already has shift" in r.json()["detail"]
        # the same officer right after the first shift: no overlap
        r = await c.post("/api/duty", headers=h["oa"], json=shift("office-a", t0 + timedelta(hours=12), 12, officer="oa"))
        assert r.status_code == 201, r.text
        third = r.json()
        # a shift of the office below, by name only; naive times are read as UTC
        naive = (t0 + timedelta(days=1)).replace(tzinfo=None)
        r = await c.post("/api/duty", headers=h["oa"], json={"unit_id": "office-a1", "name": "值班员<b>王</b>",
                                                            "starts_at": naive.isoformat(), "ends_at": (naive + timedelta(hours=8)).isoformat()})
        assert r.status_code == 201, r.text
        assert datetime.fromisoformat(r.json()["starts_at"]) == t0 + timedelta(days=1)

        bad = [
            (shift("office-a", t0, -1, name="x"), 422, "ends_at must be after starts_at"),
            (shift("office-a", t0, 0, name="x"), 422, "ends_at must be after starts_at"),
            (shift("office-a", t0, 24 * 7 + 1, name="x"), 422, "at most 7 days"),
            (shift("office-a", t0, 8), 422, "a shift needs a name or an officer"),
            (shift("office-a", t0, 8, officer="ob"), 422, "officer ob is not an active user of unit office-a"),
            (shift("office-a", t0, 8, officer="nobody"), 422, "officer nobody is not an active user of unit office-a"),
            (shift("office-a", t0, 8, name="x", address="not-an-address"), 422, "address"),
            (shift("office-a", t0, 8, name="x", channel="has space"), 422, "channel"),
            (shift("office-b", t0, 8, name="x"), 404, "no unit office-b"),
            (shift("no-such-unit", t0, 8, name="x"), 404, "no unit no-such-unit"),
            ({"unit_id": "office-a", "name": "x", "starts_at": "tomorrow", "ends_at": iso(t0)}, 422, "starts_at"),
            ({"unit_id": "office-a", "name": "x", "starts_at": "0001-01-01T00:00:00Z", "ends_at": iso(t0)}, 422, "between the years 1970 and 2999"),
        ]
        for body, status, detail in bad:
            r = await c.post("/api/duty", headers=h["oa"], json=body)
            assert r.status_code == status and detail in r.json()["detail"], (body, r.status_code, r.text)
        # a unit outside reach answers as one that does not exist
        outside = await c.post("/api/duty", headers=h["oa"], json=shift("office-b", t0, 8, name="x"))
        missing = await c.post("/api/duty", headers=h["oa"], json=shift("office-z", t0, 8, name="x"))
        assert outside.json()["detail"].replace("office-b", "?") == missing.json()["detail"].replace("office-z", "?")
        assert (await c.post("/api/duty", headers=h["watch"], json=shift("office-a", t0, 8, name="x"))).status_code == 403

        # listing: each office sees its own subtree; the county sees both offices
        window = f"since={iso(t0 - timedelta(hours=1)).replace('+', '%2B')}&until={iso(t0 + timedelta(days=3)).replace('+', '%2B')}"
        mine = (await c.get(f"/api/duty?{window}", headers=h["oa"])).json()
        assert [s["id"] for s in mine] == [first["id"], second["id"], third["id"], third["id"] + 1]
        assert (await c.get(f"/api/duty?{window}", headers=h["ob"])).json() == []
        r = await c.post("/api/duty", headers=h["ob"], json=shift("office-b", t0, 8, name="乙值班"))
        assert r.status_code == 201
        assert len((await c.get(f"/api/duty?{window}", headers=h["chief"])).json()) == 5
        only_a1 = (await c.get(f"/api/duty?{window}&unit_id=office-a1", headers=h["chief"])).json()
        assert [s["name"] for s in only_a1] == ["值班员<b>王</b>"]
        assert (await c.get(f"/api/duty?{window}&unit_id=office-b", headers=h["oa"])).status_code == 404
        assert (await c.get(f"/api/duty/{first['id']}", headers=h["ob"])).status_code == 404
        assert (await c.get(f"/api/duty/{first['id']}", headers=h["chief"])).json()["address"] == "oa@example.org"
        r = await c.get(f"/api/duty?since={iso(t0).replace('+', '%2B')}&until={iso(t0 + timedelta(days=63)).replace('+', '%2B')}", headers=h["oa"])
        assert r.status_code == 422 and "at most 62 days" in r.json()["detail"]
        r = await c.get(f"/api/duty?since={iso(t0).replace('+', '%2B')}&until={iso(t0).replace('+', '%2B')}", headers=h["oa"])
        assert r.status_code == 422 and "until must be after since" in r.json()["detail"]
        r = await c.get("/api/duty?since=9999-12-31T23:00:00Z", headers=h["oa"])  # no overflow computing the default until
        assert r.status_code == 422 and "since" in r.json()["detail"]
        assert (await c.patch("/api/duty/now", headers=h["oa"], json={})).status_code == 405  # `now` is not a shift id

        # changing: within reach only, with the same checks
        r = await c.patch(f"/api/duty/{second['id']}", headers=h["oa"], json={"ends_at": iso(t0 + timedelta(hours=8)), "note": "换班"})
        assert r.status_code == 200 and r.json()["note"] == "换班" and r.json()["ends_at"].startswith(iso(t0 + timedelta(hours=8))[:19])
        r = await c.patch(f"/api/duty/{second['id']}", headers=h["oa"], json={"ends_at": iso(t0)})
        assert r.status_code == 422 and "ends_at must be after starts_at" in r.json()["detail"]
        r = await c.patch(f"/api/duty/{second['id']}", headers=h["oa"], json={"officer": "oa"})  # oa is on duty then already
        assert r.status_code == 409
        assert (await c.patch(f"/api/duty/{second['id']}", headers=h["oa"], json={"unit_id": "office-b"})).status_code == 404
        assert (await c.patch(f"/api/duty/{second['id']}", headers=h["ob"], json={"note": "x"})).status_code == 404
        assert (await c.patch(f"/api/duty/{second['id']}", headers=h["oa"], json={"starts_at": None})).status_code == 422
        assert (await c.delete(f"/api/duty/{second['id']}", headers=h["ob"])).status_code == 404
        assert (await c.delete(f"/api/duty/{second['id']}", headers=h["oa"])).status_code == 204
        assert (await c.get(f"/api/duty/{second['id']}", headers=h["oa"])).status_code == 404

        async with gw.services.db.session() as s:
            audited = [(e.actor, e.action, e.target) for e in (await s.scalars(select(AuditEntry).where(AuditEntry.action.like("duty.%"))
                                                                                .order_by(AuditEntry.id))).all()]
        assert ("oa", "duty.created", f"duty:{first['id']}") in audited
        assert audited[-2:] == [("oa", "duty.updated", f"duty:{second['id']}"), ("oa", "duty.deleted", f"duty:{second['id']}")]
        assert sum(a == "duty.created" for _, a, _ in audited) == 5
        assert await gw.services.audit.verify() == []


@pytest.mark.postgres
async def test_on_duty_now_falls_back_to_the_nearest_ancestor(any_db_url: str, make_config: Any) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        h = await arrange(gw, {"oa": ("officer", "office-a"), "ob": ("monitor", "office-b"), "chief": ("admin", "county")})
        c = gw.client
        now = datetime.now(UTC)
        for body in (shift("county", now - timedelta(hours=3), 12, name="县值班长"), shift("office-a", now - timedelta(hours=1), 8, officer="oa"),
                     shift("office-b", now + timedelta(hours=1), 8, name="later, not now"),
                     shift("office-b", now - timedelta(hours=9), 8, name="earlier, not now")):
            assert (await c.post("/api/duty", headers=h["chief"], json=body)).status_code == 201

        own = (await c.get("/api/duty/now", headers=h["oa"])).json()  # default: the caller's unit
        assert own["unit_id"] == "office-a" and own["covered_by"] == "office-a" and own["inherited"] is False
        assert [s["name"] for s in own["shifts"]] == ["oa"]
        # office-a1 has no shift: its parent office covers it (not the county, which is further)
        below = (await c.get("/api/duty/now?unit_id=office-a1", headers=h["oa"])).json()
        assert below["covered_by"] == "office-a" and below["inherited"] is True
        # office-b's shifts are not now: the county's duty officer covers it, and says so
        b = (await c.get("/api/duty/now", headers=h["ob"])).json()
        assert b["unit_id"] == "office-b" and b["covered_by"] == "county" and b["covered_by_name"] == "某县司法局" and b["inherited"] is True
        assert [s["name"] for s in b["shifts"]] == ["县值班长"]
        # nobody above the county: no one on duty for the root
        root = (await c.get("/api/duty/now?unit_id=root", headers=await gw.login("boss", "admin"))).json()
        assert root["covered_by"] is None and root["shifts"] == [] and root["inherited"] is False
        # the same answer from a plain (sync) Session, as the outbox's routing reads it in the alert's transaction
        async with gw.services.db.session() as s:
            path = "/root/county/office-a/office-a1/"
            unit, shifts = await s.run_sync(lambda ss: nearest(path, ss.scalars(on_duty_query(path, datetime.now(UTC))).all()))
        assert unit == "office-a" and [sh.officer for sh in shifts] == ["oa"]
        assert (await c.get("/api/duty/now?unit_id=office-a", headers=h["ob"])).status_code == 404
        assert (await c.get("/api/duty/now?unit_id=county", headers=h["oa"])).status_code == 404


@pytest.mark.postgres
async def test_handover_lists_the_open_alerts_of_the_unit_subtree(any_db_url: str, make_config: Any) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        h = await arrange(gw, {"oa": ("officer", "office-a"), "ob": ("officer", "office-b")})
        c = gw.client
        change = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
        night = shift("office-a", change - timedelta(hours=12), 12, name="夜班")
        day = shift("office-a", change, 12, officer="oa")
        later = shift("office-a", change + timedelta(hours=12), 12, name="下一夜班")
        for body in (night, day, later):
            assert (await c.post("/api/duty", headers=h["oa"], json=body)).status_code == 201

        opened = change - timedelta(days=2)
        async with gw.services.db.session() as s:
            s.add_all([Person(id="p-a", name="张三", unit_id="office-a"), Person(id="p-a1", name="<img src=x>李四", unit_id="office-a1"),
                       Person(id="p-b", name="王五", unit_id="office-b")])
            rows = {
                "a-open": Alert(kind="curfew", level="orange", state="open", person_id="p-a", unit_id="office-a", opened_at=opened + timedelta(hours=2),
                                assigned_unit_id="office-a", assignee="oa",
                                notes=[AlertNote(at=opened, author="system", action="opened"), AlertNote(at=opened + timedelta(hours=3), author="oa", action="note", text="已电话联系")]),
                "a1-ack": Alert(kind="exclusion_breach", level="red", state="acknowledged", person_id="p-a1", unit_id="office-a1", opened_at=opened,
                                acknowledged_at=opened, acknowledged_by="oa", notes=[AlertNote(at=opened, author="oa", action="acknowledged", text="核实中")]),
                "a-resolved": Alert(kind="sos", level="red", state="resolved", person_id="p-a", unit_id="office-a", opened_at=opened - timedelta(hours=1)),
                "b-open": Alert(kind="sos", level="red", state="open", person_id="p-b", unit_id="office-b", opened_at=opened - timedelta(hours=2)),
                "a-device": Alert(kind="tamper", level="yellow", state="open", device_id="t-9", unit_id="office-a", opened_at=opened + timedelta(hours=5)),
            }
            for a in rows.values():
                a.dedup_key, a.original_level, a.updated_at, a.count = f"k-{id(a)}", a.level, a.opened_at, 1
            s.add_all(rows.values())
            await s.commit()
            ids = {k: a.id for k, a in rows.items()}

        at = (change + timedelta(minutes=20)).isoformat().replace("+", "%2B")
        r = await c.get(f"/api/duty/handover?unit_id=office-a&at={at}", headers=h["oa"])
        assert r.status_code == 200, r.text
        ho = r.json()
        assert ho["unit_name"] == "甲司法所" and ho["window_s"] == 7200
        assert [s["name"] for s in ho["outgoing"]] == ["夜班"] and [s["name"] for s in ho["incoming"]] == ["oa"]
        # oldest first; the resolved one and the sibling office's are not there
        assert [a["id"] for a in ho["alerts"]] == [ids["a1-ack"], ids["a-open"], ids["a-device"]]
        assert ho["total_alerts"] == 3 and ho["truncated"] is False
        first, second, third = ho["alerts"]
        assert first["person_name"] == "<img src=x>李四" and first["state"] == "acknowledged" and first["level"] == "red"
        assert first["last_note"]["text"] == "核实中"
        assert second["assignee"] == "oa" and second["assigned_unit_id"] == "office-a" and second["last_note"]["text"] == "已电话联系"
        assert second["kind"] == "curfew" and second["person_name"] == "张三"
        assert third["person_id"] is None and third["person_name"] is None

        # just before the change, the same shifts hand over; the view is bounded
        before = (change - timedelta(minutes=20)).isoformat().replace("+", "%2B")
        ho = (await c.get(f"/api/duty/handover?unit_id=office-a&at={before}&limit=2", headers=h["oa"])).json()
        assert [s["name"] for s in ho["outgoing"]] == ["夜班"] and [s["name"] for s in ho["incoming"]] == ["oa"]
        assert len(ho["alerts"]) == 2 and ho["total_alerts"] == 3 and ho["truncated"] is True
        # the office below: its own alert only; the sibling office: not in reach
        sub = (await c.get(f"/api/duty/handover?unit_id=office-a1&at={at}", headers=h["oa"])).json()
        assert [a["id"] for a in sub["alerts"]] == [ids["a1-ack"]] and sub["outgoing"] == sub["incoming"] == []
        assert (await c.get("/api/duty/handover?unit_id=office-a", headers=h["ob"])).status_code == 404
        own = (await c.get("/api/duty/handover", headers=h["ob"])).json()
        assert own["unit_id"] == "office-b" and [a["id"] for a in own["alerts"]] == [ids["b-open"]]
