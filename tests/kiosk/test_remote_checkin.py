"""Remote check-in by a one-time link, through the HTTP API of a running gateway: an officer
creates, lists and revokes a person's links (only within their reach); the phone's requests
are authenticated by the link's token alone, refused when it is unknown (404), used (409),
expired or revoked (410), and rate-limited with the logins. A check-in verifies the face 1:1
(the real photos of ../shared/data/faces) and judges the phone's position against the
person's zones: inside, in a forbidden zone, far away, too coarse; a breach raises
`checkin_out_of_zone` at the zone's level, a rejected face `checkin_failed`. A `retry` does
not use the link up, but every attempt counts; the token is never in the audit or the logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.clock import FakeClock
from simulators.challenge_frames import jpeg, load, sequence
from tests.conftest import require_peer, running
from tests.faces.conftest import FACE_CONFIG, FACES, burst, enroll, faces  # noqa: F401

PASSIVE = {"faces": {"active_liveness": {"required": False}}}
BUDGET = {"login_attempts_per_minute": 200}
HOME = (31.23, 121.47)  # lat, lon: the person's allowed area, a 2 km circle
BAR = (31.23, 121.475)  # a forbidden place inside it (≈ 475 m east of the centre), a 100 m circle
FAR = (31.30, 121.60)


def phone(token: str) -> dict[str, str]:
    return {"X-Checkin-Token": token}


def token_of(link: dict[str, Any]) -> str:
    return str(link["url"].split("#", 1)[1])


def where(lat: float, lon: float, accuracy: float = 20, taken_at: datetime | None = None) -> dict[str, str]:
    return {"lat": str(lat), "lon": str(lon), "accuracy_m": str(accuracy), "taken_at": (taken_at or datetime.now(UTC)).isoformat()}


async def zones(r: Any, admin: dict[str, str]) -> None:
    for z in ({"id": "home", "name": "居住地", "kind": "inclusion", "geometry": {"type": "Point", "coordinates": [HOME[1], HOME[0]]}, "radius_m": 2000,
               "person_ids": ["p-obama"]},
              {"id": "bar", "name": "酒吧", "kind": "exclusion", "geometry": {"type": "Point", "coordinates": [BAR[1], BAR[0]]}, "radius_m": 100,
               "person_ids": ["p-obama"]}):
        resp = await r.client.post("/api/zones", json=z, headers=admin)
        assert resp.status_code == 201, resp.text


async def new_link(r: Any, who: dict[str, str], person: str = "p-obama", **body: Any) -> dict[str, Any]:
    resp = await r.client.post(f"/api/persons/{person}/checkin-links", json=body, headers=who)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def test_links_are_created_listed_revoked_and_refused(make_config, faces, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    async with running(make_config(FACE_CONFIG, auth=BUDGET), clock=clock) as r:
        admin = await r.login()
        officer = await r.login("o1", "officer")
        # a person who cannot be verified gets no link: said to the officer, not on the phone
        no_photo = await r.client.post("/api/persons/p-obama/checkin-links", json={}, headers=officer)
        assert no_photo.status_code == 409 and "no enrolled face photos" in no_photo.text
        assert (await enroll(r, admin, "p-obama", faces["obama3"])).status_code == 201
        link = await new_link(r, officer, note="本周远程签到")
        token = token_of(link)
        assert link["url"].startswith("http") and "/remote#" in link["url"] and len(token) >= 43  # 256 bits, base64url
        assert (link["state"], link["attempts"], link["max_attempts"], link["created_by"]) == ("unused", 0, 5, "o1")
        assert datetime.fromisoformat(link["expires_at"]) - datetime.fromisoformat(link["created_at"]) == timedelta(minutes=15)
        for bad in (0, 121):
            assert (await r.client.post("/api/persons/p-obama/checkin-links", json={"valid_minutes": bad}, headers=officer)).status_code == 422
        assert (await r.client.post("/api/persons/p-obama/checkin-links", json={}, headers=await r.login("w", "monitor"))).status_code == 403
        assert (await r.client.post("/api/persons/nobody/checkin-links", json={}, headers=officer)).status_code == 404

        # the phone: what the link is for
        info = await r.client.get("/api/remote/link", headers=phone(token))
        assert info.status_code == 200, info.text
        assert info.json()["person_name"] == "Obama" and info.json()["attempts_left"] == 5 and info.json()["challenge_required"] is True
        assert (await r.client.get("/api/remote/link")).status_code == 401
        assert (await r.client.get("/api/remote/link", headers=phone(token[:-4] + "AAAA"))).status_code == 404
        assert (await r.client.get("/api/remote/link", headers=officer)).status_code == 401  # a user's token is no link

        # revoked: 410; expired: 410; the list says which is which
        revoked = await new_link(r, officer, valid_minutes=30)
        gone = await r.client.delete(f"/api/persons/p-obama/checkin-links/{revoked['id']}", headers=officer)
        assert gone.status_code == 200 and gone.json()["state"] == "revoked" and gone.json()["revoked_by"] == "o1"
        refused = await r.client.get("/api/remote/link", headers=phone(token_of(revoked)))
        assert refused.status_code == 410 and "withdrawn" in refused.text
        short = await new_link(r, officer, valid_minutes=1)
        clock.advance(61)
        late = await r.client.get("/api/remote/link", headers=phone(token_of(short)))
        assert late.status_code == 410 and "expired" in late.text
        listed = (await r.client.get("/api/persons/p-obama/checkin-links", headers=officer)).json()
        assert [(x["id"], x["state"]) for x in listed] == [(short["id"], "expired"), (revoked["id"], "revoked"), (link["id"], "unused")]
        assert all("url" not in x and "token" not in str(x) for x in listed)
        assert (await r.client.delete("/api/persons/p-biden/checkin-links/" + str(link["id"]), headers=officer)).status_code == 404  # another person's

        # the token is in no audit entry and no log line
        audit = (await r.client.get("/api/audit", params={"limit": 1000}, headers=admin)).text
        assert "checkin_link.created" in audit and "checkin_link.revoked" in audit and "checkin_link.refused" in audit
        for t in (token, token_of(revoked), token_of(short)):
            assert t not in audit
            assert not [rec for rec in caplog.records if t in rec.getMessage()]


async def test_an_officer_acts_on_the_persons_of_their_unit_only(make_config, faces) -> None:  # noqa: F811
    async with running(make_config(auth=BUDGET)) as r:
        root = await r.login()
        for uid, photo in (("office-a", "obama3"), ("office-b", "biden")):
            assert (await r.client.post("/api/units", json={"id": uid, "name": uid, "parent_id": "root"}, headers=root)).status_code == 201
            assert (await r.client.post("/api/persons", json={"id": f"p-{uid}", "name": uid, "unit_id": uid}, headers=root)).status_code == 201
            assert (await enroll(r, root, f"p-{uid}", faces[photo])).status_code == 201
        assert (await r.client.post("/api/users", json={"username": "oa", "password": "correct-horse-1", "role": "officer", "unit_id": "office-a"},
                                    headers=root)).status_code == 201
        oa = await r.login("oa", "officer")
        theirs = await new_link(r, root, "p-office-b")
        assert (await r.client.post("/api/persons/p-office-b/checkin-links", json={}, headers=oa)).status_code == 404
        assert (await r.client.get("/api/persons/p-office-b/checkin-links", headers=oa)).status_code == 404
        assert (await r.client.delete(f"/api/persons/p-office-b/checkin-links/{theirs['id']}", headers=oa)).status_code == 404
        assert (await new_link(r, oa, "p-office-a"))["state"] == "unused"
        # no longer supervised: no link
        assert (await r.client.delete("/api/persons/p-office-a", headers=oa)).status_code in (200, 204)
        ended = await r.client.post("/api/persons/p-office-a/checkin-links", json={}, headers=oa)
        assert ended.status_code == 409 and "no longer supervised" in ended.text


async def test_phone_requests_count_against_the_login_budget(make_config, faces) -> None:  # noqa: F811
    async with running(make_config(FACE_CONFIG, auth={"login_attempts_per_minute": 4})) as r:
        root = await r.login()  # one of the address's four
        assert (await enroll(r, root, "p-obama", faces["obama3"])).status_code == 201
        token = token_of(await new_link(r, root, "p-obama"))
        statuses = [(await r.client.get("/api/remote/link", headers=phone(token if i else "x" * 43))).status_code for i in range(4)]
        assert statuses == [404, 200, 200, 429]


async def test_check_ins_inside_in_a_forbidden_zone_far_and_coarse(make_config, faces) -> None:  # noqa: F811
    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE, auth=BUDGET)) as r:
        admin = await r.login()
        officer = await r.login("o1", "officer")
        assert (await enroll(r, admin, "p-obama", faces["obama3"])).status_code == 201
        await zones(r, admin)
        same = burst(faces["obama2"], faces["obama3"], faces["obama-480p"])

        # at home: accepted, position ok; the link is used up
        link = await new_link(r, officer)
        token = token_of(link)
        ok = await r.client.post("/api/remote/checkins", data=where(*HOME), files=same, headers=phone(token))
        assert ok.status_code == 200, ok.text
        d = ok.json()
        assert (d["result"], d["link_state"], d["attempts_left"], d["position"]["verdict"]) == ("accepted", "used", 0, "ok")
        assert {z["zone_id"]: z["state"] for z in d["position"]["zones"]} == {"home": "ok", "bar": "ok"}
        again = await r.client.post("/api/remote/checkins", data=where(*HOME), files=same, headers=phone(token))
        assert again.status_code == 409 and "used already" in again.text
        assert (await r.client.get("/api/remote/link", headers=phone(token))).status_code == 409
        listed = (await r.client.get("/api/persons/p-obama/checkin-links", headers=officer)).json()[0]
        assert (listed["state"], listed["result"], listed["checkin_id"]) == ("used", "accepted", d["checkin_id"])
        row = (await r.client.get("/api/checkins", params={"person_id": "p-obama"}, headers=officer)).json()[0]
        assert (row["id"], row["kiosk_id"], row["position"]["verdict"]) == (d["checkin_id"], f"remote:{link['id']}", "ok")
        assert row["position"]["lat"] == HOME[0] and row["position"]["accuracy_m"] == 20
        tl = (await r.client.get("/api/persons/p-obama/timeline", params={"kinds": "checkin"}, headers=officer)).json()["items"]
        assert tl[0]["id"] == d["checkin_id"] and tl[0]["position"]["verdict"] == "ok"

        # in the forbidden zone (inside the allowed area): a breach at the exclusion zone's level
        bar_link = await new_link(r, officer)
        bar = (await r.client.post("/api/remote/checkins", data=where(*BAR), files=same, headers=phone(token_of(bar_link)))).json()
        assert bar["result"] == "accepted" and bar["position"]["verdict"] == "breach"
        assert {z["zone_id"]: z["state"] for z in bar["position"]["zones"]} == {"home": "ok", "bar": "breach"}
        # far away: outside the allowed area
        far_link = await new_link(r, officer)
        far = (await r.client.post("/api/remote/checkins", data=where(*FAR), files=same, headers=phone(token_of(far_link)))).json()
        assert far["position"]["verdict"] == "breach" and {z["zone_id"]: z["state"] for z in far["position"]["zones"]}["home"] == "breach"
        alerts = (await r.client.get("/api/alerts", params={"kind": "checkin_out_of_zone"}, headers=officer)).json()
        got = sorted((a["details"]["checkin_id"], a["level"], a["zone_id"], a["device_id"]) for a in alerts)
        assert got == [(bar["checkin_id"], "red", "bar", f"remote:{bar_link['id']}"), (far["checkin_id"], "orange", "home", f"remote:{far_link['id']}")]
        # a position too coarse to say, or taken long ago: uncertain, no alert
        coarse = (await r.client.post("/api/remote/checkins", data=where(*HOME, accuracy=3000), files=same, headers=phone(token_of(await new_link(r, officer))))).json()
        assert coarse["position"]["verdict"] == "uncertain" and "coarser" in coarse["position"]["notes"][0]
        stale = where(*HOME, taken_at=datetime.now(UTC) - timedelta(hours=1))
        old = (await r.client.post("/api/remote/checkins", data=stale, files=same, headers=phone(token_of(await new_link(r, officer))))).json()
        assert old["position"]["verdict"] == "uncertain"
        assert len((await r.client.get("/api/alerts", params={"kind": "checkin_out_of_zone"}, headers=officer)).json()) == 2

        # another face: rejected, the link used up, checkin_failed as at a kiosk
        wrong_link = await new_link(r, officer)
        wrong = await r.client.post("/api/remote/checkins", data=where(*HOME), files=burst(faces["biden"], faces["biden"], faces["biden"]),
                                    headers=phone(token_of(wrong_link)))
        assert wrong.status_code == 200 and wrong.json()["result"] == "rejected" and wrong.json()["link_state"] == "used", wrong.text
        failed = (await r.client.get("/api/alerts", params={"kind": "checkin_failed"}, headers=officer)).json()
        assert [(a["person_id"], a["device_id"]) for a in failed] == [("p-obama", f"remote:{wrong_link['id']}")]
        # a person without zones: no_zones
        assert (await enroll(r, admin, "p-biden", faces["biden"])).status_code == 201
        nz = await r.client.post("/api/remote/checkins", data=where(*HOME), files=burst(faces["biden"], faces["biden"], faces["biden"]),
                                 headers=phone(token_of(await new_link(r, officer, "p-biden"))))
        assert nz.json()["position"]["verdict"] == "no_zones", nz.text


async def test_a_retry_keeps_the_link_but_attempts_are_counted(make_config, faces) -> None:  # noqa: F811
    # thresholds that make every one of these frames "uncertain": a retry
    # (same person: 0.09-0.43 on these photos; accepted <= 0.05, retry <= 0.45)
    thresholds = {"faces": {"match_threshold": 0.25, "retry_margin": 0.2, "active_liveness": {"required": False}}}
    async with running(make_config(FACE_CONFIG, thresholds=thresholds, auth=BUDGET)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama3"])).status_code == 201
        link = await new_link(r, admin)
        token = phone(token_of(link))
        bad = await r.client.post("/api/remote/checkins", data=where(*HOME), files=burst(b"not a jpeg", b"x", b"y"), headers=token)
        assert bad.status_code == 422  # bad input: the link holds, the attempt counts
        for left in (3, 2, 1, 0):
            resp = await r.client.post("/api/remote/checkins", data=where(*HOME), files=burst(faces["obama2"], faces["obama"], faces["obama-480p"]), headers=token)
            assert resp.status_code == 200, resp.text
            d = resp.json()
            assert (d["result"], d["attempts_left"], d["link_state"]) == ("retry", left, "unused" if left else "exhausted")
        over = await r.client.post("/api/remote/checkins", data=where(*HOME), files=burst(faces["obama2"]), headers=token)
        assert over.status_code == 409 and "no attempts left" in over.text
        listed = (await r.client.get("/api/persons/p-obama/checkin-links", headers=admin)).json()[0]
        assert (listed["state"], listed["attempts"], listed["result"], listed["used_at"]) == ("exhausted", 5, "retry", None)
        checkins = (await r.client.get("/api/checkins", params={"person_id": "p-obama"}, headers=admin)).json()
        assert [c["result"] for c in checkins] == ["retry"] * 4


async def test_a_remote_check_in_answers_the_gateways_challenge(make_config, faces) -> None:  # noqa: F811
    require_peer(FACES.is_dir(), f"real face photos at {FACES}")
    async with running(make_config(FACE_CONFIG, thresholds={"faces": {"active_liveness": {"kinds": ["blink"]}}}, auth=BUDGET)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama3"])).status_code == 201
        token = phone(token_of(await new_link(r, admin)))
        without = await r.client.post("/api/remote/checkins", data=where(*HOME), files=burst(faces["obama2"], faces["obama3"], faces["obama-480p"]), headers=token)
        assert without.status_code == 422 and "challenge" in without.text
        ch = await r.client.post("/api/remote/challenges", headers=token)
        assert ch.status_code == 200 and ch.json()["kind"] == "blink", ch.text
        frames = burst(*[jpeg(f) for f in sequence(load(str(FACES / "obama.jpg")), "blink")])
        ok = await r.client.post("/api/remote/checkins", data={**where(*HOME), "challenge_id": ch.json()["challenge_id"]}, files=frames, headers=token)
        assert ok.status_code == 200, ok.text
        assert ok.json()["result"] == "accepted" and ok.json()["liveness"]["challenge"]["passed"] is True
        assert ok.json()["position"]["verdict"] == "no_zones"



async def test_two_phones_with_one_link_cannot_both_check_in(make_config, faces) -> None:  # noqa: F811
    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE, auth=BUDGET)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama3"])).status_code == 201
        token = phone(token_of(await new_link(r, admin)))

        async def send() -> Any:
            return await r.client.post("/api/remote/checkins", data=where(*HOME), files=burst(faces["obama2"], faces["obama3"], faces["obama-480p"]), headers=token)

        # the one that holds the link is decided (a face check: long); the other is told to wait
        # while it is, or that the link is used once it was
        first, second = await asyncio.gather(send(), send())
        assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
        loser = first if first.status_code == 409 else second
        assert "being decided" in loser.text or "used already" in loser.text
        checkins = (await r.client.get("/api/checkins", params={"person_id": "p-obama"}, headers=admin)).json()
        assert [c["result"] for c in checkins] == ["accepted"]
