"""The rules around remote sessions, through the HTTP API: a call to a kiosk that is not there
fails at once and says why; a kiosk's call rings on the consoles (pushed) and ends unanswered
after `ring_s`; a session belongs to its unit; and a session left behind by a gateway that
died is sealed from its file when the gateway starts again."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import av
from sqlalchemy import select

from gateway.db.models import CallSession
from simulators.call_party import Party
from tests.conftest import running
from tests.faces.conftest import FACE_CONFIG, FACES, add_kiosk
from tests.kiosk.media import letterboxed
from tests.waiting import wait_for


async def test_a_call_to_an_offline_kiosk_fails_at_once(make_config: Any) -> None:
    async with running(make_config(FACE_CONFIG)) as r:
        officer = await r.login("officer-li", "officer")
        admin = await r.login()
        key = await add_kiosk(r, admin, "kiosk-1")
        t0 = time.monotonic()
        never = await r.client.post("/api/calls", headers=officer, json={"kind": "talk", "parties": [{"role": "kiosk", "device_id": "kiosk-1"}]})
        assert never.status_code == 409 and "offline" in never.json()["detail"] and "never" in never.json()["detail"], never.text
        assert time.monotonic() - t0 < 5  # no ringing into the void
        unknown = await r.client.post("/api/calls", headers=officer, json={"kind": "talk", "parties": [{"role": "kiosk", "device_id": "kiosk-9"}]})
        assert unknown.status_code == 404
        # heard from a moment ago: the call rings on the kiosk
        assert (await r.client.post("/api/kiosk/heartbeat", json={"state": "ok"}, headers={"X-Device-Key": key})).status_code == 200
        made = await r.client.post("/api/calls", headers=officer, json={"kind": "talk", "person_id": "p-obama",
                                                                        "parties": [{"role": "kiosk", "device_id": "kiosk-1"}]})
        assert made.status_code == 201, made.text
        ring = (await r.client.get("/api/kiosk/calls", headers={"X-Device-Key": key})).json()["call"]
        assert ring["session_id"] == made.json()["session"]["id"] and ring["caller"] == "officer-li"
        # the kiosk declines: it no longer rings there
        assert (await r.client.post(f"/api/kiosk/calls/{ring['session_id']}/leave", headers={"X-Device-Key": key})).status_code == 204
        assert (await r.client.get("/api/kiosk/calls", headers={"X-Device-Key": key})).json()["call"] is None
        # a monitor watches, but sets no session up
        monitor = await r.login("watcher", "monitor")
        assert (await r.client.post("/api/calls", headers=monitor, json={"kind": "talk", "parties": [{"role": "link", "label": "x"}]})).status_code == 403
        assert (await r.client.post(f"/api/calls/{ring['session_id']}/hangup", headers=officer)).status_code == 200


async def test_a_kiosk_calls_the_duty_officer_and_nobody_answers(make_config: Any) -> None:
    async with running(make_config(FACE_CONFIG, calls={"ring_s": 2})) as r:
        admin = await r.login()
        key = await add_kiosk(r, admin, "kiosk-1")
        heard: list[dict[str, Any]] = []
        r.services.bus.subscribe("test-calls", lambda e: heard.append(e.to_dict()) or None, topics=("call",), inline=True)
        made = await r.client.post("/api/kiosk/calls", json={"person_id": "p-obama"}, headers={"X-Device-Key": key})
        assert made.status_code == 201, made.text
        sid = made.json()["session_id"]
        listed = (await r.client.get("/api/calls?state=ringing", headers=admin)).json()
        assert [c["id"] for c in listed] == [sid] and listed[0]["parties"][0]["device_id"] == "kiosk-1"
        assert any(m["state"] == "ringing" and m["device_id"] == "kiosk-1" for m in heard)  # what rings on the consoles
        await wait_for(lambda: any(m["state"] == "ended" for m in heard), timeout=30, what="the unanswered call ended")
        ended = (await r.client.get(f"/api/calls/{sid}", headers=admin)).json()
        assert ended["state"] == "ended" and "not answered" in ended["end_reason"]
        assert (await r.client.get(f"/api/proceedings/{ended['proceeding_id']}", headers=admin)).json()["state"] == "sealed"


async def test_sessions_nobody_joins_end_and_an_officer_has_a_few_at_most(make_config: Any) -> None:
    async with running(make_config(FACE_CONFIG, calls={"idle_s": 1, "max_open_per_user": 2})) as r:
        officer = await r.login("officer-li", "officer")
        body = {"kind": "talk", "parties": [{"role": "link", "label": "x"}]}
        sids = [(await r.client.post("/api/calls", headers=officer, json=body)).json()["session"]["id"] for _ in range(2)]
        third = await r.client.post("/api/calls", headers=officer, json=body)
        assert third.status_code == 429 and "hang one up first" in third.json()["detail"]

        async def all_ended() -> bool:
            states = [(await r.client.get(f"/api/calls/{sid}", headers=officer)).json()["state"] for sid in sids]
            return states == ["ended", "ended"]

        await wait_for(all_ended, timeout=30, what="the idle sessions ended")
        row = (await r.client.get(f"/api/calls/{sids[0]}", headers=officer)).json()
        assert "nobody connected" in row["end_reason"]
        assert (await r.client.get(f"/api/proceedings/{row['proceeding_id']}", headers=officer)).json()["state"] == "sealed"
        assert (await r.client.post("/api/calls", headers=officer, json=body)).status_code == 201  # room for a new one


async def test_sessions_belong_to_their_unit(make_config: Any) -> None:
    async with running(make_config(FACE_CONFIG)) as r:
        root = await r.login()
        for uid in ("office-a", "office-b"):
            assert (await r.client.post("/api/units", headers=root, json={"id": uid, "name": uid, "parent_id": "root"})).status_code == 201
        for name, unit in (("oa", "office-a"), ("ob", "office-b")):
            assert (await r.client.post("/api/users", headers=root, json={"username": name, "password": "correct-horse-1", "role": "officer",
                                                                          "unit_id": unit})).status_code == 201
        assert (await r.client.patch("/api/persons/p-obama", headers=root, json={"unit_id": "office-a"})).status_code == 200
        oa, ob = await r.login("oa", "officer"), await r.login("ob", "officer")
        assert (await r.client.post("/api/calls", headers=ob, json={"kind": "talk", "person_id": "p-obama",
                                                                    "parties": [{"role": "link", "label": "x"}]})).status_code == 404
        made = await r.client.post("/api/calls", headers=oa, json={"kind": "talk", "person_id": "p-obama", "parties": [{"role": "link", "label": "x"}]})
        sid = made.json()["session"]["id"]
        for method, path in (("GET", f"/api/calls/{sid}"), ("POST", f"/api/calls/{sid}/join"), ("POST", f"/api/calls/{sid}/hangup")):
            assert (await r.client.request(method, path, headers=ob, json={"sdp": "v=0 not an offer"})).status_code == 404
        assert [c["id"] for c in (await r.client.get("/api/calls", headers=ob)).json()] == []
        assert [c["id"] for c in (await r.client.get("/api/calls", headers=oa)).json()] == [sid]
        assert (await r.client.post(f"/api/calls/{sid}/hangup", headers=oa)).status_code == 200


async def test_a_session_left_by_a_dead_gateway_is_sealed_from_its_file(make_config: Any, tmp_path: Path) -> None:
    config = make_config(FACE_CONFIG)
    async with running(config) as r:
        officer = await r.login("officer-li", "officer")
        made = await r.client.post("/api/calls", headers=officer, json={"kind": "talk", "parties": [{"role": "link", "label": "x"}]})
        sid = made.json()["session"]["id"]
        party = Party(letterboxed(FACES / "obama.jpg"))
        try:
            assert (await party.join(r.client, f"/api/calls/{sid}/join", officer)).status_code == 200
            live = r.areas.calls.live[sid]
            await wait_for(lambda: live.room.video_index > 40, timeout=60, what="four seconds recorded")
            # the file as it is mid-session (fragmented MP4) already plays: a crash now loses at most the last fragment
            copy = tmp_path / "mid.mp4"
            shutil.copy(r.services.media_dir / live.path, copy)
            with av.open(str(copy)) as c:
                assert sum(1 for _ in c.decode(video=0)) >= 10
            # the process dies: nothing is sealed, nothing is closed in order
            r.areas.calls.live.pop(sid)
            orphan, live.room.recorder = live.room.recorder, None
            await live.room.stop()
            for pc in list(live.pcs.values()):
                await pc.close()
        finally:
            await party.close()
        async with r.services.db.session() as s:
            assert (await s.get(CallSession, sid)).state == "active"
    async with running(config) as r2:
        admin = await r2.login()
        row = (await r2.client.get(f"/api/calls/{sid}", headers=admin)).json()
        assert row["state"] == "ended" and "gateway stopped" in row["end_reason"]
        proc = (await r2.client.get(f"/api/proceedings/{row['proceeding_id']}", headers=admin)).json()
        [seg] = proc["manifest"]["segments"]
        assert proc["state"] == "sealed" and seg["size"] > 0
        verified = (await r2.client.post(f"/api/proceedings/{row['proceeding_id']}/verify", headers=admin)).json()
        assert verified["ok"] is True
        async with r2.services.db.session() as s:
            assert (await s.scalars(select(CallSession).where(CallSession.state != "ended"))).all() == []
    assert orphan is not None
    orphan.close()  # the dead process's encoder thread, still blocked in this test's process
