"""A tus PATCH that meets a full disk: 507 (not a 500 with a traceback), nothing of the
chunk kept, the offset unchanged, the disk monitor told (one disk_full alert); the same
PATCH succeeds once space returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.db.models import Alert
from tests.cameras.conftest import fill, tmpfs  # noqa: F401 - the fixture, used by name
from tests.conftest import running
from tests.uploads.conftest import Cam
from tests.uploads.test_protocol import OCTETS, TUS, meta
from tests.waiting import wait_for


async def test_a_patch_on_a_full_disk_gets_507_and_resumes_once_space_returns(make_config: Any, tmpfs: Any) -> None:  # noqa: F811
    media: Path = tmpfs("8m")  # the media alone: the database elsewhere, so the alert is written at once
    cfg = make_config(uploads={"max_size_bytes": 4 << 20, "min_free_bytes": 0},
                      storage={"media_dir": str(media), "disk_full_below_bytes": 256 << 10, "disk_check_s": 0.5, "disk_clear_after_s": 1})
    async with running(cfg) as r:
        admin = await r.login()
        cam = await _bodycam(r, admin)
        created = await r.client.post("/api/uploads/", headers={**TUS, **cam.headers, "Upload-Length": str(2 << 20), "Upload-Metadata": meta(device_id=cam.id)})
        assert created.status_code == 201, created.text
        url = created.headers["location"]
        chunk = b"\x5a" * (1 << 20)
        filler = fill(media)
        full = await r.client.patch(url, content=chunk, headers={**TUS, **OCTETS, **cam.headers, "Upload-Offset": "0"})
        assert full.status_code == 507, full.text
        assert "disk is full" in full.text and full.headers["Tus-Resumable"] == "1.0.0"
        head = await r.client.head(url, headers={**TUS, **cam.headers})
        assert head.headers["Upload-Offset"] == "0"
        assert (r.services.media_dir / "uploads" / "partial" / f"{url.rsplit('/', 1)[1]}.part").stat().st_size == 0  # nothing kept
        [alert] = await wait_for(lambda: _alerts(r), 10, "a disk_full alert")
        assert alert.state == "open" and str(media) in alert.dedup_key
        filler.unlink()
        again = await r.client.patch(url, content=chunk, headers={**TUS, **OCTETS, **cam.headers, "Upload-Offset": "0"})
        assert again.status_code == 204 and again.headers["Upload-Offset"] == str(1 << 20)
        await wait_for(lambda: _resolved(r), 15, "the disk_full alert resolved")


async def _bodycam(r: Any, admin: dict[str, str]) -> Cam:
    resp = await r.client.post("/api/devices", json={"id": "bc-1", "kind": "bodycam", "name": "bc-1"}, headers=admin)
    assert resp.status_code == 201, resp.text
    return Cam("bc-1", resp.json()["key"])


async def _alerts(r: Any) -> list[Alert]:
    async with r.services.db.session() as s:
        return list((await s.scalars(select(Alert).where(Alert.kind == "disk_full"))).all())


async def _resolved(r: Any) -> bool:
    alerts = await _alerts(r)
    return len(alerts) == 1 and alerts[0].state == "resolved"
