"""tus 1.0 protocol rules and bad input, through the real app (ASGI): each
case gets the status the tus specification gives (or a clear 4xx), is counted,
and leaves nothing partial in the evidence store."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path

import pytest

from gateway.clock import FakeClock
from gateway.db.models import Evidence, UploadRow
from tests.conftest import running
from tests.uploads.conftest import Cam

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}


def meta(**kv: str) -> str:
    kv = {"filename": "clip.mp4", "device_id": "bc-1", "recorded_at": "2026-11-20T08:30:00Z", **kv}
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in kv.items())


class Gw:
    def __init__(self, r, cams: list[Cam], admin: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
        self.r, self.c, self.cams, self.admin = r, r.client, cams, admin

    async def create(self, length: int, cam: Cam | None = None, **kv: str):  # type: ignore[no-untyped-def]
        cam = cam or self.cams[0]
        return await self.c.post("/api/uploads/", headers={**TUS, **cam.headers, "Upload-Length": str(length), "Upload-Metadata": meta(device_id=cam.id, **kv)})

    async def new(self, length: int, cam: Cam | None = None) -> str:
        r = await self.create(length, cam)
        assert r.status_code == 201, r.text
        return str(r.headers["location"])

    async def patch(self, url: str, offset: int, data: bytes, cam: Cam | None = None, **headers: str):  # type: ignore[no-untyped-def]
        return await self.c.patch(url, content=data, headers={**TUS, **OCTETS, **(cam or self.cams[0]).headers, "Upload-Offset": str(offset), **headers})

    async def head(self, url: str, cam: Cam | None = None):  # type: ignore[no-untyped-def]
        return await self.c.head(url, headers={**TUS, **(cam or self.cams[0]).headers})

    def rejected(self, reason: str) -> float:
        return self.r.services.metrics.registry.get_sample_value("gateway_uploads_rejected_total", {"reason": reason}) or 0.0

    def store_files(self) -> list[Path]:
        root = self.r.services.media_dir / "evidence"
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
async def gw(make_config):  # type: ignore[no-untyped-def]
    cfg = make_config(uploads={"max_size_bytes": 10 * 1024**2, "min_free_bytes": 0})
    async with running(cfg, clock=FakeClock()) as r:
        admin = await r.login("adm", "admin")
        cams = [await _cam(r, admin, "bc-1"), await _cam(r, admin, "bc-2")]
        yield Gw(r, cams, admin)


async def _cam(r, admin: dict[str, str], device_id: str) -> Cam:  # type: ignore[no-untyped-def]
    resp = await r.client.post("/api/devices", json={"id": device_id, "kind": "bodycam", "settings": {"officer": "o7"}}, headers=admin)
    assert resp.status_code == 201, resp.text
    return Cam(device_id, resp.json()["key"])


async def test_options_discovery(gw: Gw) -> None:
    r = await gw.c.options("/api/uploads/", headers=gw.cams[0].headers)
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0" and r.headers["tus-max-size"] == str(10 * 1024**2)
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "creation-with-upload", "termination", "checksum", "expiration"}
    assert r.headers["tus-checksum-algorithm"] == "sha1,sha256"


async def test_every_tus_route_needs_credentials(gw: Gw) -> None:
    url = await gw.new(10)
    for method, path in (("OPTIONS", "/api/uploads/"), ("POST", "/api/uploads/"), ("HEAD", url), ("PATCH", url), ("DELETE", url)):
        r = await gw.c.request(method, path, headers=TUS)
        assert r.status_code == 401, (method, r.status_code)
        assert r.headers["tus-resumable"] == "1.0.0"


async def test_unsupported_version_is_412(gw: Gw) -> None:
    r = await gw.c.post("/api/uploads/", headers={**gw.cams[0].headers, "Tus-Resumable": "0.2.2", "Upload-Length": "5", "Upload-Metadata": meta()})
    assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"


@pytest.mark.parametrize(("length", "status"), [("-5", 400), ("abc", 400), ("1e9", 400), ("99999999999999999999", 413), (str(10 * 1024**2 + 1), 413), ("0", 400)])
async def test_bad_lengths(gw: Gw, length: str, status: int) -> None:
    r = await gw.c.post("/api/uploads/", headers={**TUS, **gw.cams[0].headers, "Upload-Length": length, "Upload-Metadata": meta()})
    assert r.status_code == status, r.text


async def test_defer_length_not_claimed(gw: Gw) -> None:
    r = await gw.c.post("/api/uploads/", headers={**TUS, **gw.cams[0].headers, "Upload-Defer-Length": "1", "Upload-Metadata": meta()})
    assert r.status_code == 400 and "defer" in r.text


@pytest.mark.parametrize("bad", ["filename !!!notbase64", "filename", "device_id YmMtMQ==,device_id YmMtMQ==", "bad key Zm9v"])
async def test_metadata_not_base64_or_malformed(gw: Gw, bad: str) -> None:
    before = gw.rejected("bad_metadata")
    r = await gw.c.post("/api/uploads/", headers={**TUS, **gw.cams[0].headers, "Upload-Length": "10", "Upload-Metadata": bad})
    assert r.status_code == 400, r.text
    assert gw.rejected("bad_metadata") == before + 1


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.mp4", "..", "x\\y.mp4"])
async def test_filename_with_path_is_refused(gw: Gw, name: str) -> None:
    r = await gw.create(10, filename=name)
    assert r.status_code == 400 and "plain file name" in r.text


async def test_recorded_at_must_be_a_date(gw: Gw) -> None:
    r = await gw.create(10, recorded_at="yesterday")
    assert r.status_code == 400 and "recorded_at" in r.text


async def test_device_binding(gw: Gw) -> None:
    bc1, bc2 = gw.cams
    # creating for another device with my key
    r = await gw.c.post("/api/uploads/", headers={**TUS, **bc2.headers, "Upload-Length": "10", "Upload-Metadata": meta(device_id="bc-1")})
    assert r.status_code == 403
    url = await gw.new(10, bc1)
    assert (await gw.head(url, bc2)).status_code == 403
    assert (await gw.patch(url, 0, b"x" * 10, bc2)).status_code == 403
    assert (await gw.c.delete(url, headers={**TUS, **bc2.headers})).status_code == 403
    assert (await gw.head(url, bc1)).headers["upload-offset"] == "0"


async def test_users_upload_for_a_device_monitors_may_not(gw: Gw) -> None:
    monitor = await gw.r.login("mon", "monitor")
    officer = await gw.r.login("off", "officer")
    r = await gw.c.post("/api/uploads/", headers={**TUS, **monitor, "Upload-Length": "10", "Upload-Metadata": meta()})
    assert r.status_code == 403
    r = await gw.c.post("/api/uploads/", headers={**TUS, **officer, "Upload-Length": "10", "Upload-Metadata": meta(device_id="nope")})
    assert r.status_code == 400 and "not a registered body-cam" in r.text
    r = await gw.c.post("/api/uploads/", headers={**TUS, **officer, "Upload-Length": "10", "Upload-Metadata": meta()})
    assert r.status_code == 201


async def test_offset_mismatch_is_409_and_head_reports_offset(gw: Gw) -> None:
    url = await gw.new(10)
    r = await gw.patch(url, 0, b"01234")
    assert r.status_code == 204 and r.headers["upload-offset"] == "5" and "upload-expires" in r.headers
    assert (await gw.patch(url, 3, b"34567")).status_code == 409
    h = await gw.head(url)
    assert h.status_code == 200 and h.headers["upload-offset"] == "5" and h.headers["upload-length"] == "10"
    assert h.headers["cache-control"] == "no-store"
    assert (await gw.patch(url, 5, b"x", **{"Upload-Offset": "-1"})).status_code == 400


async def test_patch_needs_offset_content_type(gw: Gw) -> None:
    url = await gw.new(10)
    r = await gw.c.patch(url, content=b"x", headers={**TUS, **gw.cams[0].headers, "Upload-Offset": "0", "Content-Type": "application/octet-stream"})
    assert r.status_code == 415


async def test_body_past_length_is_refused_and_discarded(gw: Gw) -> None:
    url = await gw.new(10)
    assert (await gw.patch(url, 0, b"x" * 11)).status_code == 413
    assert (await gw.head(url)).headers["upload-offset"] == "0"


@pytest.mark.parametrize("algo", ["sha1", "sha256"])
async def test_checksum_mismatch_is_460_and_chunk_discarded(gw: Gw, algo: str) -> None:
    data = os.urandom(1000)
    url = await gw.new(2000)
    good = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    bad = base64.b64encode(hashlib.new(algo, b"other").digest()).decode()
    r = await gw.patch(url, 0, data, **{"Upload-Checksum": f"{algo} {bad}"})
    assert r.status_code == 460
    assert (await gw.head(url)).headers["upload-offset"] == "0"
    assert gw.rejected("checksum_mismatch") >= 1
    r = await gw.patch(url, 0, data, **{"Upload-Checksum": f"{algo} {good}"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "1000"


async def test_unknown_checksum_algorithm_is_400(gw: Gw) -> None:
    url = await gw.new(10)
    r = await gw.patch(url, 0, b"x" * 10, **{"Upload-Checksum": "md5 " + base64.b64encode(hashlib.md5(b"x" * 10).digest()).decode()})
    assert r.status_code == 400


async def test_termination_then_410(gw: Gw) -> None:
    url = await gw.new(10)
    await gw.patch(url, 0, b"abc")
    r = await gw.c.delete(url, headers={**TUS, **gw.cams[0].headers})
    assert r.status_code == 204
    assert (await gw.head(url)).status_code == 410
    assert (await gw.patch(url, 3, b"def")).status_code == 410
    assert not (gw.r.services.media_dir / "uploads" / "partial" / f"{url.rsplit('/', 1)[1]}.part").exists()


async def test_expired_upload_is_410_and_swept(gw: Gw) -> None:
    url = await gw.new(10)
    await gw.patch(url, 0, b"abc")
    clock: FakeClock = gw.r.services.clock
    clock.advance(gw.r.services.config.uploads.expire_after_s + 1)
    assert (await gw.patch(url, 3, b"def")).status_code == 410
    assert await gw.r.areas.uploads.sweep() == 1
    part = gw.r.services.media_dir / "uploads" / "partial" / f"{url.rsplit('/', 1)[1]}.part"
    assert not part.exists()
    assert (await gw.head(url)).status_code == 410


async def test_activity_renews_expiry(gw: Gw) -> None:
    url = await gw.new(10)
    clock: FakeClock = gw.r.services.clock
    clock.advance(gw.r.services.config.uploads.expire_after_s - 10)
    assert (await gw.patch(url, 0, b"abc")).status_code == 204
    clock.advance(20)
    assert await gw.r.areas.uploads.sweep() == 0
    assert (await gw.head(url)).headers["upload-offset"] == "3"


async def test_unknown_upload_is_404(gw: Gw) -> None:
    assert (await gw.head("/api/uploads/" + "0" * 32)).status_code == 404
    assert (await gw.head("/api/uploads/..%2F..%2Fetc")).status_code == 404


async def test_concurrent_patches_are_serialised(gw: Gw) -> None:
    url = await gw.new(2 * 1024 * 1024)
    data = os.urandom(1024 * 1024)
    a, b = await asyncio.gather(gw.patch(url, 0, data), gw.patch(url, 0, data))
    assert sorted([a.status_code, b.status_code]) == [204, 409]
    assert (await gw.head(url)).headers["upload-offset"] == str(1024 * 1024)


async def test_creation_with_upload_completes_in_one_request(gw: Gw, clip: Path) -> None:
    data = clip.read_bytes()
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = await gw.c.post("/api/uploads/", content=data, headers={**TUS, **OCTETS, **gw.cams[0].headers, "Upload-Length": str(len(data)),
                                                                 "Upload-Metadata": meta(case_ref="K-1"), "Upload-Checksum": f"sha256 {digest}"})
    assert r.status_code == 201 and r.headers["upload-offset"] == str(len(data))
    rows = (await gw.c.get("/api/evidence", params={"case_ref": "K-1"}, headers=gw.admin)).json()
    assert len(rows) == 1 and rows[0]["sha256"] == hashlib.sha256(data).hexdigest() and rows[0]["state"] == "stored"


async def test_resume_after_restart_rehashes_only_once(gw: Gw, clip: Path) -> None:
    """hashlib state is not persisted: a new process (simulated by dropping
    the in-memory state) re-hashes the received prefix, and the final hash is right."""
    data = clip.read_bytes()
    r = await gw.create(len(data))
    url = r.headers["location"]
    half = len(data) // 2
    assert (await gw.patch(url, 0, data[:half])).status_code == 204
    gw.r.areas.uploads._hashers.clear()
    assert (await gw.patch(url, half, data[half:])).status_code == 204
    async with gw.r.services.db.session() as s:
        row = await s.get(UploadRow, url.rsplit("/", 1)[1])
        ev = await s.get(Evidence, row.evidence_id)
    assert row.sha256 == ev.sha256 == hashlib.sha256(data).hexdigest()
    assert (gw.r.services.media_dir / ev.path).read_bytes() == data


async def test_patch_after_completion_is_refused(gw: Gw, clip: Path) -> None:
    data = clip.read_bytes()
    url = await gw.new(len(data))
    assert (await gw.patch(url, 0, data)).status_code == 204
    assert (await gw.patch(url, len(data), b"more")).status_code in (400, 409, 413)
    assert (await gw.patch(url, 0, data)).status_code == 409


async def test_completion_interrupted_by_a_crash_is_finished_at_start(gw: Gw, clip: Path) -> None:
    """All bytes on disk and committed, but the gateway died before cataloguing:
    the next start (resume_pending) completes it from the file on disk."""
    data = clip.read_bytes()
    url = await gw.new(len(data))
    uid = url.rsplit("/", 1)[1]
    sessions = gw.r.areas.uploads
    sessions.path_of(uid).write_bytes(data)
    async with gw.r.services.db.session() as s:
        row = await s.get(UploadRow, uid)
        row.offset = len(data)
        await s.commit()
    sessions._hashers.clear()
    await sessions.resume_pending()
    async with gw.r.services.db.session() as s:
        row = await s.get(UploadRow, uid)
        ev = await s.get(Evidence, row.evidence_id)
    assert row.state == "completed" and ev.sha256 == hashlib.sha256(data).hexdigest() and ev.state == "stored"
