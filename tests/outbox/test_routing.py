"""Routing on SQLite and PostgreSQL: rules per unit (with or without the units below it) by
level, kind and change; new red and orange alerts to the duty officer of the alert's unit
(the nearest unit with someone on duty); an escalation also to the unit it is assigned to.
Dead letters are listed to admins of the units in reach only.

The tree: root -> county -> office-a, office-b (rows written through the ORM)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from gateway.auth.passwords import hash_password
from gateway.db.models import DutyShift, OutboxChange, OutboxDelivery, Person, Unit, User
from gateway.outbox.router import Route, Router
from tests.conftest import free_port, running
from tests.waiting import wait_for

TREE = (("county", "root"), ("office-a", "county"), ("office-b", "county"))
PASSWORD = "correct-horse-1"


async def arrange(gw: Any) -> None:
    now = datetime.now(UTC)
    async with gw.services.db.session() as s:
        paths = {"root": "/root/"}
        for uid, parent in TREE:
            paths[uid] = f"{paths[parent]}{uid}/"
            s.add(Unit(id=uid, name=uid, parent_id=parent, path=paths[uid], source="api", created_at=now, updated_at=now))
        s.add(Person(id="pa", name="甲", unit_id="office-a"))
        s.add(Person(id="pb", name="乙", unit_id="office-b"))
        # office-b's duty officer now; office-a has nobody on duty, so the county's covers it
        s.add(DutyShift(unit_id="office-b", name="乙所值班员", channel="mail", address="b-duty@sfj.example.cn",
                        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=8)))
        s.add(DutyShift(unit_id="county", name="县局值班长", channel="county-robot", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=8)))
        s.add(User(username="admin-a", password_hash=hash_password(PASSWORD), role="admin", unit_id="office-a"))
        await s.commit()


def settings(make_config: Any, url: str, **db: Any) -> Any:
    return make_config(**db, delivery={
        "channels": [{"name": n, "kind": "webhook", "url": url} for n in ("a-robot", "county-robot", "mail", "b-robot")],
        "rules": [
            {"unit": "office-a", "levels": ["red", "orange"], "channels": ["a-robot"]},
            {"unit": "county", "levels": ["red"], "include_below": True, "channels": ["county-robot"]},
            {"unit": "county", "levels": ["yellow"], "include_below": False, "channels": ["county-robot"]},
            {"unit": "office-b", "kinds": ["curfew"], "changes": ["opened", "escalated"], "channels": ["b-robot"]},
        ],
        "retry": {"base_delay_s": 60},  # nothing listens: the first attempt fails and the rest wait
    })


async def routes_of(gw: Any, alert_id: int) -> dict[str, set[Route]]:
    async with gw.services.db.session() as s:
        rows = (await s.execute(select(OutboxChange.change, OutboxDelivery.channel, OutboxDelivery.address)
                                .join(OutboxDelivery, OutboxDelivery.change_id == OutboxChange.id).where(OutboxChange.alert_id == alert_id))).all()
    out: dict[str, set[Route]] = {}
    for change, channel, address in rows:
        out.setdefault(change, set()).add(Route(channel, address))
    return out


async def all_routed(gw: Any) -> bool:
    async with gw.services.db.session() as s:
        return await s.scalar(select(OutboxChange.id).where(OutboxChange.routed.is_(False)).limit(1)) is None


async def test_rules_by_unit_level_kind_and_the_duty_officer(any_db_url: str, make_config: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    async with running(settings(make_config, url, storage={"database_url": any_db_url})) as gw:
        await arrange(gw)
        al = gw.services.alerts
        orange_a = await al.raise_alert("inclusion_exit", person_id="pa", device_id="ta")     # office-a, orange
        red_b = await al.raise_alert("tamper", person_id="pb", device_id="tb")                # office-b, red
        curfew_b = await al.raise_alert("curfew", person_id="pb", device_id="tb")             # office-b, orange, curfew
        yellow_a = await al.raise_alert("lost_contact", person_id="pa", device_id="ta")       # office-a, yellow
        await wait_for(lambda: all_routed(gw), 30, "every change routed")
        assert await routes_of(gw, orange_a["id"]) == {"opened": {Route("a-robot"), Route("county-robot")}}  # rule + the county's duty officer
        assert await routes_of(gw, red_b["id"]) == {"opened": {Route("county-robot"), Route("mail", "b-duty@sfj.example.cn")}}
        assert await routes_of(gw, curfew_b["id"]) == {"opened": {Route("b-robot"), Route("mail", "b-duty@sfj.example.cn")}}
        assert await routes_of(gw, yellow_a["id"]) == {}  # the county's yellow rule is for the county itself only

        # an escalation also reaches the unit the alert is assigned to: its rules and its duty officer
        await al.assign(orange_a["id"], "admin", unit_id="office-b", reach="/root/")
        async with gw.services.db.session() as s:
            change = OutboxChange(alert_id=orange_a["id"], change="escalated", unit_id="office-a",
                                  payload={**orange_a, "level": "red", "assigned_unit_id": "office-b"}, created_at=datetime.now(UTC))
            s.add(change)
            await s.flush()
            routes = await Router(gw.services.config.delivery, []).routes(s, change)
        assert set(routes) == {Route("a-robot"), Route("county-robot"), Route("mail", "b-duty@sfj.example.cn")}
        assert len(routes) == len(set(routes))


async def test_dead_letters_are_listed_within_reach(any_db_url: str, make_config: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    cfg = settings(make_config, url, storage={"database_url": any_db_url})
    async with running(cfg) as gw:
        await arrange(gw)
        a = await gw.services.alerts.raise_alert("sos", person_id="pa", device_id="ta")
        b = await gw.services.alerts.raise_alert("sos", person_id="pb", device_id="tb")
        await wait_for(lambda: all_routed(gw), 30, "every change routed")
        async with gw.services.db.session() as s:  # as if each had been refused
            for d in (await s.scalars(select(OutboxDelivery))).all():
                d.state, d.last_error = "dead", "HTTP 400"
            await s.commit()
        tok = (await gw.client.post("/api/auth/token", data={"username": "admin-a", "password": PASSWORD})).json()["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        dead = (await gw.client.get("/api/outbox/dead", headers=h)).json()
        assert dead and {d["alert_id"] for d in dead} == {a["id"]}
        other = (await gw.client.get(f"/api/outbox/alerts/{b['id']}", headers=h))
        assert other.status_code == 404
        async with gw.services.db.session() as s:
            b_delivery = await s.scalar(select(OutboxDelivery.id).join(OutboxChange, OutboxChange.id == OutboxDelivery.change_id)
                                        .where(OutboxChange.alert_id == b["id"]).limit(1))
        assert (await gw.client.post(f"/api/outbox/{b_delivery}/retry", headers=h)).status_code == 404
