"""A person's timeline (GET /api/persons/{id}/timeline) on SQLite and PostgreSQL: one merged
list, newest first, walked page by page with the cursor (no item twice, none missing, the
same stays and trips however small the pages and however few positions each page may read),
the kinds and date filters, and the person's unit as the limit of who sees it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.api import timeline as timeline_api
from gateway.db.models import (
    Alert,
    AlertNote,
    CheckInRow,
    Evidence,
    FaceMatch,
    PositionRow,
    Proceeding,
)
from tests.conftest import running
from tests.gps.helpers import offset

pytestmark = pytest.mark.postgres
PASSWORD = "correct-horse-1"
DAY1 = datetime(2026, 11, 20, 8, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def commute(day: datetime) -> list[tuple[datetime, float, float]]:
    """Home 08:00-08:20 (a fix a minute), a 2 km walk east 08:21-08:30, work 08:31-09:00."""
    fixes = [(day + timedelta(minutes=m), *offset(0, 0)) for m in range(21)]
    fixes += [(day + timedelta(minutes=21 + m), *offset(0, 200 * (m + 1))) for m in range(10)]
    fixes += [(day + timedelta(minutes=31 + m), *offset(0, 2100)) for m in range(30)]
    return fixes


async def arrange(r: Any) -> dict[str, dict[str, str]]:
    c = r.client
    root = await r.login("root-admin")
    for uid, parent in (("county", "root"), ("office-a", "county"), ("office-b", "county")):
        assert (await c.post("/api/units", headers=root, json={"id": uid, "name": uid, "parent_id": parent})).status_code == 201
    for name, role, unit in (("oa", "officer", "office-a"), ("ma", "monitor", "office-a"), ("ob", "officer", "office-b")):
        res = await c.post("/api/users", headers=root, json={"username": name, "password": PASSWORD, "role": role, "unit_id": unit})
        assert res.status_code == 201, res.text
    for pid, unit in (("p-a", "office-a"), ("p-b", "office-b")):
        assert (await c.post("/api/persons", headers=root, json={"id": pid, "name": pid, "unit_id": unit})).status_code == 201
    async with r.services.db.session() as s:
        for day in (DAY1, DAY2):
            s.add_all(PositionRow(device_id="trk-a", person_id="p-a", fix_time=t, lat=lat, lon=lon, speed_mps=None) for t, lat, lon in commute(day))
            for k in range(12):  # a check-in every 5 minutes, and a face seen at the same instants
                t = day + timedelta(minutes=5 * k)
                s.add(CheckInRow(kiosk_id="kiosk-1", person_id="p-a", at=t, result="accepted", distance=0.3, threshold=0.6, unit_id="office-a"))
                s.add(FaceMatch(camera_id="cam-1", person_id="p-a", at=t, distance=0.4))
            s.add(Proceeding(kind="talk", person_id="p-a", camera_ids=["cam-1"], state="sealed", started_at=day + timedelta(minutes=33),
                             stopped_at=day + timedelta(minutes=50), unit_id="office-a"))
            s.add(Evidence(kind="upload", sha256="a" * 64, size=10, path="e/1", device_id="bwc-1", person_id="p-a", unit_id="office-a",
                           recorded_at=day + timedelta(minutes=40), received_at=day + timedelta(hours=5)))
            s.add(Evidence(kind="upload", sha256="b" * 64, size=10, path="e/2", device_id="bwc-1", person_id="p-a", unit_id="office-a",
                           received_at=day + timedelta(minutes=41)))  # no recording time: its arrival
            s.add(Alert(kind="inclusion_exit", level="orange", original_level="orange", dedup_key=f"x{day}", person_id="p-a", unit_id="office-a",
                        opened_at=day + timedelta(minutes=25), assignee="oa", assigned_unit_id="office-a", assessment="went to work early",
                        state="acknowledged", notes=[AlertNote(author="oa", action="assessed", text="went to work early")]))
        # not p-a's, or not a body-cam upload: never on p-a's timeline
        s.add(Evidence(kind="proceeding", sha256="c" * 64, size=10, path="e/3", person_id="p-a", unit_id="office-a", received_at=DAY1))
        s.add(CheckInRow(kiosk_id="kiosk-1", person_id="p-b", at=DAY1, result="accepted", unit_id="office-b"))
        s.add(PositionRow(device_id="trk-b", person_id="p-b", fix_time=DAY1, lat=31.2, lon=121.4))
        await s.commit()
    users = {}
    for name in ("oa", "ma", "ob"):
        res = await c.post("/api/auth/token", data={"username": name, "password": PASSWORD})
        users[name] = {"Authorization": f"Bearer {res.json()['access_token']}"}
    return users


async def walk(r: Any, h: dict[str, str], query: str = "", limit: int = 7) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(200):
        res = await r.client.get(f"/api/persons/p-a/timeline?limit={limit}{query}" + (f"&before={cursor}" if cursor else ""), headers=h)
        assert res.status_code == 200, res.text
        body = res.json()
        assert len(body["items"]) <= limit and (body["items"] or body["next"] is None)
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items
    raise AssertionError("the pages never end")


def ident(i: dict[str, Any]) -> tuple[str, int]:
    return i["kind"], i["id"]


def assert_newest_first(items: list[dict[str, Any]]) -> None:
    ats = [datetime.fromisoformat(i["at"]) for i in items]
    assert ats == sorted(ats, reverse=True)
    assert len({ident(i) for i in items}) == len(items), "an item twice"


async def test_pages_merge_every_source_newest_first(make_config: Any, any_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as r:
        users = await arrange(r)
        one = await r.client.get("/api/persons/p-a/timeline?limit=200", headers=users["oa"])
        assert one.status_code == 200, one.text
        whole = one.json()
        assert whole["next"] is None and whole["fixes_read"] == 122 and not whole["fixes_capped"]
        everything = whole["items"]
        assert_newest_first(everything)
        kinds = [i["kind"] for i in everything]
        assert {k: kinds.count(k) for k in set(kinds)} == {"checkin": 24, "face": 24, "proceeding": 2, "evidence": 4, "alert": 2, "stay": 4, "trip": 3}
        # at the same instant: the check-in before the face seen (the kinds' order)
        same = [i["kind"] for i in everything if i["at"].startswith("2026-11-21T08:55")]
        assert same == ["checkin", "face"]
        # the positions as stays and trips: home, the walk, work; back home overnight (no fix on the way)
        segs = [(i["kind"], i["at"][:16], i["end"][:16], i["fixes"]) for i in everything if i["kind"] in ("stay", "trip")]
        assert segs == [
            ("stay", "2026-11-21T08:31", "2026-11-21T09:00", 30), ("trip", "2026-11-21T08:20", "2026-11-21T08:31", 10),
            ("stay", "2026-11-21T08:00", "2026-11-21T08:20", 21), ("trip", "2026-11-20T09:00", "2026-11-21T08:00", 0),
            ("stay", "2026-11-20T08:31", "2026-11-20T09:00", 30), ("trip", "2026-11-20T08:20", "2026-11-20T08:31", 10),
            ("stay", "2026-11-20T08:00", "2026-11-20T08:20", 21)]
        walk_trip = next(i for i in everything if i["kind"] == "trip" and i["fixes"] == 10)
        assert walk_trip["distance_m"] == pytest.approx(2100, rel=1e-3) and walk_trip["max_speed_mps"] == pytest.approx(200 / 60, abs=0.01)
        home = everything[-1]
        lat0, lon0 = offset(0, 0)
        assert home["kind"] == "stay" and home["lat"] == pytest.approx(lat0) and home["lon"] == pytest.approx(lon0) and home["radius_m"] == 0
        alert = next(i for i in everything if i["kind"] == "alert")["alert"]
        assert (alert["assignee"], alert["assessment"], alert["state"]) == ("oa", "went to work early", "acknowledged")
        assert [n["action"] for n in alert["notes"]] == ["assessed"]
        ev = [i for i in everything if i["kind"] == "evidence"]
        assert [i["at"][:16] for i in ev] == ["2026-11-21T08:41", "2026-11-21T08:40", "2026-11-20T08:41", "2026-11-20T08:40"]

        # page by page: the same items in the same order, whatever the page size
        for limit in (1, 7, 50):
            assert [ident(i) for i in await walk(r, users["oa"], limit=limit)] == [ident(i) for i in everything]
        # each page reading a few positions only: the same stays and trips (each fits in a page's fixes)
        monkeypatch.setattr(timeline_api, "MAX_FIXES", 40)
        capped = await walk(r, users["oa"], limit=5)
        assert_newest_first(capped)
        assert [ident(i) for i in capped] == [ident(i) for i in everything]
        assert [i for i in capped if i["kind"] == "trip"] == [i for i in everything if i["kind"] == "trip"]
        page = (await r.client.get("/api/persons/p-a/timeline?limit=5", headers=users["oa"])).json()
        assert page["fixes_read"] == 40 and page["fixes_capped"] and page["next"]
        # fewer positions per page than a stay has: the stay comes in parts, marked, and every fix is in one part
        monkeypatch.setattr(timeline_api, "MAX_FIXES", 8)
        parts = await walk(r, users["oa"], query="&kinds=stay,trip", limit=3)
        assert_newest_first(parts)
        assert any(i["partial"] for i in parts) and sum(i["fixes"] for i in parts) == 122


async def test_kinds_and_dates(make_config: Any, any_db_url: str) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as r:
        users = await arrange(r)
        oa, c = users["oa"], r.client
        stays = await walk(r, oa, "&kinds=stay,trip", limit=2)
        assert {i["kind"] for i in stays} == {"stay", "trip"} and len(stays) == 7
        checkins = await walk(r, oa, "&kinds=checkin")
        assert {i["kind"] for i in checkins} == {"checkin"} and len(checkins) == 24
        for bad in ("bogus", "checkin,bogus", ",", "stays"):
            res = await c.get(f"/api/persons/p-a/timeline?kinds={bad}", headers=oa)
            assert res.status_code == 422 and "kinds" in res.text, (bad, res.text)
        huge = base64.urlsafe_b64encode(json.dumps({"t": "2026-11-20T08:00:00+00:00", "k": "stay", "i": 2**70, "b": None}).encode()).decode()
        for cursor in ("not-a-cursor", huge, "e30"):  # e30: {}
            assert (await c.get(f"/api/persons/p-a/timeline?before={cursor}", headers=oa)).status_code == 422, cursor
        assert (await c.get("/api/persons/p-a/timeline?limit=201", headers=oa)).status_code == 422
        # a date is its midnight UTC; since and until are inclusive
        day2 = await walk(r, oa, "&since=2026-11-21")
        assert day2 and all(i["at"] >= "2026-11-21" for i in day2) and len(day2) == 24 + 1 + 2 + 1 + 3
        # the overnight trip began on day 1: left out; the stays and trip of day 2 are summarised from day 2's fixes only
        assert [i["kind"] for i in day2 if i["kind"] in ("stay", "trip")] == ["stay", "trip", "stay"]
        morning = await walk(r, oa, "&since=2026-11-20T08:00:00Z&until=2026-11-20T08:26:00Z&kinds=stay,trip,alert,checkin")
        assert [i["kind"] for i in morning if i["kind"] != "checkin"] == ["alert", "trip", "stay"]
        assert sum(1 for i in morning if i["kind"] == "checkin") == 6
        assert next(i for i in morning if i["kind"] == "trip")["fixes"] == 6  # the walk up to `until`
        # a monitor has no evidence.read: left out by default, refused when asked for
        assert "evidence" not in {i["kind"] for i in await walk(r, users["ma"], limit=50)}
        assert (await c.get("/api/persons/p-a/timeline?kinds=evidence", headers=users["ma"])).status_code == 403


async def test_only_within_the_persons_unit(make_config: Any, any_db_url: str) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as r:
        users = await arrange(r)
        assert (await r.client.get("/api/persons/p-a/timeline", headers=users["ob"])).status_code == 404
        assert (await r.client.get("/api/persons/p-b/timeline", headers=users["oa"])).status_code == 404
        assert (await r.client.get("/api/persons/nobody/timeline", headers=users["oa"])).status_code == 404
        theirs = (await r.client.get("/api/persons/p-b/timeline", headers=users["ob"])).json()
        assert [i["kind"] for i in theirs["items"]] == ["checkin"] and theirs["next"] is None  # one fix: no stay, no trip
