"""Two sibling offices under one county, on SQLite and PostgreSQL: an officer (or admin) of
office A sees and acts on A's persons, devices, cameras, zones, alerts, recordings,
proceedings, evidence, check-ins, face matches, uploads, duty shifts and deliveries, and
nothing of office B's: every item route answers 404 for B's items, every list leaves them
out, and a create that names B's unit, person or camera is a 404. The county's officer sees
both. The routes are enumerated from the app, as the route-auth test does: a route added
later without scoping fails here until it is scoped or listed (with the reason) below."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.auth.passwords import hash_password
from gateway.db.models import (
    CallSession,
    CheckinLink,
    CheckInRow,
    DutyShift,
    Evidence,
    FaceEncoding,
    FaceMatch,
    OutboxDelivery,
    PositionRow,
    Proceeding,
    Recording,
    UploadRow,
    User,
)
from tests.conftest import free_port, running
from tests.core.test_route_auth import http_routes
from tests.waiting import wait_for

pytestmark = pytest.mark.postgres
PASSWORD = "correct-horse-1"

# Routes that hold nothing of a unit, each with the reason.
NOT_PER_UNIT = {
    "/healthz", "/metrics", "/openapi.json",  # the process, not its data
    "/api/auth/token", "/api/auth/login", "/api/auth/logout", "/api/auth/me",  # the caller's own session
    "/api/map/settings", "/api/evidence/signing-key", "/api/alerts/disposals",  # configuration every unit shares
    "/api/cluster",  # nodes and leases, not units' data
    "/api/kiosk/heartbeat", "/api/kiosk/events", "/api/kiosk/checkins", "/api/kiosk/challenges",  # a kiosk's key acts for that kiosk only
    "/api/kiosk/calls", "/api/kiosk/calls/{call_id}/join", "/api/kiosk/calls/{call_id}/leave",  # ... and joins only its own sessions
    "/api/call-link", "/api/call-link/join", "/api/call-link/leave",  # a join link's token is one party of one session
    "/api/remote/link", "/api/remote/challenges", "/api/remote/checkins", "/remote",  # a link's token acts for its one person only
    "/api/uploads/",  # tus creation: checked below (a body-cam of B named in the metadata)
    "/login", "/", "/console", "/docs", "/console/{page:path}", "/static/roles.js",  # pages: their data comes from the API
}


async def token(gw: Any, name: str) -> dict[str, str]:
    r = await gw.client.post("/api/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def arrange(gw: Any) -> dict[str, dict[str, Any]]:
    """The tree, a user per role and unit, and one of everything per office; the ids."""
    c = gw.client
    now = datetime.now(UTC)
    async with gw.services.db.session() as s:
        s.add(User(username="root-admin", password_hash=hash_password(PASSWORD), role="admin"))
        await s.commit()
    root = await token(gw, "root-admin")
    for uid, parent in (("county", "root"), ("office-a", "county"), ("office-b", "county")):
        r = await c.post("/api/units", headers=root, json={"id": uid, "name": f"{uid} 司法所", "parent_id": parent})
        assert r.status_code == 201, r.text
    for name, role, unit in (("aa", "admin", "office-a"), ("oa", "officer", "office-a"), ("ob", "officer", "office-b"), ("oc", "officer", "county")):
        r = await c.post("/api/users", headers=root, json={"username": name, "password": PASSWORD, "role": role, "unit_id": unit})
        assert r.status_code == 201 and r.json()["unit_id"] == unit, r.text
    ids: dict[str, dict[str, Any]] = {}
    for o in ("a", "b"):
        unit, person = f"office-{o}", f"person-office-{o}"
        assert (await c.post("/api/persons", headers=root, json={"id": person, "name": f"人员{o}", "unit_id": unit})).status_code == 201
        for dev in ({"id": f"trk-office-{o}", "kind": "tracker", "person_id": person},
                    {"id": f"bwc-office-{o}", "kind": "bodycam"},
                    {"id": f"cam-office-{o}", "kind": "camera", "settings": {"url": f"rtsp://127.0.0.1:{free_port()}/office-{o}", "record": False}}):
            r = await c.post("/api/devices", headers=root, json={**dev, "unit_id": unit})
            assert r.status_code == 201 and r.json()["unit_id"] == unit, r.text
        r = await c.post("/api/zones", headers=root, json={"id": f"zone-office-{o}", "kind": "inclusion", "unit_id": unit, "person_ids": [person],
                                                           "geometry": {"type": "Point", "coordinates": [121.47, 31.23]}, "radius_m": 500})
        assert r.status_code == 201, r.text
        alert = await gw.services.alerts.raise_alert("tamper", person_id=person, device_id=f"trk-office-{o}")
        assert alert["unit_id"] == unit
        async with gw.services.db.session() as s:
            rows: dict[str, Any] = {
                "recording_id": Recording(camera_id=f"cam-office-{o}", path=f"recordings/office-{o}.mp4", started_at=now),
                "proceeding_id": Proceeding(kind="talk", person_id=person, camera_ids=[f"cam-office-{o}"], state="sealed", unit_id=unit, started_by="oa"),
                "evidence_id": Evidence(kind="upload", sha256=o * 64, size=1, path=f"evidence/office-{o}", device_id=f"bwc-office-{o}",
                                        unit_id=unit, thumbnail=f"evidence/office-{o}.jpg"),
                "checkin_id": CheckInRow(kiosk_id="kiosk-1", person_id=person, result="accepted", unit_id=unit, thumbnail=f"checkins/office-{o}.jpg"),
                "match_id": FaceMatch(camera_id=f"cam-office-{o}", person_id=person, snapshot=f"faces/office-{o}.jpg"),
                "photo_id": FaceEncoding(person_id=person, photo_path=f"faces/office-{o}.jpg", encoding=b"\0" * 1024),
                "call_id": CallSession(id=f"call-office-{o}", kind="talk", person_id=person, state="ended", node_id="n", created_by="oa",
                                       unit_id=unit),
                "link_id": CheckinLink(token_hash=o * 64, person_id=person, unit_id=unit, created_by="oa", expires_at=now + timedelta(hours=1)),
                "shift_id": DutyShift(unit_id=unit, name=f"值班{o}", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)),
            }
            s.add_all(rows.values())
            s.add(PositionRow(device_id=f"trk-office-{o}", person_id=person, fix_time=now, lat=31.23, lon=121.47))
            s.add(UploadRow(id=(o * 32), device_id=f"bwc-office-{o}", actor="test", length=10, expires_at=now + timedelta(hours=1)))
            await s.commit()
            ids[o] = {k: v.id for k, v in rows.items()}
        ids[o] |= {"unit_id": unit, "person_id": person, "device_id": f"trk-office-{o}", "camera_id": f"cam-office-{o}",
                   "zone_id": f"zone-office-{o}", "alert_id": alert["id"], "upload_id": o * 32, "session_id": "s1"}
    ids["b"]["user_id"] = (await gw.client.get("/api/users", headers=root)).json()[-2]["id"]  # ob
    ids["a"]["user_id"] = (await gw.client.get("/api/users", headers=root)).json()[-3]["id"]  # oa

    async def delivered() -> bool:
        async with gw.services.db.session() as s:
            from sqlalchemy import func, select
            return int(await s.scalar(select(func.count()).select_from(OutboxDelivery)) or 0) == 2
    await wait_for(delivered, 30, "a delivery per office's alert")
    async with gw.services.db.session() as s:
        from sqlalchemy import select
        for d in (await s.scalars(select(OutboxDelivery).order_by(OutboxDelivery.id))).all():
            ids["a" if d.id == 1 else "b"]["delivery_id"] = d.id  # the alerts were raised a, then b
    return ids


def fill(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(values[m.group(1)]), path)


def body_for(method: str, path: str) -> dict[str, Any]:
    """A request that passes validation, so the answer is the route's own."""
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    bodies: dict[str, dict[str, Any]] = {
        "/api/alerts/{alert_id}/assign": {"json": {"unit_id": "office-a"}},
        "/api/alerts/{alert_id}/assess": {"json": {"note": "研判"}},
        "/api/alerts/{alert_id}/dispose": {"json": {"disposal": "phone_call"}},
        "/api/alerts/{alert_id}/feedback": {"json": {"note": "反馈"}},
        "/api/alerts/{alert_id}/level": {"json": {"level": "red", "reason": "因为"}},
        "/api/alerts/{alert_id}/notes": {"json": {"text": "备注"}},
        "/api/cameras/{camera_id}/whep": {"content": b"v=0\r\n", "headers": {"content-type": "application/sdp"}},
        "/api/persons/{person_id}/photos": {"files": {"file": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}},
        "/api/units/{unit_id}": {"json": {"name": "改名"}},
        "/api/duty/{shift_id:int}": {"json": {"ends_at": later}},
        "/api/uploads/{upload_id}": {"content": b"0123456789", "headers": {"tus-resumable": "1.0.0", "upload-offset": "0",
                                                                          "content-type": "application/offset+octet-stream"}},
    }
    out = dict(bodies.get(path, {"json": {}} if method in ("POST", "PATCH") else {}))
    if path.startswith("/api/uploads/"):
        out.setdefault("headers", {"tus-resumable": "1.0.0"})
    return out


