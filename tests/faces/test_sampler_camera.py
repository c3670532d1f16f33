"""1:N on a camera: the real photos turned into a moving H.264 clip (PyAV,
libx264), served as an RTSP camera by the camera simulator; the enrolled person
walking through the room is reported as face.seen and lands in the
proceeding's attendance, the stranger stays unknown."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from gateway.db.models import FaceMatch, Proceeding
from streams.sampler import Voter
from tests.conftest import free_port, running
from tests.faces.conftest import FACES, enroll, walking_clip
from tests.waiting import wait_for


def test_voting_needs_agreement_and_keeps_unknown_unknown() -> None:
    v = Voter(window_s=4, min_votes=2, cooldown_s=30)
    assert v.add("c", 0.0, "p1", 0.4) is None
    assert v.add("c", 1.0, None, None) is None
    s = v.add("c", 1.5, "p1", 0.35)
    assert s is not None and s.person_id == "p1" and s.distance == 0.35
    assert v.add("c", 2.0, "p1", 0.3) is None  # cooldown
    assert v.add("c", 10.0, "p2", 0.3) is None  # the p1 votes fell out of the window
    assert v.add("c", 10.5, None, None) is None
    u = v.add("c", 11.0, None, None)
    assert u is not None and u.person_id is None and u.distance is None


async def test_enrolled_person_walking_through_room_is_seen_and_attends(make_config, shared_data, tmp_path) -> None:
    from simulators.camera import serve_cameras

    clip = await asyncio.to_thread(walking_clip, tmp_path / "room.mp4", [["obama.jpg", "obama2.jpg"], ["biden.jpg"]])
    port = free_port()
    server = await serve_cameras({"room1": str(clip)}, port)
    try:
        cfg = make_config(f"""
persons: [{{id: p-obama, name: Obama}}, {{id: p-biden, name: Biden}}]
devices:
  - {{id: room1, kind: camera, url: "rtsp://127.0.0.1:{port}/room1", recognition: true, room_kind: education}}
""", thresholds={"faces": {"sample_fps": 3, "sample_max_side": 640, "vote_window_s": 5, "min_votes": 2}})
        async with running(cfg) as r:
            admin = await r.login()
            photo = (FACES / "obama3.jpg").read_bytes()
            assert (await enroll(r, admin, "p-obama", photo)).status_code == 201
            seen: list = []

            async def on_seen(ev) -> None:  # type: ignore[no-untyped-def]
                seen.append(ev)

            r.services.bus.subscribe("test-seen", on_seen, topics=("face.seen",), maxsize=100)
            p = await r.client.post("/api/proceedings", json={"camera_ids": ["room1"], "person_id": "p-obama", "kind": "education", "case_ref": "E-1"}, headers=admin)
            assert p.status_code in (200, 201), p.text
            pid = p.json()["id"]
            await wait_for(lambda: {"p-obama", None} <= {e.person_id for e in seen}, 90, interval=0.2,
                           what=lambda: f"p-obama and a stranger seen; seen so far: {[(e.person_id, e.distance) for e in seen]}")
            known = next(e for e in seen if e.person_id == "p-obama")
            assert known.camera_id == "room1" and known.distance < 0.55 and known.snapshot
            # Biden is not enrolled: unknown, never the nearest enrolled person.
            assert all(e.person_id in ("p-obama", None) for e in seen)
            async with r.services.db.session() as s:
                row = await s.get(Proceeding, pid)
                rows = (await s.scalars(select(FaceMatch).where(FaceMatch.camera_id == "room1"))).all()
            assert row is not None and [a["person_id"] for a in row.attendance] == ["p-obama"]
            assert {m.person_id for m in rows} >= {"p-obama", None}
            snap = await r.client.get(known.snapshot, headers=admin)
            assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
            room = (await r.client.get("/api/faces/seen?camera_id=room1", headers=admin)).json()
            assert "p-obama" in {x["person_id"] for x in room["cameras"]["room1"]}
            tl = (await r.client.get("/api/persons/p-obama/timeline", headers=admin)).json()
            assert any(i["kind"] == "face" and i["camera_id"] == "room1" for i in tl["items"])
            # Sealing recomputes attendance from every sighting during the proceeding.
            stop = await r.client.post(f"/api/proceedings/{pid}/stop", headers=admin)
            assert stop.status_code == 200, stop.text
            async with r.services.db.session() as s:
                sealed = await s.get(Proceeding, pid)
            assert sealed is not None and sealed.state == "sealed"
            assert [a["person_id"] for a in sealed.attendance] == ["p-obama"] and sealed.attendance[0]["best_distance"] < 0.55
            # ... and the API (the console's proceeding view) lists it
            api = stop.json()
            assert [a["person_id"] for a in api["attendance"]] == ["p-obama"] and api["attendance"][0]["camera_ids"] == ["room1"]
    finally:
        await server.close()
