"""`gateway-sim kiosk` against a live gateway: heartbeats, an offline period with
replay (events applied once), a live check-in, a spoof, and a check-in that asks for a
liveness challenge and answers it with frames made from obama.jpg."""

from __future__ import annotations

import asyncio

import httpx

from simulators.kiosk import run_kiosk
from tests.faces.conftest import FACE_CONFIG, FACES, small_jpeg


def test_simulated_kiosk_end_to_end(make_config, start_live_gateway, shared_data, tmp_path) -> None:
    # Bursts of still photos are not answers to challenges: passive liveness for those two.
    live = start_live_gateway(make_config(FACE_CONFIG, thresholds={"faces": {"active_liveness": {"required": False}}}))
    live.add_user("admin", "admin")
    h = {"Authorization": f"Bearer {live.token('admin')}"}
    r = httpx.post(f"{live.url}/api/devices", json={"id": "kiosk-1", "kind": "kiosk"}, headers=h)
    key = r.json()["key"]
    photos = {}
    for n in ("obama", "obama2", "obama3"):
        photos[n] = tmp_path / f"{n}.jpg"
        photos[n].write_bytes(small_jpeg(FACES / f"{n}.jpg", 900 if n == "obama3" else 720))
    r = httpx.post(f"{live.url}/api/persons/p-obama/photos", files={"file": ("a.jpg", photos["obama"].read_bytes(), "image/jpeg")}, headers=h, timeout=60)
    assert r.status_code == 201, r.text
    params = {
        "duration_s": 40, "heartbeat_interval_s": 10, "event_interval_s": 4, "offline": [[10, 22]],
        "checkins": [{"at_s": 2, "person_id": "p-obama", "frames": [str(photos["obama2"]), str(photos["obama3"]), str(photos["obama"])]},
                     {"at_s": 4, "person_id": "p-obama", "spoof": str(photos["obama2"]), "n": 3},
                     {"at_s": 6, "person_id": "p-obama", "challenge": str(photos["obama"])}],
    }
    report = asyncio.run(run_kiosk(live.url, key, params, speed=20))
    results = [(c["spec"]["spoof"], c["result"]) for c in report["checkins"]]
    assert results == [(False, "accepted"), (True, "rejected"), (False, "accepted")], report["checkins"]
    assert report["checkins"][2]["liveness"]["challenge"]["passed"] is True
    assert all(s == 200 for s in report["heartbeats"])
    applied = [e for b in report["events"] for e in b["applied"]]
    duplicates = [e for b in report["events"] for e in b["duplicates"]]
    assert duplicates, "the replay after the outage re-sent known events"
    assert len(applied) == len(set(applied)) == 10
    stored = httpx.get(f"{live.url}/api/checkins", headers=h).json()
    assert [c["result"] for c in stored] == ["accepted", "rejected", "accepted"]
