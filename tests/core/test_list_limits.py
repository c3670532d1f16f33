"""Every list route answers at most `limit` rows (issue 19, Measure: no list returns unbounded
rows): the ones that got a `limit` with the console bench (persons, devices, units, users,
proceedings, a person's photos, the latest positions, the uploads in flight) honour it, keep
their order, give everything by default and refuse a limit outside their range; and the
menu badge's count of open alerts agrees with the list, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from gateway.auth.passwords import hash_password
from gateway.db.models import (
    Alert,
    Device,
    FaceEncoding,
    Person,
    PositionRow,
    Proceeding,
    Unit,
    UploadRow,
    User,
)
from tests.conftest import running

pytestmark = pytest.mark.postgres
N = 5

# path -> (its maximum, how many rows the arrangement gives it)
BOUNDED = {
    "/api/persons": (10_000, N),
    "/api/devices": (20_000, N),
    "/api/units": (10_000, N + 1),  # and root
    "/api/users": (10_000, N + 1),  # and the admin
    "/api/proceedings": (2000, N),
    "/api/persons/p0/photos": (1000, N),
    "/api/positions/latest": (20_000, N),
    "/api/uploads/": (1000, N),
}


def rows(body: Any) -> list[Any]:
    return body["features"] if isinstance(body, dict) else body  # type: ignore[no-any-return]


async def arrange(gw: Any) -> None:
    now = datetime.now(UTC)
    async with gw.services.db.session() as s:
        await s.execute(insert(Unit), [{"id": f"u{i}", "name": f"Unit {i}", "parent_id": "root", "path": f"/root/u{i}/"} for i in range(N)])
        await s.execute(insert(User), [{"username": f"user{i}", "password_hash": "x", "role": "officer"} for i in range(N)])
        await s.execute(insert(Person), [{"id": f"p{i}", "name": f"Person {i}"} for i in range(N)])
        await s.execute(insert(Device), [{"id": f"trk-{i}", "kind": "tracker", "person_id": f"p{i}", "settings": {}} for i in range(N)])
        await s.execute(insert(PositionRow), [{"device_id": f"trk-{i}", "person_id": f"p{i}", "fix_time": now - timedelta(minutes=k),
                                              "lat": 31.2, "lon": 121.4} for i in range(N) for k in range(3)])
        await s.execute(insert(Proceeding), [{"kind": "talk", "person_id": "p0", "camera_ids": [], "state": "sealed", "started_by": "admin"} for _ in range(N)])
        await s.execute(insert(FaceEncoding), [{"person_id": "p0", "photo_path": f"faces/{i}.jpg", "encoding": b"\0" * 1024} for i in range(N)])
        await s.execute(insert(UploadRow), [{"id": f"up{i}", "device_id": f"trk-{i}", "actor": "test", "length": 10,
                                             "created_at": now + timedelta(seconds=i), "expires_at": now + timedelta(hours=1)} for i in range(N)])
        await s.execute(insert(Alert), [{"kind": "tamper", "level": level, "original_level": level, "state": state, "dedup_key": f"k{i}", "details": {}}
                                        for i, (level, state) in enumerate([("red", "open"), ("orange", "open"), ("orange", "open"),
                                                                            ("blue", "acknowledged"), ("red", "resolved")])])
        s.add(User(username="admin", password_hash=hash_password("correct-horse-1"), role="admin"))
        await s.commit()


async def test_list_routes_honour_their_limit(any_db_url: str, make_config: Any) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        await arrange(gw)
        headers = await gw.login()
        c = gw.client
        for path, (maximum, total) in BOUNDED.items():
            everything = await c.get(path, headers=headers)
            assert everything.status_code == 200, f"{path}: {everything.text[:200]}"
            assert len(rows(everything.json())) == total, path
            two = await c.get(path, params={"limit": 2}, headers=headers)
            assert two.status_code == 200, f"{path}?limit=2: {two.text[:200]}"
            assert rows(two.json()) == rows(everything.json())[:2], f"{path}?limit=2 is not the first two of the list"
            for bad in (0, maximum + 1):
                r = await c.get(path, params={"limit": bad}, headers=headers)
                assert r.status_code == 422, f"{path}?limit={bad} answered {r.status_code}"

        # the menu badge: open alerts by level, as the list has them
        counts = (await c.get("/api/alerts/counts", params={"state": "open"}, headers=headers)).json()
        assert counts == {"total": 3, "by_level": {"red": 1, "orange": 2, "yellow": 0, "blue": 0}}
        listed = (await c.get("/api/alerts", params={"state": "open"}, headers=headers)).json()
        assert len(listed) == counts["total"]
        assert (await c.get("/api/alerts/counts", headers=headers)).json()["total"] == 5
        assert (await c.get("/api/alerts/counts", params={"state": "ongoing", "level": "blue"}, headers=headers)).json()["total"] == 1
