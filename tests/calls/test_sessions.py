"""Remote video sessions through the HTTP API of a running gateway, with the parties as
aiortc peers sending real photos (../shared/data/faces, the face_recognition project's
public samples) as their cameras: one file holds every party, identity checks see the
enrolled person and then an impostor, a dropped party comes back with its gap noted, and the
proceeding is sealed into the evidence chain."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import av
import face_recognition
import numpy as np

from gateway.evidence import verify_all
from simulators.call_party import Party
from tests.conftest import running
from tests.faces.conftest import FACE_CONFIG, FACES, enroll
from tests.kiosk.media import letterboxed
from tests.waiting import wait_for

# checks every second or two, so the test sees the start check and the random ones quickly
CALLS = {"check_min_s": 1, "check_max_s": 2, "impostor_after": 2, "absent_after": 2, "connect_s": 60}


async def parties_of(r: Any, admin: dict[str, str], sid: str) -> dict[str, dict[str, Any]]:
    body = (await r.client.get(f"/api/calls/{sid}", headers=admin)).json()
    return {p["label"]: p for p in body["parties"]}


async def test_three_parties_recorded_as_one_proceeding_with_identity_checks(make_config: Any, faces: dict[str, bytes], tmp_path: Path) -> None:
    async with running(make_config(FACE_CONFIG, calls=CALLS)) as r:
        admin = await r.login("officer-li", "officer")
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        assert (await enroll(r, admin, "p-biden", faces["biden"])).status_code == 201
        made = await r.client.post("/api/calls", headers=admin, json={
            "kind": "education", "person_id": "p-obama",
            "parties": [{"role": "link", "label": "obama", "person_id": "p-obama"}, {"role": "link", "label": "mediator"}]})
        assert made.status_code == 201, made.text
        sid = made.json()["session"]["id"]
        links = {link["label"]: link["url"] for link in made.json()["links"]}
        assert made.json()["session"]["checks"] is True  # education: random checks by default
        assert all("#" in u and "token" not in u.split("#")[0] for u in links.values())
        token = {label: url.split("#", 1)[1] for label, url in links.items()}

        info = await r.client.get("/api/call-link", headers={"X-Call-Token": token["obama"]})
        assert info.status_code == 200 and info.json()["label"] == "obama" and info.json()["officer"] == "officer-li"
        assert (await r.client.get("/api/call-link", headers={"X-Call-Token": "not-a-real-token"})).status_code == 404

        officer = Party(np.full((480, 640, 3), (40, 90, 200), np.uint8), hz=300)
        person = Party(letterboxed(FACES / "obama.jpg"), hz=500)
        mediator = Party(letterboxed(FACES / "obama_partial_face.jpg"), hz=700)
        try:
            assert (await officer.join(r.client, f"/api/calls/{sid}/join", admin)).status_code == 200
            assert (await person.join(r.client, "/api/call-link/join", {"X-Call-Token": token["obama"]})).status_code == 200
            assert (await mediator.join(r.client, "/api/call-link/join", {"X-Call-Token": token["mediator"]})).status_code == 200

            async def all_connected() -> bool:
                return all(p["state"] == "connected" for p in (await parties_of(r, admin, sid)).values())

            await wait_for(all_connected, timeout=60, what="all three parties connected")
            # every party receives the composite and the others' voices
            await wait_for(lambda: all(p.composites > 5 and p.audio_frames > 20 for p in (officer, person, mediator)), timeout=60,
                           what="composites and audio at every party")

            async def check_of(label: str) -> dict[str, Any] | None:
                return (await parties_of(r, admin, sid))[label].get("last_check")

            await wait_for(lambda: _is(check_of("obama"), "present"), timeout=90, what="the enrolled person verified")
            # "start verification" from the console: checks now
            now = await r.client.post(f"/api/calls/{sid}/verify", headers=admin)
            assert now.status_code == 200 and [c["outcome"] for c in now.json()] == ["present"], now.text

            # someone else sits down in front of the person's camera
            person.picture.rgb = letterboxed(FACES / "biden.jpg")

            async def impostor_alert() -> list[dict[str, Any]]:
                alerts = (await r.client.get("/api/alerts", headers=admin)).json()
                return [a for a in alerts if a["kind"] == "call_impostor" and a["person_id"] == "p-obama"]

            await wait_for(impostor_alert, timeout=90, what="an impostor alert")
            [alert] = await impostor_alert()
            assert alert["level"] == "red" and alert["details"]["session_id"] == sid
            person.picture.rgb = letterboxed(FACES / "obama.jpg")
            await wait_for(lambda: _is(check_of("obama"), "present"), timeout=90, what="the enrolled person back")
            alerts = (await r.client.get("/api/alerts", params={"kind": "call_impostor", "state": "resolved"}, headers=admin)).json()
            assert [a["id"] for a in alerts] == [alert["id"]]  # seen again: resolved

            # the seat is empty (the camera shows the room)
            person.picture.rgb = np.full((480, 640, 3), 128, np.uint8)

            async def empty_seat_alert() -> list[dict[str, Any]]:
                alerts = (await r.client.get("/api/alerts", params={"kind": "call_absent"}, headers=admin)).json()
                return [a for a in alerts if a["person_id"] == "p-obama"]

            await wait_for(empty_seat_alert, timeout=90, what="an empty-seat alert")
            assert (await empty_seat_alert())[0]["level"] == "orange"
            person.picture.rgb = letterboxed(FACES / "obama.jpg")
            await wait_for(lambda: _is(check_of("obama"), "present"), timeout=90, what="the enrolled person back again")

            # the mediator's connection dies; the others go on; the link joins again
            await mediator.close()
            await wait_for(lambda: _state(parties_of(r, admin, sid), "mediator", "dropped"), timeout=90, what="mediator dropped")
            mediator = Party(letterboxed(FACES / "obama_partial_face.jpg"), hz=700)
            assert (await mediator.join(r.client, "/api/call-link/join", {"X-Call-Token": token["mediator"]})).status_code == 200
            await wait_for(lambda: _state(parties_of(r, admin, sid), "mediator", "connected"), timeout=60, what="mediator back")
            # the recording goes on: a frame with everyone in it again
            frames_before = person.composites
            await wait_for(lambda: person.composites > frames_before + 10, timeout=30, what="more composites")

            ended = await r.client.post(f"/api/calls/{sid}/hangup", headers=admin)
            assert ended.status_code == 200, ended.text
            pid = ended.json()["proceeding_id"]
        finally:
            for p in (officer, person, mediator):
                await p.close()

        proc = (await r.client.get(f"/api/proceedings/{pid}", headers=admin)).json()
        assert proc["state"] == "sealed" and proc["kind"] == "education" and proc["person_id"] == "p-obama"
        m = proc["manifest"]
        [seg] = m["segments"]
        assert seg["camera_id"] == f"call-{sid}" and len(seg["sha256"]) == 64
        [gap] = m["gaps"]
        assert gap["label"] == "mediator" and gap["ended_at"] is not None and gap["duration_s"] > 0
        outcomes = [c["outcome"] for c in m["session"]["checks"]]
        assert outcomes.count("impostor") >= 2 and outcomes.count("absent") >= 2 and "present" in outcomes
        [att] = proc["attendance"]
        assert att["person_id"] == "p-obama" and att["verified_minutes"] > 0
        checked, problems = await verify_all(r.services.db, r.services.media_dir)
        assert problems == [] and checked >= 1

        # the file plays, with every party in its tile: the enrolled person's face is found in
        # the person's tile of a late frame, the officer's blue in theirs
        path = r.services.media_dir / seg["path"]
        with av.open(str(path)) as c:
            assert {s.type for s in c.streams} == {"video", "audio"}
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(frames) > 50
        last = frames[-5]
        tiles = tile_images(last, 2, 2)
        officer_tile, person_tile, mediator_tile = tiles[0], tiles[1], tiles[2]
        assert officer_tile[40:200, 40:280].mean(axis=(0, 1))[2] > 150  # the officer's blue picture
        enc = face_recognition.face_encodings(person_tile)
        known = face_recognition.face_encodings(face_recognition.load_image_file(str(FACES / "obama.jpg")))[0]
        assert enc and min(np.linalg.norm(e - known) for e in enc) < 0.6
        assert face_recognition.face_locations(mediator_tile)  # the mediator's face is there too

        played = await r.client.get(f"/api/calls/{sid}/recording", headers=admin)
        assert played.status_code == 200 and played.headers["content-type"] == "video/mp4" and len(played.content) == seg["size"]

        export = await r.client.get(f"/api/proceedings/{pid}/export", headers=admin)
        assert export.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
        assert f"proceeding-{pid}-call-{sid}.mp4" in names

        # the session is over: its links answer 410
        assert (await r.client.get("/api/call-link", headers={"X-Call-Token": token["obama"]})).status_code == 410


def tile_images(frame: np.ndarray, cols: int, rows: int) -> list[np.ndarray]:
    h, w = frame.shape[0] // rows, frame.shape[1] // cols
    return [np.ascontiguousarray(frame[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w]) for i in range(cols * rows)]


async def _is(check: Any, outcome: str) -> bool:
    c = await check
    return c is not None and c["outcome"] == outcome


async def _state(parties: Any, label: str, state: str) -> bool:
    return (await parties)[label]["state"] == state
