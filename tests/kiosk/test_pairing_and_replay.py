"""Kiosk terminals through the HTTP API of a running gateway: pairing with a one-time code
(the key it gives works and replaces the old one; a code used twice, expired, unknown or
malformed is refused, each refusal audited; guessing is rate-limited), check-ins sent again
with the same client_ref answered with the first decision and never made twice (the real
photos of ../shared/data/faces), and SOS / call-the-officer events raising their alert once
even when the batch is replayed, and on the person's timeline once."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.db.models import Alert, CheckInRow
from tests.conftest import running
from tests.faces.conftest import FACE_CONFIG, add_kiosk, burst, enroll, faces  # noqa: F401


async def test_pairing_codes(make_config) -> None:
    clock = FakeClock()
    async with running(make_config(FACE_CONFIG, auth={"pairing_code_ttl_s": 60, "login_attempts_per_minute": 8}), clock=clock) as r:
        admin = await r.login()
        old_key = await add_kiosk(r, admin, "kiosk-1", location="一楼大厅")
        code = await r.client.post("/api/devices/kiosk-1/pairing", headers=admin)
        assert code.status_code == 201, code.text
        digits = code.json()["code"]
        assert len(digits) == 8 and digits.isdigit()
        assert digits not in (await r.client.get("/api/audit", headers=admin)).text  # never logged

        paired = await r.client.post("/api/kiosk/pair", json={"code": f"{digits[:4]}-{digits[4:]}"})
        assert paired.status_code == 200, paired.text
        body = paired.json()
        assert (body["device_id"], body["location"]) == ("kiosk-1", "一楼大厅") and body["key"].startswith("dk_")
        beat = {"state": "ok"}
        assert (await r.client.post("/api/kiosk/heartbeat", json=beat, headers={"X-Device-Key": body["key"]})).status_code == 200
        assert (await r.client.post("/api/kiosk/heartbeat", json=beat, headers={"X-Device-Key": old_key})).status_code == 401

        again = await r.client.post("/api/kiosk/pair", json={"code": digits})
        assert again.status_code == 409 and "used already" in again.text
        late = (await r.client.post("/api/devices/kiosk-1/pairing", headers=admin)).json()["code"]
        clock.advance(61)
        expired = await r.client.post("/api/kiosk/pair", json={"code": late})
        assert expired.status_code == 410 and "expired" in expired.text
        assert (await r.client.post("/api/kiosk/pair", json={"code": "12345678" if late != "12345678" else "87654321"})).status_code == 404
        assert (await r.client.post("/api/kiosk/pair", json={"code": "1234abcd"})).status_code == 422
        # a new code replaces the kiosk's earlier unused one
        first = (await r.client.post("/api/devices/kiosk-1/pairing", headers=admin)).json()["code"]
        second = (await r.client.post("/api/devices/kiosk-1/pairing", headers=admin)).json()["code"]
        if first != second:
            assert (await r.client.post("/api/kiosk/pair", json={"code": first})).status_code == 404
        reasons = [e["details"]["reason"] for e in (await r.client.get("/api/audit", params={"action": "kiosk.pairing"}, headers=admin)).json()]
        assert {"used", "expired", "unknown code"} <= set(reasons)

        # only an admin, only for a kiosk
        assert (await r.client.post("/api/devices/kiosk-1/pairing", headers=await r.login("watch", "monitor"))).status_code == 403
        assert (await r.client.post("/api/devices", json={"id": "trk-1", "kind": "tracker"}, headers=admin)).status_code == 201
        assert (await r.client.post("/api/devices/trk-1/pairing", headers=admin)).status_code == 422
        # guessing: the address's budget (shared with logins) runs out
        statuses = [(await r.client.post("/api/kiosk/pair", json={"code": f"{n:08d}"})).status_code for n in range(10)]
        assert statuses[-1] == 429


async def test_a_check_in_sent_again_is_made_once(make_config, faces) -> None:  # noqa: F811
    # passive liveness only (tests/faces/test_kiosk_challenges.py has the challenges)
    async with running(make_config(FACE_CONFIG, thresholds={"faces": {"active_liveness": {"required": False}}})) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        kh = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-1")}
        form = {"person_id": "p-obama", "client_ref": "ci-7c1f2a9e-0001"}
        first = await r.client.post("/api/kiosk/checkins", data=form, files=burst(faces["obama2"], faces["obama3"], faces["obama-480p"]), headers=kh)
        assert first.status_code == 200 and first.json()["result"] == "accepted", first.text
        # the answer was lost: the terminal sends it again (even with other frames)
        replay = await r.client.post("/api/kiosk/checkins", data=form, files=burst(faces["obama2"], faces["obama2"], faces["obama2"]), headers=kh)
        assert replay.status_code == 200 and replay.json() == first.json()
        async with r.services.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(CheckInRow).where(CheckInRow.person_id == "p-obama")) == 1
        # a reference refused for bad input may be sent again, and is then made
        bad = await r.client.post("/api/kiosk/checkins", data={**form, "client_ref": "ci-7c1f2a9e-0002"}, files=burst(b"not a jpeg", b"x", b"y"), headers=kh)
        assert bad.status_code == 422
        ok = await r.client.post("/api/kiosk/checkins", data={**form, "client_ref": "ci-7c1f2a9e-0002"},
                                 files=burst(faces["obama2"], faces["obama3"], faces["obama-480p"]), headers=kh)
        assert ok.status_code == 200 and ok.json()["checkin_id"] != first.json()["checkin_id"]
        # another kiosk's reference space is its own
        other = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-2")}
        theirs = await r.client.post("/api/kiosk/checkins", data=form, files=burst(faces["obama2"], faces["obama3"], faces["obama-480p"]), headers=other)
        assert theirs.status_code == 200 and theirs.json()["kiosk_id"] == "kiosk-2"


async def test_sos_and_call_for_the_officer_raise_their_alert_once(make_config) -> None:
    async with running(make_config(FACE_CONFIG)) as r:
        admin = await r.login()
        kh = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-1", location="一楼大厅")}
        batch = {"events": [{"event_id": "e-sos-1", "kind": "sos", "payload": {"person_id": "p-obama"}},
                            {"event_id": "e-call-1", "kind": "call_officer", "payload": {}},
                            {"event_id": "e-rep-1", "kind": "report", "payload": {"person_id": "p-obama", "text": "本周思想汇报"}}]}
        for _ in range(2):  # the second time is a replay
            assert (await r.client.post("/api/kiosk/events", json=batch, headers=kh)).status_code == 200
        async with r.services.db.session() as s:
            rows = (await s.scalars(select(Alert).order_by(Alert.id))).all()
        assert [(a.kind, a.level, a.person_id, a.device_id) for a in rows] == [
            ("sos", "red", "p-obama", "kiosk-1"), ("assistance_requested", "yellow", None, "kiosk-1")]
        assert "一楼大厅" in (rows[0].message or "")
        # and what the person did at the terminal is on their timeline, once
        tl = (await r.client.get("/api/persons/p-obama/timeline", params={"kinds": "kiosk"}, headers=admin)).json()
        assert [(i["event"], i["kiosk_id"], i["payload"].get("text")) for i in tl["items"]] == [
            ("report", "kiosk-1", "本周思想汇报"), ("sos", "kiosk-1", None)]
