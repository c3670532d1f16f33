"""What the fuzzer found answered 500, each a clear 4xx now, on SQLite and PostgreSQL:
integers beyond 64 bits in paths and queries (the driver's OverflowError), null for a
required field on PATCH (NOT NULL), and a 405 that named only one of the path's methods."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import running

HUGE = str(2**64 + 7)


@pytest.mark.postgres
async def test_fuzzer_findings_are_clear_4xx(make_config: Any, any_db_url: str) -> None:
    cfg = make_config(storage={"database_url": any_db_url}, persons=[{"id": "p1", "name": "Zhang"}],
                      devices=[{"id": "t1", "kind": "tracker", "person_id": "p1"}])
    async with running(cfg) as r:
        h = await r.login()
        for method, path in (("GET", f"/api/alerts/{HUGE}"), ("POST", f"/api/alerts/{HUGE}/ack"), ("GET", f"/api/recordings/{HUGE}/file"),
                             ("POST", f"/api/evidence/{HUGE}/export"), ("DELETE", f"/api/persons/p1/photos/{HUGE}"),
                             ("GET", f"/api/audit?before_id={HUGE}"), ("PATCH", f"/api/users/{HUGE}")):
            res = await r.client.request(method, path, headers=h, json={} if method in ("POST", "PATCH") else None)
            assert res.status_code == 422, (method, path, res.status_code, res.text)
        for path, body in (("/api/persons/p1", {"name": None}), ("/api/persons/p1", {"active": None}), ("/api/devices/t1", {"enabled": None})):
            res = await r.client.patch(path, json=body, headers=h)
            assert res.status_code == 422, (path, body, res.status_code, res.text)
        assert (await r.client.get("/api/persons/p1", headers=h)).json()["name"] == "Zhang"
        res = await r.client.put("/api/persons", headers=h)
        assert res.status_code == 405 and res.headers["allow"] == "GET, POST"


@pytest.mark.postgres
async def test_times_without_an_offset_are_read_as_utc_on_every_route(make_config: Any, any_db_url: str) -> None:
    """`since`/`until` without an offset (`2026-01-01T00:00:00`, as a form or a hand-typed URL
    gives them) answered 500 on every route but two (the database takes aware times only);
    now each reads them as UTC, as evidence and recordings always did."""
    from datetime import UTC, datetime, timedelta

    cfg = make_config(storage={"database_url": any_db_url}, persons=[{"id": "p1", "name": "Zhang"}],
                      devices=[{"id": "t1", "kind": "tracker", "person_id": "p1"}])
    async with running(cfg) as r:
        h = await r.login()
        naive = "2026-01-01T00:00:00"
        for path in ("/api/alerts?since={t}", "/api/audit?since={t}", "/api/checkins?since={t}", "/api/evidence?since={t}&until={t}",
                     "/api/recordings?since={t}&until={t}", "/api/persons/p1/timeline?since={t}&until={t}",
                     "/api/persons/p1/track?since={t}&until={t}", "/api/devices/t1/positions?since={t}&until={t}"):
            res = await r.client.get(path.format(t=naive), headers=h)
            assert res.status_code == 200, (path, res.status_code, res.text)
        # read as UTC: the audit entries of this start lie after an hour ago and before an hour from now
        now = datetime.now(UTC).replace(tzinfo=None)
        earlier, later = (now - timedelta(hours=1)).isoformat(timespec="seconds"), (now + timedelta(hours=1)).isoformat(timespec="seconds")
        assert (await r.client.get(f"/api/audit?since={earlier}", headers=h)).json()
        assert (await r.client.get(f"/api/audit?since={later}", headers=h)).json() == []
