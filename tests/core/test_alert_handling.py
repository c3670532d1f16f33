"""Alert handling as the corrections units work it (assign, assess 研判, dispose 处置, feed back
反馈, level by hand, notes), scoped to the caller's reach; filters and the CSV export. On SQLite
and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.models import AuditEntry, Person, Unit, User
from tests.conftest import running

UNITS = [("cty", "County bureau", "root"), ("a", "Office A", "cty"), ("b", "Office B", "cty"), ("a1", "Team A1", "a")]


async def _org(gw: Any) -> None:
    """A county with two sibling offices (and a team under office A); a person in each office."""
    async with gw.services.db.session() as s:
        paths = {"root": "/root/"}
        for uid, name, parent in UNITS:
            paths[uid] = f"{paths[parent]}{uid}/"
            s.add(Unit(id=uid, name=name, parent_id=parent, path=paths[uid]))
        s.add_all([Person(id="pa", name="A person", unit_id="a"), Person(id="pb", name="B person", unit_id="b")])
        await s.commit()


async def _login(gw: Any, username: str, role: str, unit_id: str, disabled: bool = False) -> dict[str, str]:
    headers = await gw.login(username, role)
    async with gw.services.db.session() as s:
        u = (await s.scalars(select(User).where(User.username == username))).one()
        u.unit_id, u.disabled = unit_id, disabled
        await s.commit()
    return headers


async def test_an_alert_assigned_assessed_disposed_and_fed_back_shows_its_full_history(any_db_url, make_config) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        await _org(gw)
        boss = await _login(gw, "boss", "officer", "cty")
        wang = await _login(gw, "wang", "officer", "a1")
        await _login(gw, "zhao", "officer", "b")
        await _login(gw, "gone", "officer", "a", disabled=True)
        c = gw.client
        staged: list[tuple[str, dict[str, Any]]] = []

        class Sink:  # the outbox's seat: the change is staged inside its transaction
            def stage(self, s: Any, change: str, payload: dict[str, Any]) -> None:
                staged.append((change, payload))

        gw.services.alerts.outbox = Sink()
        alert = await gw.services.alerts.raise_alert("curfew", person_id="pa", device_id="t1", message="out after 22:00")
        aid = alert["id"]
        assert alert["unit_id"] == "a" and alert["assigned_unit_id"] is None
        url = f"/api/alerts/{aid}"

        # order rules: nothing can be disposed of before it is assessed, nor fed back before a disposal
        r = await c.post(f"{url}/dispose", headers=boss, json={"disposal": "phone_call"})
        assert r.status_code == 409 and "assess" in r.json()["detail"]
        r = await c.post(f"{url}/feedback", headers=boss, json={"note": "done"})
        assert r.status_code == 409 and "dispos" in r.json()["detail"]

        # assignee rules: outside the caller's reach or unknown → 404; not a member / disabled → 422
        assert (await c.post(f"{url}/assign", headers=boss, json={"unit_id": "a", "assignee": "nobody"})).status_code == 404
        r = await c.post(f"{url}/assign", headers=boss, json={"unit_id": "a", "assignee": "zhao"})
        assert r.status_code == 422 and "member" in r.json()["detail"]
        assert (await c.post(f"{url}/assign", headers=boss, json={"unit_id": "a", "assignee": "gone"})).status_code == 422
        assert (await c.post(f"{url}/assign", headers=boss, json={"unit_id": "nowhere"})).status_code == 404

        r = await c.post(f"{url}/assign", headers=boss, json={"unit_id": "a", "assignee": "wang"})
        assert r.status_code == 200, r.text
        assert r.json()["assigned_unit_id"] == "a" and r.json()["assignee"] == "wang" and r.json()["state"] == "open"
        r = await c.post(f"{url}/assess", headers=wang, json={"note": "curfew breach confirmed by track"})
        assert r.status_code == 200 and r.json()["state"] == "acknowledged" and r.json()["assessed_by"] == "wang"
        r = await c.post(f"{url}/level", headers=wang, json={"level": "red", "reason": "third breach this month"})
        assert r.status_code == 200 and r.json()["level"] == "red" and r.json()["original_level"] == "orange"
        assert (await c.post(f"{url}/level", headers=wang, json={"level": "blue", "reason": "  "})).status_code == 422
        assert (await c.post(f"{url}/level", headers=wang, json={"level": "red", "reason": "again"})).status_code == 409
        assert (await c.post(f"{url}/dispose", headers=wang, json={"disposal": "teleport"})).status_code == 422
        r = await c.post(f"{url}/dispose", headers=wang, json={"disposal": "home_visit", "note": "visited at 23:10"})
        assert r.status_code == 200 and r.json()["disposal"] == "home_visit" and r.json()["disposal_note"] == "visited at 23:10"
        r = await c.post(f"{url}/notes", headers=wang, json={"text": "family informed"})
        assert r.status_code == 200
        r = await c.post(f"{url}/feedback", headers=wang, json={"note": "back home, warned"})
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["state"] == "resolved" and done["resolved_by"] == "wang" and done["fed_back_by"] == "wang" and done["feedback"] == "back home, warned"

        # closed: nothing but notes
        for action, body in (("assign", {"unit_id": "a"}), ("assess", {"note": "x"}), ("dispose", {"disposal": "other"}),
                             ("feedback", {"note": "x"}), ("level", {"level": "blue", "reason": "x"}), ("resolve", {}), ("ack", {})):
            r = await c.post(f"{url}/{action}", headers=boss, json=body)
            assert r.status_code == 409, (action, r.status_code, r.text)
        assert (await c.post(f"{url}/notes", headers=boss, json={"text": "reviewed"})).status_code == 200

        full = (await c.get(url, headers=boss)).json()
        history = [(n["action"], n["author"], n["text"]) for n in full["notes"]]
        assert history == [
            ("opened", "system", "out after 22:00"),
            ("assigned", "boss", "Office A (a) → wang"),
            ("assessed", "wang", "curfew breach confirmed by track"),
            ("level", "wang", "orange → red: third breach this month"),
            ("disposed", "wang", "home_visit: visited at 23:10"),
            ("note", "wang", "family informed"),
            ("fed_back", "wang", "back home, warned"),
            ("note", "boss", "reviewed"),
        ]
        times = [datetime.fromisoformat(n["at"]) for n in full["notes"]]
        assert times == sorted(times)
        for key in ("assigned_at", "assessed_at", "disposed_at", "fed_back_at"):
            assert full[key] is not None, key

        async with gw.services.db.session() as s:
            audit = [(e.actor, e.action) for e in (await s.scalars(select(AuditEntry).where(AuditEntry.target == f"alert:{aid}").order_by(AuditEntry.id))).all()]
        assert audit == [("system", "alert.opened"), ("boss", "alert.assigned"), ("wang", "alert.assessed"), ("wang", "alert.level_changed"),
                         ("wang", "alert.disposed"), ("wang", "alert.noted"), ("wang", "alert.fed_back"), ("boss", "alert.noted")]
        assert await gw.services.audit.verify() == []
        # every change went to the outbox with the handling fields (a router can reach the assignee's unit)
        assert [c for c, _ in staged] == ["opened", "assigned", "assessed", "level_changed", "disposed", "noted", "fed_back", "noted"]
        assert all(p["assigned_unit_id"] == "a" for _, p in staged[1:])
        assert staged[-2][1]["state"] == "resolved" and staged[-2][1]["feedback"] == "back home, warned"


async def test_alert_routes_are_scoped_to_the_callers_reach(any_db_url, make_config) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        await _org(gw)
        county = await _login(gw, "county", "officer", "cty")
        off_a = await _login(gw, "off-a", "officer", "a")
        off_b = await _login(gw, "off-b", "officer", "b")
        mon_a = await _login(gw, "mon-a", "monitor", "a")
        c = gw.client
        a = (await gw.services.alerts.raise_alert("tamper", person_id="pa", device_id="t1"))["id"]
        b = (await gw.services.alerts.raise_alert("tamper", person_id="pb", device_id="t2"))["id"]

        async def ids(h: dict[str, str], **q: Any) -> set[int]:
            r = await c.get("/api/alerts", headers=h, params=q)
            assert r.status_code == 200, r.text
            return {x["id"] for x in r.json()}

        assert await ids(off_a) == {a} and await ids(off_b) == {b} and await ids(county) == {a, b}
        assert await ids(county, unit_id="a") == {a} and await ids(county, unit_id="cty") == {a, b}
        # a unit outside reach, as a filter or as a target, is a 404 like one that does not exist
        assert (await c.get("/api/alerts", headers=off_a, params={"unit_id": "b"})).status_code == 404
        assert (await c.get("/api/alerts", headers=off_a, params={"unit_id": "zz"})).status_code == 404
        assert (await c.get(f"/api/alerts/{b}", headers=off_a)).status_code == 404
        for action, body in (("ack", {}), ("resolve", {}), ("assign", {"unit_id": "a"}), ("assess", {"note": "x"}),
                             ("dispose", {"disposal": "other"}), ("feedback", {"note": "x"}), ("level", {"level": "blue", "reason": "x"}),
                             ("notes", {"text": "x"})):
            r = await c.post(f"/api/alerts/{b}/{action}", headers=off_a, json=body)
            assert r.status_code == 404, (action, r.status_code)
        assert (await c.post(f"/api/alerts/{a}/assign", headers=off_a, json={"unit_id": "b"})).status_code == 404
        r = await c.get("/api/alerts/export.csv", headers=off_a)
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert [int(x["id"]) for x in rows] == [a]

        # assigned to office A, office B's alert is A's to see and handle; B still sees it
        assert (await c.post(f"/api/alerts/{b}/assign", headers=county, json={"unit_id": "a"})).status_code == 200
        assert await ids(off_a) == {a, b} and await ids(off_b) == {b}
        assert (await c.post(f"/api/alerts/{b}/assess", headers=off_a, json={"note": "ours now"})).status_code == 200

        # permissions: a monitor notes and acknowledges, but neither assigns, handles nor exports
        assert (await c.post(f"/api/alerts/{a}/notes", headers=mon_a, json={"text": "seen"})).status_code == 200
        for action, body in (("assign", {"unit_id": "a"}), ("assess", {"note": "x"}), ("dispose", {"disposal": "other"}),
                             ("feedback", {"note": "x"}), ("level", {"level": "blue", "reason": "x"})):
            assert (await c.post(f"/api/alerts/{a}/{action}", headers=mon_a, json=body)).status_code == 403, action
        assert (await c.get("/api/alerts/export.csv", headers=mon_a)).status_code == 403


async def test_filters_and_csv_export(make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(alerts={"disposals": [{"id": "talk", "zh_cn": "谈话", "en": "Talk"}, {"id": "other", "zh_cn": "其他", "en": "Other"}]})
    async with running(cfg) as gw:
        await _org(gw)
        boss = await _login(gw, "boss", "admin", "root")
        c = gw.client
        alerts = gw.services.alerts
        t0 = gw.services.clock.now()
        old = (await alerts.raise_alert("lost_contact", person_id="pa", device_id="t1", at=t0 - timedelta(days=3)))["id"]
        evil = (await alerts.raise_alert("tamper", person_id="pb", device_id="t2", message='=HYPERLINK("http://x","y")'))["id"]
        plus = (await alerts.raise_alert("sos", device_id="t3", message="+1 555 张三, \"quoted\"\nsecond line"))["id"]
        assert (await c.post(f"/api/alerts/{evil}/assign", headers=boss, json={"unit_id": "b", "assignee": "boss"})).status_code == 422
        await _login(gw, "zhao", "officer", "b")
        assert (await c.post(f"/api/alerts/{evil}/assign", headers=boss, json={"unit_id": "b", "assignee": "zhao"})).status_code == 200
        await alerts.resolve(plus, "boss", "done")

        assert [d["id"] for d in (await c.get("/api/alerts/disposals", headers=boss)).json()] == ["talk", "other"]
        assert (await c.get("/api/alerts/disposals", headers=boss)).json()[0]["labels"] == {"zh-CN": "谈话", "en": "Talk"}
        assert (await c.post(f"/api/alerts/{evil}/assess", headers=boss, json={"note": "-ok"})).status_code == 200
        assert (await c.post(f"/api/alerts/{evil}/dispose", headers=boss, json={"disposal": "phone_call"})).status_code == 422
        assert (await c.post(f"/api/alerts/{evil}/dispose", headers=boss, json={"disposal": "talk"})).status_code == 200

        async def ids(**q: Any) -> list[int]:
            r = await c.get("/api/alerts", headers=boss, params=q)
            assert r.status_code == 200, r.text
            return sorted(x["id"] for x in r.json())

        assert await ids() == sorted([old, evil, plus])
        assert await ids(level="red") == sorted([evil, plus]) and await ids(kind="lost_contact") == [old]
        assert await ids(state="ongoing") == sorted([old, evil]) and await ids(state="resolved") == [plus]
        assert await ids(assignee="zhao") == [evil] and await ids(unit_id="b") == [evil]
        since = (t0 - timedelta(days=1)).isoformat()
        assert await ids(since=since) == sorted([evil, plus]) and await ids(until=since) == [old]
        assert (await c.get("/api/alerts", headers=boss, params={"limit": 100000})).status_code == 422

        r = await c.get("/api/alerts/export.csv", headers=boss, params={"since": since})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.headers["content-disposition"].startswith('attachment; filename="alerts-') and r.headers["x-export-truncated"] == "false"
        assert r.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
        by_id = {int(x["id"]): x for x in rows}
        assert set(by_id) == {evil, plus}
        assert by_id[evil]["message"] == "'=HYPERLINK(\"http://x\",\"y\")" and by_id[evil]["assessment"] == "'-ok"
        assert by_id[evil]["disposal"] == "talk" and by_id[evil]["assignee"] == "zhao" and by_id[evil]["assigned_unit_id"] == "b"
        assert by_id[plus]["message"] == "'+1 555 张三, \"quoted\"\nsecond line" and by_id[plus]["state"] == "resolved"
        async with gw.services.db.session() as s:
            entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "alerts.exported"))).one()
        assert entry.actor == "boss" and entry.details["rows"] == 2 and entry.details["filters"]["since"].startswith(since[:16])

        # bounded: cut at the limit, and the header and the last line say so
        monkeypatch.setattr("gateway.api.alerts.EXPORT_MAX_ROWS", 2)
        r = await c.get("/api/alerts/export.csv", headers=boss)
        lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
        assert r.headers["x-export-truncated"] == "true" and len(lines) == 4 and lines[-1][0].startswith("# truncated")


async def test_an_assigned_alert_escalates_with_its_assigned_unit_and_a_level_change_restarts_the_count(make_config) -> None:
    from gateway.clock import FakeClock

    clock = FakeClock()
    async with running(make_config(alerts={"escalate": {"yellow": {"after_s": 60}, "orange": {"after_s": 60}}}), clock=clock) as gw:
        await _org(gw)
        boss = await _login(gw, "boss", "officer", "cty")
        staged: list[tuple[str, dict[str, Any]]] = []

        class Sink:
            def stage(self, s: Any, change: str, payload: dict[str, Any]) -> None:
                staged.append((change, payload))

        a = gw.services.alerts
        a.outbox = Sink()
        aid = (await a.raise_alert("lost_contact", person_id="pb", device_id="t1", at=clock.now()))["id"]
        assert (await gw.client.post(f"/api/alerts/{aid}/assign", headers=boss, json={"unit_id": "a"})).status_code == 200
        clock.advance(61)
        assert await a.escalate_due() == 1  # assigning alone does not stop escalation: nobody has taken it up yet
        change, payload = staged[-1]
        assert change == "escalated" and payload["level"] == "orange" and payload["unit_id"] == "b" and payload["assigned_unit_id"] == "a"
        clock.advance(30)
        r = await gw.client.post(f"/api/alerts/{aid}/level", headers=boss, json={"level": "yellow", "reason": "contact expected to resume"})
        assert r.status_code == 200 and r.json()["level"] == "yellow" and r.json()["original_level"] == "yellow"
        clock.advance(59)
        assert await a.escalate_due() == 0  # counted from the change by hand
        clock.advance(2)
        assert await a.escalate_due() == 1
