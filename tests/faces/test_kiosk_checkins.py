"""Enrollment, kiosk check-ins (1:1 + liveness) and the kiosk key rules on the
real photos, through the HTTP API of a running gateway."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from gateway.db.models import CheckInRow, FaceEncoding
from tests.conftest import running
from tests.faces.conftest import FACE_CONFIG, FACES, add_kiosk, burst, enroll, small_jpeg

# These tests are about passive liveness, 1:1 and bad input: no challenge (see test_kiosk_challenges.py).
PASSIVE = {"faces": {"active_liveness": {"required": False}}}


async def test_enroll_checkin_genuine_impostor_and_spoof(make_config, faces) -> None:
    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE)) as r:
        admin = await r.login()
        # Enrollment: a good photo is stored with its encoding and verdict.
        e = await enroll(r, admin, "p-obama", faces["obama"])
        assert e.status_code == 201, e.text
        assert e.json()["accepted"] and e.json()["metrics"]["faces"] == 1
        assert (await enroll(r, admin, "p-biden", faces["biden"])).status_code == 201
        # The two-face photo is refused with the reason.
        two = await enroll(r, admin, "p-empty", faces["two_people"])
        assert two.status_code == 422 and "2 faces" in two.json()["detail"]["message"]
        # The 32-bit PNG loads (RGBA) and is the same person.
        png = (FACES / "32bit.png").read_bytes()
        p = await enroll(r, admin, "p-obama", png, "32bit.png")
        assert p.status_code == 201, p.text
        # Obama's face enrolled for Biden is flagged as a duplicate of another person.
        dup = await enroll(r, admin, "p-biden", faces["obama-480p"])
        assert dup.status_code == 422 and dup.json()["detail"]["verdict"]["duplicate_of"] == "p-obama"
        photos = (await r.client.get("/api/persons/p-obama/photos", headers=admin)).json()
        assert len(photos) == 2 and all(ph["quality"]["verdict"] == "accepted" for ph in photos)
        img = await r.client.get(photos[0]["url"], headers=admin)
        assert img.status_code == 200 and len(img.content) > 1000
        assert (await r.client.get(photos[0]["url"])).status_code == 401

        key = await add_kiosk(r, admin, "kiosk-1")
        kh = {"X-Device-Key": key}
        # Genuine: three different real photos of the enrolled person (pose changes between them).
        ok = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files=burst(faces["obama2"], faces["obama3"], faces["obama-480p"]), headers=kh)
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["result"] == "accepted", body
        assert body["distance"] < 0.5 and body["liveness"]["live"] is True
        # Impostor: Biden's live-looking burst claiming to be Obama.
        bad = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"},
                                  files=burst(faces["biden"], small_jpeg(FACES / "biden.jpg", 800), small_jpeg(FACES / "biden.jpg", 700, shift=(10, 5))), headers=kh)
        assert bad.status_code == 200 and bad.json()["result"] == "rejected", bad.text
        assert bad.json()["distance"] > 0.7
        # Spoof: the same still frame repeated.
        spoof = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files=burst(faces["obama2"], faces["obama2"], faces["obama2"]), headers=kh)
        assert spoof.json()["result"] == "rejected" and "still image" in spoof.json()["reason"], spoof.text
        # Spoof: the photo moved around as a whole (shifted and rescaled, no blink, no head turn).
        moved = burst(small_jpeg(FACES / "obama2.jpg", 720), small_jpeg(FACES / "obama2.jpg", 680, shift=(12, 0)), small_jpeg(FACES / "obama2.jpg", 640, shift=(-10, 8)))
        held = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files=moved, headers=kh)
        assert held.json()["result"] == "rejected" and "liveness" in held.json()["reason"], held.text

        # Every decision is in the log with distance, threshold and thumbnail, and in the timeline.
        log = (await r.client.get("/api/checkins?person_id=p-obama", headers=admin)).json()
        assert [c["result"] for c in log] == ["rejected", "rejected", "rejected", "accepted"]
        assert all(c["threshold"] == 0.6 for c in log)
        thumb = await r.client.get(log[-1]["thumbnail"], headers=admin)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        tl = (await r.client.get("/api/persons/p-obama/timeline", headers=admin)).json()
        assert sum(1 for i in tl["items"] if i["kind"] == "checkin") == 4
        # A rejected kiosk check-in opened a yellow checkin_failed alert.
        alerts = (await r.client.get("/api/alerts?kind=checkin_failed", headers=admin)).json()
        assert alerts and alerts[0]["level"] == "yellow" and alerts[0]["person_id"] == "p-obama"


async def test_console_verify_threshold_is_config_with_retry_band(make_config, faces, any_db_url) -> None:
    # obama.jpg vs obama3.jpg measures 0.33 here: with the threshold at 0.35 and a
    # margin of 0.05 the genuine pair falls inside the band and must answer retry.
    cfg = make_config(FACE_CONFIG, thresholds={"faces": {"match_threshold": 0.35, "retry_margin": 0.05, "active_liveness": {"required": False}}}, storage={"database_url": any_db_url})
    async with running(cfg) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        v = await r.client.post("/api/faces/verify", data={"person_id": "p-obama"}, files={"file": ("x.jpg", faces["obama3"], "image/jpeg")}, headers=admin)
        assert v.status_code == 200, v.text
        d = v.json()
        assert d["threshold"] == 0.35 and 0.30 < d["distance"] <= 0.40, d
        assert d["result"] == "retry" and not d["match"] and "try again" in d["reason"]
        two = await r.client.post("/api/faces/verify", data={"person_id": "p-obama"}, files={"file": ("x.jpg", faces["two_people"], "image/jpeg")}, headers=admin)
        assert two.json()["result"] == "rejected" and "several faces" in two.json()["reason"]
        ident = await r.client.post("/api/faces/identify", files={"file": ("x.jpg", faces["biden"], "image/jpeg")}, headers=admin)
        assert ident.status_code == 200 and ident.json()["faces"][0]["person_id"] is None  # unknown stays unknown
        # Removing the only photo removes its file and its encoding: verification then refuses.
        photo = (await r.client.get("/api/persons/p-obama/photos", headers=admin)).json()[0]
        files = list((r.services.media_dir / "faces" / "photos").rglob("*.jpg"))
        assert len(files) == 1
        assert (await r.client.delete(f"/api/persons/p-obama/photos/{photo['id']}", headers=admin)).status_code == 204
        assert not files[0].exists()
        again = await r.client.post("/api/faces/verify", data={"person_id": "p-obama"}, files={"file": ("x.jpg", faces["obama3"], "image/jpeg")}, headers=admin)
        assert again.status_code == 409 and "no enrolled face photos" in again.json()["detail"]


async def test_bad_input_is_refused_and_only_audited(make_config, faces, tmp_path) -> None:
    import io
    import struct
    import zlib

    from PIL import Image

    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        key = await add_kiosk(r, admin, "kiosk-1")
        key2 = await add_kiosk(r, admin, "kiosk-2")
        kh = {"X-Device-Key": key}

        def big_jpeg() -> bytes:  # 50 MP, but a tiny file (flat colour)
            out = io.BytesIO()
            Image.new("RGB", (8660, 5774), (200, 200, 200)).save(out, "JPEG", quality=10)
            return out.getvalue()

        def png_bomb() -> bytes:  # 40000x40000 grey PNG: a few hundred kB that would inflate to 1.6 GB
            def chunk(t: bytes, d: bytes) -> bytes:
                return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
            w = h = 40000
            comp = zlib.compressobj(9)
            row = b"\x00" + b"\x00" * w
            body = b"".join(comp.compress(row) for _ in range(200)) + comp.flush()
            return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", body) + chunk(b"IEND", b"")

        cases = {  # what, and the status it must get: 422 for what is not a usable image, 413 for too many pixels
            "not an image": (b"%PDF-1.4 definitely not a photo", 422),
            "truncated": (faces["obama2"][: len(faces["obama2"]) // 2], 422),
            "50 MP": (big_jpeg(), 413),
            "bomb": (png_bomb(), 413),
        }
        async with r.services.db.session() as s:
            before = (await s.scalar(select(func.count()).select_from(CheckInRow)), await s.scalar(select(func.count()).select_from(FaceEncoding)))
        for what, (data, status) in cases.items():
            v = await r.client.post("/api/faces/verify", data={"person_id": "p-obama"}, files={"file": ("x.jpg", data, "image/jpeg")}, headers=admin)
            assert v.status_code == status, (what, v.status_code, v.text)
            assert v.json()["detail"], what
            e = await enroll(r, admin, "p-obama", data)
            assert e.status_code == status, (what, e.text)
        empty = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, headers=kh)
        assert empty.status_code == 422 and "no photo or frames" in empty.json()["detail"]
        short = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files=burst(faces["obama2"]), headers=kh)
        assert short.status_code == 422 and "burst" in short.json()["detail"]
        unknown = await r.client.post("/api/kiosk/checkins", data={"person_id": "nobody"}, files=burst(faces["obama2"], faces["obama3"], faces["obama"]), headers=kh)
        assert unknown.status_code == 404 and "no person" in unknown.json()["detail"]
        not_enrolled = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-empty"}, files=burst(faces["obama2"], faces["obama3"], faces["obama"]), headers=kh)
        assert not_enrolled.status_code == 409
        other = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama", "kiosk_id": "kiosk-1"}, files=burst(faces["obama2"], faces["obama3"], faces["obama"]), headers={"X-Device-Key": key2})
        assert other.status_code == 403 and "kiosk-2" in other.json()["detail"]
        assert (await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files=burst(faces["obama2"]), headers={"X-Device-Key": "dk_forged"})).status_code == 401
        async with r.services.db.session() as s:
            after = (await s.scalar(select(func.count()).select_from(CheckInRow)), await s.scalar(select(func.count()).select_from(FaceEncoding)))
        assert after == before
        audit = (await r.client.get("/api/audit?limit=500", headers=admin)).json()
        actions = [a["action"] for a in (audit["items"] if isinstance(audit, dict) else audit)]
        assert actions.count("face.verify_bad_input") == 4 and "kiosk.checkin_bad_input" in actions
        metrics = (await r.client.get("/metrics", headers=admin)).text
        refused = {s.labels["reason"]: s.value for f in text_string_to_metric_families(metrics) for s in f.samples if s.name == "gateway_face_bad_input_total"}
        # 2 unusable and 2 too large images, to verify and to enroll; each refused check-in once
        assert refused == {"image": 4, "too_large": 4, "empty_burst": 1, "short_burst": 1, "unknown_person": 1, "not_enrolled": 1}, refused


async def test_kiosk_checkin_with_a_clip(make_config, faces, tmp_path) -> None:
    from tests.faces.conftest import walking_clip

    live = walking_clip(tmp_path / "live.mp4", [["obama2.jpg", "obama-480p.jpg", "obama.jpg"]], seconds_each=3, fps=5)
    frozen = walking_clip(tmp_path / "frozen.mp4", [["obama2.jpg"]], seconds_each=0.6, fps=5, still=True)
    async with running(make_config(FACE_CONFIG, thresholds=PASSIVE)) as r:
        admin = await r.login()
        assert (await enroll(r, admin, "p-obama", faces["obama"])).status_code == 201
        kh = {"X-Device-Key": await add_kiosk(r, admin, "kiosk-1")}
        ok = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files={"clip": ("c.mp4", live.read_bytes(), "video/mp4")}, headers=kh)
        assert ok.status_code == 200 and ok.json()["result"] == "accepted", ok.text
        still = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files={"clip": ("c.mp4", frozen.read_bytes(), "video/mp4")}, headers=kh)
        assert still.json()["result"] == "rejected" and "liveness" in still.json()["reason"], still.text
        junk = await r.client.post("/api/kiosk/checkins", data={"person_id": "p-obama"}, files={"clip": ("c.mp4", b"not a video at all" * 10, "video/mp4")}, headers=kh)
        assert junk.status_code == 422 and "clip" in junk.json()["detail"]