async def test_an_office_sees_only_its_own(any_db_url: str, make_config: Any) -> None:
    cfg = make_config(storage={"database_url": any_db_url}, delivery={
        "channels": [{"name": "hook", "kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook"}],
        "rules": [{"levels": ["red"], "channels": ["hook"]}], "retry": {"base_delay_s": 600}})
    async with running(cfg) as gw:
        ids = await arrange(gw)
        c = gw.client
        aa, oa, oc = await token(gw, "aa"), await token(gw, "oa"), await token(gw, "oc")
        item_routes, list_routes = [], []
        for method, path, _ in http_routes(gw.app):
            if path in NOT_PER_UNIT:
                continue
            (item_routes if "{" in path else list_routes).append((method, path))

        # every item route: B's item is a 404 to A's admin; A's own item is not
        for method, path in item_routes:
            r = await c.request(method, fill(path, ids["b"]), headers={**aa, **body_for(method, path).get("headers", {})},
                                **{k: v for k, v in body_for(method, path).items() if k != "headers"})
            assert r.status_code == 404, f"{method} {path} on office B's item answered {r.status_code}: {r.text[:200]}"
            if method == "GET":
                mine = await c.get(fill(path, ids["a"]), headers=aa)
                assert mine.status_code != 404 or "file" in mine.text or "thumbnail" in mine.text or "camera" in mine.text, \
                    f"GET {path} on office A's own item answered 404: {mine.text[:200]}"
        # the tus HEAD (not listed with the methods above)
        r = await c.head(f"/api/uploads/{ids['b']['upload_id']}", headers={**aa, "tus-resumable": "1.0.0"})
        assert r.status_code == 404
        assert (await c.head(f"/api/uploads/{ids['a']['upload_id']}", headers={**aa, "tus-resumable": "1.0.0"})).status_code == 200

        # every list: nothing of B's for A's admin and officer; the county's officer sees both
        seen_by_county: dict[str, str] = {}
        for method, path in list_routes:
            if method != "GET":
                continue
            for who in (aa, oa):
                r = await c.get(path, headers=who)
                if path == "/api/audit":
                    assert r.status_code == 403  # the audit log spans every unit: root users only
                    continue
                assert r.status_code in (200, 403), f"GET {path}: {r.status_code} {r.text[:200]}"
                assert "office-b" not in r.text, f"GET {path} shows office B's items to office A"
            seen_by_county[path] = (await c.get(path, headers=oc)).text
        for path in ("/api/persons", "/api/devices", "/api/zones", "/api/alerts", "/api/recordings", "/api/proceedings", "/api/evidence",
                     "/api/checkins", "/api/faces/seen", "/api/positions/latest", "/api/units", "/api/duty", "/api/cameras", "/api/alerts/export.csv"):
            assert "office-a" in seen_by_county[path] and "office-b" in seen_by_county[path], f"the county does not see both offices in {path}"
        mine = (await c.get("/api/persons", headers=oa)).json()
        assert [p["id"] for p in mine] == ["person-office-a"]

        # creating or changing something that names B's unit, person or camera: 404, as if it did not exist
        later = datetime.now(UTC) + timedelta(hours=3)
        naming = [
            ("/api/users", {"username": "x1", "password": PASSWORD, "role": "officer", "unit_id": "office-b"}),
            ("/api/persons", {"name": "某人", "unit_id": "office-b"}),
            ("/api/devices", {"id": "trk-x", "kind": "tracker", "person_id": "person-office-b"}),
            ("/api/devices", {"id": "trk-y", "kind": "tracker", "unit_id": "office-b"}),
            ("/api/zones", {"kind": "inclusion", "geometry": {"type": "Point", "coordinates": [121.4, 31.2]}, "radius_m": 50, "person_ids": ["person-office-b"]}),
            ("/api/zones", {"kind": "inclusion", "geometry": {"type": "Point", "coordinates": [121.4, 31.2]}, "radius_m": 50, "unit_id": "office-b"}),
            ("/api/units", {"id": "x2", "name": "某所", "parent_id": "office-b"}),
            ("/api/units", {"id": "x3", "name": "某所", "parent_id": "county"}),
            ("/api/duty", {"unit_id": "office-b", "name": "值班", "starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=1)).isoformat()}),
            ("/api/proceedings", {"camera_ids": ["cam-office-b"], "kind": "talk"}),
            ("/api/proceedings", {"camera_ids": ["cam-office-a"], "kind": "talk", "person_id": "person-office-b"}),
        ]
        for path, body in naming:
            r = await c.post(path, headers=aa, json=body)
            assert r.status_code == 404, f"POST {path} {body}: {r.status_code} {r.text[:200]}"
        r = await c.post(f"/api/alerts/{ids['a']['alert_id']}/assign", headers=aa, json={"unit_id": "office-b"})
        assert r.status_code == 404
        r = await c.patch(f"/api/persons/{ids['a']['person_id']}", headers=aa, json={"unit_id": "office-b"})
        assert r.status_code == 404
        r = await c.post("/api/uploads/", headers={**aa, "tus-resumable": "1.0.0", "upload-length": "10",
                                                   "upload-metadata": "device_id YndjLW9mZmljZS1i,filename YS5tcDQ=,recorded_at MjAyNi0xMi0wNVQwMDowMDowMFo="})
        assert r.status_code == 400 and "not a registered body-cam" in r.text  # as for a device that does not exist
        # and the admin of A does act on A's own: a unit below it, a person in it
        assert (await c.post("/api/units", headers=aa, json={"id": "office-a1", "name": "甲所一组", "parent_id": "office-a"})).status_code == 201
        assert (await c.post("/api/persons", headers=aa, json={"id": "person-a1", "name": "新人", "unit_id": "office-a1"})).status_code == 201
        assert (await c.get("/api/persons/person-a1", headers=oa)).json()["unit_id"] == "office-a1"
