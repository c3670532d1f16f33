"""Active liveness through the kiosk API: POST /api/kiosk/challenges, then a check-in that
answers it. The frames are made from the REAL photo ../shared/data/faces/obama.jpg with
OpenCV (simulators/challenge_frames.py: a non-rigid warp for turns, eyes painted closed
for a blink, a progressive zoom with a slight head turn for `closer`, since the passive
check that runs first wants a blink or a head movement); obama3.jpg is the enrolled photo."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.db.models import LivenessChallenge
from simulators.challenge_frames import jpeg, load, sequence
from tests.conftest import require_peer, running
from tests.faces.conftest import FACE_CONFIG, FACES, add_kiosk, burst, enroll

# A clip that answers another challenge than the one asked.
OTHER = {"turn_left": "turn_right", "turn_right": "turn_left", "blink": "turn_left", "closer": "blink"}


@pytest.fixture(scope="module")
def obama() -> np.ndarray:
    require_peer(FACES.is_dir(), f"real face photos at {FACES}")
    return load(str(FACES / "obama.jpg"))


def answer(rgb: np.ndarray, kind: Any) -> list[Any]:
    return burst(*[jpeg(f) for f in sequence(rgb, kind, also_turn=0.15 if kind == "closer" else 0.0)])


def bad_inputs(metrics: str) -> dict[str, float]:
    return {s.labels["reason"]: s.value for f in text_string_to_metric_families(metrics) for s in f.samples if s.name == "gateway_face_bad_input_total"}


async def setup(r: Any, faces: dict[str, bytes]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    admin = await r.login()
    assert (await enroll(r, admin, "p-obama", faces["obama3"])).status_code == 201
    assert (await enroll(r, admin, "p-biden", faces["biden"])).status_code == 201
    k1 = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-1")}
    k2 = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-2")}
    return admin, k1, k2


@pytest.mark.parametrize("kind", list(OTHER))
async def test_challenge_is_answered_once_and_the_decision_records_it(make_config, faces, obama, kind) -> None:
    # One kind per run (the server picks at random among `kinds`).
    async with running(make_config(FACE_CONFIG, thresholds={"faces": {"active_liveness": {"kinds": [kind]}}})) as r:
        admin, kh, _ = await setup(r, faces)
        c = await r.client.post("/api/kiosk/challenges", json={"person_id": "p-obama"}, headers=kh)
        assert c.status_code == 200, c.text
        ch = c.json()
        assert ch["kind"] == kind and ch["frames_wanted"] == 8 and ch["interval_ms"] == 150
        assert set(ch["prompt"]) == {"zh-CN", "en"} and len(ch["challenge_id"]) >= 32
        frames = answer(obama, ch["kind"])
        ok = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": ch["challenge_id"]}, files=frames, headers=kh)
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["result"] == "accepted", body
        assert body["liveness"]["live"] is True
        assert body["liveness"]["challenge"]["kind"] == ch["kind"] and body["liveness"]["challenge"]["passed"] is True
        # Single use: the same answer sent again is refused, and nothing is stored for it.
        again = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": ch["challenge_id"]}, files=frames, headers=kh)
        assert again.status_code == 409 and "used already" in again.json()["detail"], again.text
        async with r.services.db.session() as s:
            row = await s.get(LivenessChallenge, ch["challenge_id"])
            assert row is not None and row.used_at is not None and row.device_id == "kiosk-1"
        log = (await r.client.get("/api/checkins?person_id=p-obama", headers=admin)).json()
        assert len(log) == 1 and log[0]["liveness"]["challenge"]["kind"] == ch["kind"]

        # The movement of another challenge (a replayed clip): a rejected decision that says why.
        c2 = (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-obama"}, headers=kh)).json()
        wrong = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": c2["challenge_id"]},
                                    files=answer(obama, OTHER[c2["kind"]]), headers=kh)
        assert wrong.status_code == 200 and wrong.json()["result"] == "rejected", wrong.text
        assert f"challenge {c2['kind']} not met" in wrong.json()["reason"] and wrong.json()["liveness"]["challenge"]["passed"] is False
        metrics = (await r.client.get("/metrics", headers=admin)).text
        judged = {(s.labels["kind"], s.labels["verdict"]): s.value for f in text_string_to_metric_families(metrics) for s in f.samples if s.name == "gateway_face_challenges_total"}
        assert judged.get((ch["kind"], "passed")) == 1 and judged.get((c2["kind"], "failed")) == 1, judged


async def test_checkins_without_a_valid_challenge_are_refused_counted_and_audited(make_config, faces, obama) -> None:
    async with running(make_config(FACE_CONFIG)) as r:
        admin, kh, kh2 = await setup(r, faces)
        frames = answer(obama, "blink")
        # No challenge, while required (the default).
        none = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files=frames, headers=kh)
        assert none.status_code == 422 and "challenge" in none.json()["detail"], none.text
        # Another kiosk's challenge.
        theirs = (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-obama"}, headers=kh2)).json()
        other = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": theirs["challenge_id"]}, files=frames, headers=kh)
        assert other.status_code == 403 and "another kiosk" in other.json()["detail"], other.text
        # A challenge issued for another person.
        biden = (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-biden"}, headers=kh)).json()
        person = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": biden["challenge_id"]}, files=frames, headers=kh)
        assert person.status_code == 403 and "another person" in person.json()["detail"], person.text
        # A made-up id.
        made_up = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": "x" * 32}, files=frames, headers=kh)
        assert made_up.status_code == 404, made_up.text
        # A challenge for nobody, or for a person without photos.
        assert (await r.client.post("/api/kiosk/challenges", json={"person_id": "nobody"}, headers=kh)).status_code == 404
        assert (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-empty"}, headers=kh)).status_code == 409
        assert (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-obama"}, headers={"X-Device-Key": "dk_forged"})).status_code == 401
        # The refused ones did not use the challenges up: their own kiosk and person can still answer them.
        async with r.services.db.session() as s:
            assert (await s.scalars(select(LivenessChallenge.used_at))).all() == [None, None]
        log = (await r.client.get("/api/checkins", headers=admin)).json()
        assert log == []
        audit = (await r.client.get("/api/audit?limit=500", headers=admin)).json()
        actions = [a["action"] for a in (audit["items"] if isinstance(audit, dict) else audit)]
        assert actions.count("kiosk.checkin_bad_input") == 4 and actions.count("kiosk.challenge_bad_input") == 2
        assert actions.count("kiosk.challenge_issued") == 2
        refused = bad_inputs((await r.client.get("/metrics", headers=admin)).text)
        assert {k: refused.get(k) for k in ("challenge_required", "challenge_other_kiosk", "challenge_other_person", "challenge_unknown")} == {
            "challenge_required": 1, "challenge_other_kiosk": 1, "challenge_other_person": 1, "challenge_unknown": 1}, refused


async def test_an_expired_challenge_is_refused(make_config, faces, obama) -> None:
    clock = FakeClock()
    async with running(make_config(FACE_CONFIG), clock=clock) as r:
        admin, kh, _ = await setup(r, faces)
        ch = (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-obama"}, headers=kh)).json()
        clock.advance(r.services.config.thresholds.faces.active_liveness.ttl_s + 1)
        late = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": ch["challenge_id"]}, files=answer(obama, ch["kind"]), headers=kh)
        assert late.status_code == 410 and "expired" in late.json()["detail"], late.text
        assert bad_inputs((await r.client.get("/metrics", headers=admin)).text).get("challenge_expired") == 1


async def test_a_clip_answers_a_challenge(make_config, faces, obama, tmp_path) -> None:
    """The same answer as an H.264 clip (frames_wanted frames are sampled from it)."""
    from fractions import Fraction

    import av

    path = tmp_path / "turn.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=7)
        v.width, v.height, v.pix_fmt = obama.shape[1] // 2 * 2, obama.shape[0] // 2 * 2, "yuv420p"
        v.options = {"preset": "superfast", "bf": "0"}
        for i, f in enumerate(sequence(obama, "turn_left")):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: v.height, : v.width]), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 7)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    async with running(make_config(FACE_CONFIG, thresholds={"faces": {"active_liveness": {"kinds": ["turn_left", "turn_right"]}}})) as r:
        _, kh, _ = await setup(r, faces)
        for want in ("accepted", "rejected"):  # until one of each: a turn_left challenge passes, a turn_right one fails
            while True:
                ch = (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-obama"}, headers=kh)).json()
                if (ch["kind"] == "turn_left") == (want == "accepted"):
                    break
            d = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "challenge_id": ch["challenge_id"]},
                                    files={"clip": ("c.mp4", path.read_bytes(), "video/mp4")}, headers=kh)
            assert d.status_code == 200 and d.json()["result"] == want, d.text


async def test_a_check_in_made_offline_answers_the_challenge_the_terminal_chose(make_config, faces, obama) -> None:
    """The terminal could not ask the gateway (out of reach): it picked turn_left itself and
    sends `offline_challenge`. Judged the same way (the wrong movement is refused) and marked
    terminal-chosen; refused outright with active_liveness.allow_offline false."""
    async with running(make_config(FACE_CONFIG)) as r:
        _, kh, _ = await setup(r, faces)
        ok = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "offline_challenge": "turn_left"}, files=answer(obama, "turn_left"), headers=kh)
        assert ok.status_code == 200 and ok.json()["result"] == "accepted", ok.text
        assert ok.json()["liveness"]["challenge"]["issued_by"] == "terminal"
        wrong = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "offline_challenge": "turn_left"}, files=answer(obama, "turn_right"), headers=kh)
        assert wrong.status_code == 200 and wrong.json()["result"] == "rejected" and "challenge turn_left not met" in wrong.json()["reason"]
        assert (await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "offline_challenge": "dance"},
                                    files=answer(obama, "turn_left"), headers=kh)).status_code == 422
    async with running(make_config(FACE_CONFIG, thresholds={"faces": {"active_liveness": {"allow_offline": False}}})) as r:
        admin = await r.login()
        key = await r.client.post("/api/devices", json={"id": "kiosk-9", "kind": "kiosk"}, headers=admin)
        kh = {"X-Device-Key": key.json()["key"]}
        refused = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "offline_challenge": "turn_left"}, files=answer(obama, "turn_left"), headers=kh)
        assert refused.status_code == 422 and "allow_offline" in refused.text


async def test_a_lapsed_challenge_answered_as_terminal_chosen_is_named_in_the_decision(make_config, faces, obama) -> None:
    """A check-in queued offline whose gateway challenge lapsed meanwhile: refused with it (410),
    the terminal sends it again as terminal-chosen of the same kind, naming the lapsed
    challenge (`lapsed_challenge_id`). Judged as terminal-chosen; the decision names the lapsed
    challenge, confirmed (this kiosk's, this person's, that kind, unused, used up now) or not."""
    clock = FakeClock()
    async with running(make_config(FACE_CONFIG, thresholds={"faces": {"active_liveness": {"kinds": ["turn_left"]}}}), clock=clock) as r:
        _, kh, k2 = await setup(r, faces)
        ch = (await r.client.post("/api/kiosk/challenges", json={"person_id": "p-obama"}, headers=kh)).json()
        clock.advance(60)  # a minute offline
        data = {"person_id": "p-obama", "client_ref": "ci-lapsed-1"}
        late = await r.client.post("/api/kiosk/checkins", data={**data, "challenge_id": ch["challenge_id"]}, files=answer(obama, "turn_left"), headers=kh)
        assert late.status_code == 410, late.text
        ok = await r.client.post("/api/kiosk/checkins", data={**data, "offline_challenge": "turn_left", "lapsed_challenge_id": ch["challenge_id"]},
                                 files=answer(obama, "turn_left"), headers=kh)
        assert ok.status_code == 200 and ok.json()["result"] == "accepted", ok.text
        judged = ok.json()["liveness"]["challenge"]
        lapsed = judged["lapsed"]
        assert judged["issued_by"] == "terminal" and (lapsed["challenge_id"], lapsed["confirmed"]) == (ch["challenge_id"], True), judged
        assert datetime.fromisoformat(lapsed["expires_at"]) == datetime.fromisoformat(ch["expires_at"]) > datetime.fromisoformat(lapsed["issued_at"]), lapsed
        async with r.services.db.session() as s:
            assert (await s.get(LivenessChallenge, ch["challenge_id"])).used_at is not None  # used up: named once
        # named again (another reference), or by another kiosk: noted, not confirmed
        again = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "offline_challenge": "turn_left", "lapsed_challenge_id": ch["challenge_id"]},
                                    files=answer(obama, "turn_left"), headers=kh)
        other = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "offline_challenge": "turn_left", "lapsed_challenge_id": "nope-nope"},
                                    files=answer(obama, "turn_left"), headers=k2)
        for d in (again, other):
            assert d.status_code == 200 and d.json()["liveness"]["challenge"]["lapsed"]["confirmed"] is False, d.text
