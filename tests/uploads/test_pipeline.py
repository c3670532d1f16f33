"""Completion pipeline: store, catalogue, custody, quarantine with alert,
duplicates, Range playback, signed export, and `gateway evidence verify`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from drivers.bodycam.manifest import check
from gateway.cli import main as gateway_cli
from gateway.db.models import UploadRow
from gateway.events import UploadCompleted, UploadProgress
from gateway.users import verify_evidence
from tests.conftest import running
from tests.uploads.conftest import make_mp4, sha256_of
from tests.uploads.test_protocol import TUS, Gw, _cam, meta
from tests.waiting import wait_for


@pytest.fixture
async def gw(make_config):  # type: ignore[no-untyped-def]
    cfg = make_config(uploads={"max_size_bytes": 10 * 1024**2, "min_free_bytes": 0})
    async with running(cfg) as r:
        admin = await r.login("adm", "admin")
        yield Gw(r, [await _cam(r, admin, "bc-1"), await _cam(r, admin, "bc-2")], admin)


async def upload(gw: Gw, data: bytes, cam_index: int = 0, **kv: str) -> dict:  # type: ignore[type-arg]
    cam = gw.cams[cam_index]
    r = await gw.c.post("/api/uploads/", headers={**TUS, **cam.headers, "Upload-Length": str(len(data)), "Upload-Metadata": meta(device_id=cam.id, **kv)})
    assert r.status_code == 201, r.text
    url = r.headers["location"]
    half = len(data) // 2
    assert (await gw.patch(url, 0, data[:half], cam)).status_code == 204
    r = await gw.patch(url, half, data[half:], cam)
    assert r.status_code == 204, r.text
    import hashlib

    rows = (await gw.c.get("/api/evidence", params={"sha256": hashlib.sha256(data).hexdigest()}, headers=gw.admin)).json()
    assert rows, "no evidence row after completion"
    return (await gw.c.get(f"/api/evidence/{rows[0]['id']}", headers=gw.admin)).json()  # type: ignore[no-any-return]


def truncated(clip: Path, tmp: Path, faststart: bool) -> bytes:
    src = make_mp4(tmp / f"fs{faststart}.mp4", seconds=2, faststart=faststart, seed=5)
    data = src.read_bytes()
    return data[: int(len(data) * 0.6)]


async def alerts(gw: Gw) -> list[dict]:  # type: ignore[type-arg]
    return (await gw.c.get("/api/alerts", params={"kind": "upload_quarantined"}, headers=gw.admin)).json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("faststart", [False, True])
async def test_truncated_mp4_is_quarantined_with_yellow_alert(gw: Gw, clip: Path, tmp_path: Path, faststart: bool) -> None:
    data = truncated(clip, tmp_path, faststart)
    ev = await upload(gw, data, filename="cut.mp4")
    assert ev["state"] == "quarantined" and ev["quarantine_reason"]
    assert ev["path"].startswith("quarantine/")
    assert (gw.r.services.media_dir / ev["path"]).read_bytes() == data  # kept, never dropped
    assert gw.store_files() == []  # nothing partial in the evidence store
    a = await alerts(gw)
    assert len(a) == 1 and a[0]["level"] == "yellow" and a[0]["device_id"] == "bc-1"
    assert (await gw.c.get(f"/api/evidence/{ev['id']}/file", headers=gw.admin)).status_code == 409


async def test_random_bytes_are_quarantined(gw: Gw) -> None:
    ev = await upload(gw, os.urandom(50_000), filename="noise.mp4")
    assert ev["state"] == "quarantined" and "container" in ev["quarantine_reason"]
    assert gw.store_files() == []
    assert len(await alerts(gw)) == 1


async def test_recorder_claimed_hash_must_match(gw: Gw, clip: Path) -> None:
    ev = await upload(gw, clip.read_bytes(), sha256="0" * 64)
    assert ev["state"] == "quarantined" and "differs" in ev["quarantine_reason"]


async def test_events_on_completion(gw: Gw, clip: Path) -> None:
    seen: list = []  # type: ignore[type-arg]
    done = asyncio.Event()

    async def handler(ev) -> None:  # type: ignore[no-untyped-def]
        seen.append(ev)
        if isinstance(ev, UploadCompleted):
            done.set()

    gw.r.services.bus.subscribe("test-uploads", handler, topics=("upload.completed", "upload.progress"))
    ev = await upload(gw, clip.read_bytes())
    await asyncio.wait_for(done.wait(), 10)
    completed = [e for e in seen if isinstance(e, UploadCompleted)]
    assert completed[0].evidence_id == ev["id"] and completed[0].sha256 == ev["sha256"] and not completed[0].quarantined
    progress = [e for e in seen if isinstance(e, UploadProgress)]
    assert progress and progress[-1].offset == progress[-1].length == clip.stat().st_size


async def test_duplicate_is_recognised_not_stored_twice(gw: Gw, clip: Path) -> None:
    first = await upload(gw, clip.read_bytes())
    again = await upload(gw, clip.read_bytes(), cam_index=1)
    assert again["id"] == first["id"]
    assert len([p for p in gw.store_files() if p.suffix == ".mp4"]) == 1
    received = [c for c in again["custody"] if c["action"] == "received"]
    assert len(received) == 2 and received[1]["details"]["duplicate"] is True and received[1]["details"]["device_id"] == "bc-2"
    # the redundant copy is removed after the answer, not left behind
    partial = gw.r.services.media_dir / "uploads" / "partial"
    await wait_for(lambda: list(partial.glob("*.part")) == [], what="the redundant copy removed")


async def test_leftover_partial_files_of_finished_uploads_are_removed(gw: Gw, clip: Path) -> None:
    sessions = gw.r.areas.uploads
    done = await upload(gw, clip.read_bytes())
    receiving = (await gw.new(clip.stat().st_size)).rsplit("/", 1)[1]
    async with gw.r.services.db.session() as s:
        finished_id = (await s.scalars(select(UploadRow.id).where(UploadRow.state == "completed"))).first()
    assert finished_id and done
    # as a crash between completion and removal would leave them
    sessions.path_of(finished_id).write_bytes(b"stale copy")
    sessions.path_of("0" * 32).write_bytes(b"no row at all")
    assert await sessions.remove_leftovers() == 2
    assert [p.name for p in sessions.partial_dir.glob("*.part")] == [f"{receiving}.part"]


async def test_filters(gw: Gw, tmp_path: Path) -> None:
    a = make_mp4(tmp_path / "a.mp4", seconds=1, seed=21)
    b = make_mp4(tmp_path / "b.mp4", seconds=1, seed=22)
    await upload(gw, a.read_bytes(), case_ref="CASE-A", recorded_at="2026-11-01T10:00:00+08:00")
    await upload(gw, b.read_bytes(), cam_index=1, case_ref="CASE-B", recorded_at="2026-11-10T10:00:00Z")

    async def q(**params: str) -> list[str]:
        r = await gw.c.get("/api/evidence", params=params, headers=gw.admin)
        assert r.status_code == 200, r.text
        return [e["case_ref"] for e in r.json()]

    assert await q(device_id="bc-2") == ["CASE-B"]
    assert await q(case_ref="CASE-A") == ["CASE-A"]
    assert await q(officer="o7") == ["CASE-B", "CASE-A"]
    assert await q(since="2026-11-05T00:00:00Z") == ["CASE-B"]
    assert await q(until="2026-11-01T02:00:00Z") == ["CASE-A"]
    assert await q(person_id="nobody") == []
    monitor = await gw.r.login("mon", "monitor")
    assert (await gw.c.get("/api/evidence", headers=monitor)).status_code == 403


async def test_range_playback_logs_viewing(gw: Gw, clip: Path) -> None:
    ev = await upload(gw, clip.read_bytes())
    url = f"/api/evidence/{ev['id']}/file"
    r = await gw.c.get(url, headers={**gw.admin, "Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == clip.read_bytes()[:100]
    r = await gw.c.get(url, headers={**gw.admin, "Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == clip.read_bytes()[100:200]
    custody = (await gw.c.get(f"/api/evidence/{ev['id']}", headers=gw.admin)).json()["custody"]
    assert [c["action"] for c in custody] == ["received", "verified", "viewed"] and custody[-1]["actor"] == "adm"


async def test_export_manifest_is_signed(gw: Gw, clip: Path) -> None:
    ev = await upload(gw, clip.read_bytes())
    r = await gw.c.post(f"/api/evidence/{ev['id']}/export", headers=gw.admin)
    assert r.status_code == 200, r.text
    manifest = r.json()
    key = (await gw.c.get("/api/evidence/signing-key", headers=gw.admin)).json()["public_key"]
    assert check(manifest, key)
    assert manifest["file"]["sha256"] == sha256_of(clip)
    tampered = {**manifest, "file": {**manifest["file"], "sha256": "0" * 64}}
    assert not check(tampered, key)
    custody = (await gw.c.get(f"/api/evidence/{ev['id']}", headers=gw.admin)).json()["custody"]
    assert custody[-1]["action"] == "exported"


async def test_verify_catches_a_modified_file(gw: Gw, clip: Path, tmp_path: Path) -> None:
    ev = await upload(gw, clip.read_bytes())
    cfg = gw.r.services.config
    count, problems = await verify_evidence(cfg)
    assert problems == [] and count >= 1
    path = gw.r.services.media_dir / ev["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    count, problems = await verify_evidence(cfg)
    assert any(f"evidence {ev['id']}" in p and "changed" in p for p in problems)
    conf = tmp_path / "gw.yaml"
    conf.write_text(yaml.safe_dump({"gateway": {"data_dir": str(cfg.gateway.data_dir)}}))
    code = await asyncio.to_thread(gateway_cli, ["evidence", "verify", "-c", str(conf)])
    assert code == 1


async def test_upload_and_catalogue_on_sqlite_and_postgresql(any_db_url, make_config, clip: Path) -> None:  # type: ignore[no-untyped-def]
    """Migration 0005 and the whole path on both databases."""
    cfg = make_config(uploads={"min_free_bytes": 0}, storage={"database_url": any_db_url})
    async with running(cfg) as r:
        admin = await r.login("adm", "admin")
        g = Gw(r, [await _cam(r, admin, "bc-1")], admin)
        ev = await upload(g, clip.read_bytes(), case_ref="PG-1", recorded_at="2026-11-20T08:30:00+08:00")
        assert ev["state"] == "stored" and ev["recorded_at"].startswith("2026-11-20T00:30:00")
        rows = (await g.c.get("/api/evidence", params={"case_ref": "PG-1", "since": "2026-11-20T00:00:00Z"}, headers=admin)).json()
        assert [e["id"] for e in rows] == [ev["id"]]
