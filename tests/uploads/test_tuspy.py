"""tuspy (the reference Python tus client) against the running gateway:
whole, chunked, cut-and-resumed and concurrent uploads arrive bit-exact and
are catalogued with their metadata and a custody log."""

from __future__ import annotations

from pathlib import Path

import httpx

from simulators.bodycam import Recorder, run_recorders, upload_file
from tests.uploads.conftest import make_mp4, sha256_of
from tests.waiting import wait_for_blocking


def evidence_for(live, sha: str) -> dict:  # type: ignore[no-untyped-def]
    rows = httpx.get(f"{live.url}/api/evidence", params={"sha256": sha}, headers=live.admin).json()
    assert len(rows) == 1, rows
    return httpx.get(f"{live.url}/api/evidence/{rows[0]['id']}", headers=live.admin).json()


def stored_bytes(live, ev: dict) -> bytes:  # type: ignore[no-untyped-def]
    return (live.services.media_dir / ev["path"]).read_bytes()


def test_whole_upload_is_bit_exact_and_catalogued(live, clip: Path) -> None:
    cam = live.cams[0]
    rec = Recorder(live.url, cam.id, cam.key, person_id=None, case_ref="C-2026-17")
    r = upload_file(rec, clip)
    assert r.sha256 == sha256_of(clip)
    ev = evidence_for(live, r.sha256)
    assert ev["state"] == "stored" and ev["size"] == clip.stat().st_size
    assert stored_bytes(live, ev) == clip.read_bytes()
    assert ev["device_id"] == "bc-1" and ev["case_ref"] == "C-2026-17" and ev["officer"] == "officer-7" and ev["filename"] == "clip.mp4"
    assert ev["media"]["video_codec"] == "h264" and ev["media"]["width"] == 320 and ev["media"]["duration_s"] > 1.5
    assert ev["media"]["gps"] == [{"lat": 31.2304, "lon": 121.4737, "alt": 10.0}]
    assert ev["media"]["creation_time"].startswith("2026-11-20T08:30:00")
    assert [c["action"] for c in ev["custody"]] == ["received", "verified"]
    assert ev["custody"][0]["actor"] == "device:bc-1"
    thumb = httpx.get(f"{live.url}/api/evidence/{ev['id']}/thumbnail.jpg", headers=live.admin)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    # the upload is the body-cam's sign of life: the devices page shows when it was last heard from
    def online() -> dict | None:  # type: ignore[type-arg]
        dev = httpx.get(f"{live.url}/api/devices/bc-1", headers=live.admin).json()
        return dev if dev["state"] == "online" else None

    dev = wait_for_blocking(online, what="bc-1 shown online")
    assert dev["last_seen_at"] is not None


def test_chunked_upload_with_sha1_checksums(live, big_clip: Path) -> None:
    cam = live.cams[0]
    r = upload_file(Recorder(live.url, cam.id, cam.key), big_clip, chunk_size=256 * 1024)
    assert big_clip.stat().st_size > 4 * 256 * 1024
    ev = evidence_for(live, r.sha256)
    assert stored_bytes(live, ev) == big_clip.read_bytes()


def test_cut_connection_resumes_from_server_offset(live, big_clip: Path) -> None:
    cam = live.cams[1]
    cut = 256 * 1024 * 2 + 12345
    r = upload_file(Recorder(live.url, cam.id, cam.key), big_clip, chunk_size=256 * 1024, cut_at=cut, checksum=False)
    assert r.resumed and r.cut_offset is not None
    # without a checksum the server keeps what arrived of the torn PATCH
    assert 256 * 1024 * 2 <= r.cut_offset <= cut
    ev = evidence_for(live, r.sha256)
    assert stored_bytes(live, ev) == big_clip.read_bytes()
    assert ev["device_id"] == "bc-2"


def test_cut_checksummed_chunk_is_discarded_then_resent(live, big_clip: Path, tmp_path: Path) -> None:
    other = make_mp4(tmp_path / "other.mp4", seconds=3, seed=3)
    cam = live.cams[1]
    r = upload_file(Recorder(live.url, cam.id, cam.key), other, chunk_size=128 * 1024, cut_at=128 * 1024 + 5000, checksum=True)
    assert r.resumed and r.cut_offset == 128 * 1024  # the torn chunk could not be verified
    assert stored_bytes(live, evidence_for(live, r.sha256)) == other.read_bytes()


def test_several_devices_at_once(live, tmp_path: Path) -> None:
    files = {cam.id: [make_mp4(tmp_path / f"{cam.id}-{i}.mp4", seconds=1, seed=10 + i + 5 * n) for i in range(2)] for n, cam in enumerate(live.cams)}
    jobs = [(Recorder(live.url, cam.id, cam.key), files[cam.id]) for cam in live.cams]
    results = run_recorders(jobs, chunk_size=64 * 1024)
    assert len(results) == 4
    for r in results:
        ev = evidence_for(live, r.sha256)
        assert ev["device_id"] == r.device_id
        assert stored_bytes(live, ev) == r.path.read_bytes()
