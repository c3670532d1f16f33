"""A check-in queued at a terminal while the gateway was out of reach counts at the time it was
made (`made_at`), not when it arrived: the day's figures and the check-in windows see it where
the person stood at the terminal, and a window already judged missed has its alert resolved
when the late check-in arrives. A terminal clock running ahead is not believed. Real photos
(../shared/data/faces, the face_recognition project's public samples)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import running
from tests.faces.conftest import FACE_CONFIG, add_kiosk, burst, enroll
from tests.waiting import wait_for

PASSIVE = {"faces": {"active_liveness": {"required": False}}}


async def checkin(r: Any, key: str, made_at: datetime | None, faces: dict[str, bytes]) -> dict[str, Any]:
    data = {"person_id": "p-obama", **({"made_at": made_at.isoformat()} if made_at else {})}
    resp = await r.client.post("/api/kiosk/checkins", data=data, files=burst(faces["obama2"], faces["obama3"], faces["obama-480p"]), headers={"X-Device-Key": key})
    assert resp.status_code == 200 and resp.json()["result"] == "accepted", resp.text
    return dict(resp.json())


async def test_a_check_in_made_offline_counts_when_it_was_made(make_config: Any, faces: dict[str, bytes]) -> None:
    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        now = datetime.now(UTC)
        local = now.astimezone(ZoneInfo("Asia/Shanghai"))
        # a window that closed an hour ago, and the check-in made in it while the terminal was offline
        start, end = local - timedelta(hours=2), local - timedelta(hours=1)
        key = await add_kiosk(r, admin, "kiosk-1", checkins=[{"person_id": "p-obama", "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}])
        await r.areas.kiosks.check_schedules()

        async def missed() -> list[dict[str, Any]]:
            return list((await r.client.get("/api/alerts", params={"kind": "checkin_missed"}, headers=admin)).json())

        [alert] = await wait_for(missed, 10, "the window judged missed")
        made = now - timedelta(minutes=90)
        d = await checkin(r, key, made, faces)
        [row] = [c for c in (await r.client.get("/api/checkins", headers=admin)).json() if c["id"] == d["checkin_id"]]
        assert datetime.fromisoformat(row["at"]) == made
        assert datetime.fromisoformat(row["received_at"]) >= now
        resolved = await wait_for(lambda: _state(r, admin, alert["id"], "resolved"), 10, "the missed alert resolved by the late check-in")
        assert "reached the gateway late" in str(resolved)

        # a terminal whose clock runs ahead: the check-in counts when it arrived
        ahead = await checkin(r, key, datetime.now(UTC) + timedelta(hours=3), faces)
        [row] = [c for c in (await r.client.get("/api/checkins", headers=admin)).json() if c["id"] == ahead["checkin_id"]]
        assert datetime.fromisoformat(row["at"]) <= datetime.now(UTC) and row["received_at"] is None
        # and without made_at (an online check-in, an older terminal): when it arrived
        plain = await checkin(r, key, None, faces)
        [row] = [c for c in (await r.client.get("/api/checkins", headers=admin)).json() if c["id"] == plain["checkin_id"]]
        assert row["received_at"] is None


async def _state(r: Any, admin: dict[str, str], alert_id: int, state: str) -> dict[str, Any] | None:
    a = (await r.client.get(f"/api/alerts/{alert_id}", headers=admin)).json()
    return a if a["state"] == state else None
