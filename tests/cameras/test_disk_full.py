"""Disk full with the database on the same disk: health fails, a tus PATCH gets 507, one
disk_full alert (with the incident's start) raised when it can be and resolved when space
returns; no segment file without a row, before or after a restart."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import select

from gateway.db.models import Alert, Recording
from gateway.evidence import sha256_file
from simulators.media import make_clip
from simulators.rtsp.server import serve_cameras
from streams.recorder import MOVFLAGS
from tests.cameras.conftest import camera_config, fill, playable_frames, wait_for
from tests.conftest import running


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", seconds=3, fps=15, profile="high")


async def segments(r: Any) -> list[Recording]:
    async with r.services.db.session() as s:
        return list((await s.scalars(select(Recording).where(Recording.kind == "segment").order_by(Recording.started_at))).all())


async def disk_alerts(r: Any) -> list[Alert]:
    async with r.services.db.session() as s:
        return list((await s.scalars(select(Alert).where(Alert.kind == "disk_full"))).all())


def files_on_disk(media: Path) -> set[str]:
    return {p.relative_to(media).as_posix() for p in (media / "recordings").rglob("*.mp4")}


async def health(r: Any) -> tuple[int, dict[str, Any]]:
    resp = await r.client.get("/healthz")
    return resp.status_code, resp.json()


def tus(key: str, **extra: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", "X-Device-Key": key, **extra}


def meta(**kv: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in kv.items())


async def test_disk_full_with_the_database_on_the_same_disk(make_config: Any, clip: Path, tmpfs: Any) -> None:
    disk = tmpfs("40m")
    server = await serve_cameras({"cam": clip}, port=0)
    try:
        cfg = camera_config(make_config, {"cam1": server.url("cam")}, segment_s=2)
        cfg.gateway.data_dir = disk  # the SQLite database and the media on one small disk
        cfg.uploads.min_free_bytes = 0
        cfg.storage.disk_full_below_bytes, cfg.storage.disk_check_s, cfg.storage.disk_clear_after_s = 1 << 20, 0.5, 1.0
        media = cfg.media_dir
        async with running(cfg) as r:
            h = await r.login()
            key = (await r.client.post("/api/devices", headers=h, json={"id": "bc1", "kind": "bodycam"})).json()["key"]
            up = await r.client.post("/api/uploads/", headers=tus(key, **{"Upload-Length": str(1 << 20), "Upload-Metadata": meta(
                filename="a.mp4", device_id="bc1", recorded_at="2026-12-01T08:00:00Z")}))
            assert up.status_code == 201, up.text
            await wait_for(lambda: _closed(r), 30, "a recorded segment")
            assert (await health(r))[0] == 200

            began = datetime.now(UTC)
            filler = fill(disk)
            filled = datetime.now(UTC)
            # the operator learns it: health fails, naming the disk...
            status, body = await wait_for(lambda: _unhealthy(r), 15, "/healthz failing")
            assert status == 503 and body["checks"]["disk"].startswith("full: ") and "data_dir" in body["checks"]["disk"]
            assert body["checks"]["database"].startswith("error: cannot write")
            # ...an upload chunk that cannot be stored is refused with 507, not a 500
            patch = await r.client.patch(up.headers["Location"], content=b"x" * (1 << 20),
                                         headers=tus(key, **{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
            assert patch.status_code == 507, patch.text
            assert "disk is full" in patch.text
            head = await r.client.head(up.headers["Location"], headers=tus(key))
            assert head.headers["Upload-Offset"] == "0"

            # and recording stops at its next fragment (within a GOP and a writer round)
            await wait_for(lambda: _recorder_failed(r, h), 15, "the recorder hitting the full disk")
            filler.unlink()
            freed = datetime.now(UTC)
            # one alert for the incident, dated when it began, resolved once space stayed back
            [alert] = await wait_for(lambda: _resolved(r), 30, "the disk_full alert written and resolved")
            assert alert.level == "red" and alert.count == 1
            assert began - timedelta(seconds=1) <= alert.opened_at <= filled + timedelta(seconds=3), (began, alert.opened_at, filled)
            assert alert.resolved_at is not None and alert.resolved_at >= freed
            await wait_for(lambda: _healthy(r), 15, "/healthz ok again")
            # recording resumed, and the outage is a gap from the last frame kept to the first after
            await wait_for(lambda: _closed(r, since=freed), 30, "a segment after space returned")
            async with r.services.db.session() as s:
                gaps = (await s.scalars(select(Recording).where(Recording.kind == "gap"))).all()
            assert any(g.started_at <= filled and g.ended_at >= freed for g in gaps), [(g.started_at, g.ended_at) for g in gaps]
        assert len(await _all_alerts(cfg)) == 1
        assert files_on_disk(media) == {s.path for s in await _rows(cfg)}
        # a restart finds nothing to clean up: every segment file has its row and every row its file
        async with running(cfg) as r:
            assert r.areas.cameras.cleanup is not None
            assert await r.areas.cameras.cleanup == (0, 0)
        assert files_on_disk(media) == {s.path for s in await _rows(cfg)}
        for rel in files_on_disk(media):
            assert playable_frames(media / rel, tolerate_cut=True) > 0, rel
    finally:
        await server.close()


async def _closed(r: Any, since: datetime | None = None) -> list[Recording]:
    return [s for s in await segments(r) if s.sha256 and (since is None or s.started_at >= since)]


async def _recorder_failed(r: Any, h: dict[str, str]) -> bool:
    metrics = (await r.client.get("/metrics", headers=h)).text
    return 'gateway_recording_errors_total{camera="cam1",reason="disk_full"}' in metrics


async def _unhealthy(r: Any) -> tuple[int, dict[str, Any]] | None:
    status, body = await health(r)
    return (status, body) if status == 503 else None


async def _healthy(r: Any) -> bool:
    return (await health(r))[0] == 200


async def _resolved(r: Any) -> list[Alert] | None:
    alerts = await disk_alerts(r)
    return alerts if alerts and all(a.state == "resolved" for a in alerts) else None


async def _all_alerts(cfg: Any) -> list[Alert]:
    from gateway.db.engine import Database

    db = Database(cfg.database_url)
    try:
        async with db.session() as s:
            return list((await s.scalars(select(Alert).where(Alert.kind == "disk_full"))).all())
    finally:
        await db.close()


async def _rows(cfg: Any) -> list[Recording]:
    from gateway.db.engine import Database

    db = Database(cfg.database_url)
    try:
        async with db.session() as s:
            return list((await s.scalars(select(Recording).where(Recording.kind == "segment"))).all())
    finally:
        await db.close()


def _header_only(path: Path, clip: Path) -> None:
    """What a recorder left when the disk filled right after a segment's header."""
    with av.open(str(clip)) as src:
        buf = io.BytesIO()
        out = av.open(buf, "w", format="mp4", options={"movflags": MOVFLAGS})
        out.add_stream_from_template(src.streams.video[0])
        out.start_encoding()
        out.close()
    path.write_bytes(buf.getvalue())


async def test_start_removes_segment_files_without_a_row_and_adopts_playable_ones(make_config: Any, clip: Path) -> None:
    cfg = make_config()
    day = cfg.media_dir / "recordings" / "cam1" / "2026" / "12" / "01"
    day.mkdir(parents=True)
    empty = day / "cam1-20261201T080000_000Z.mp4"
    empty.write_bytes(b"")
    header = day / "cam1-20261201T080100_000Z.mp4"
    _header_only(header, clip)
    playable = day / "cam1-20261201T080200_250Z.mp4"
    shutil.copy(clip, playable)
    known = day / "cam1-20261201T080300_000Z.mp4"
    shutil.copy(clip, known)
    from gateway.db.engine import Database

    db = Database(cfg.database_url)
    await db.upgrade()
    async with db.session() as s:
        s.add(Recording(camera_id="cam1", kind="segment", path=known.relative_to(cfg.media_dir).as_posix(),
                        started_at=datetime(2026, 12, 1, 8, 3, tzinfo=UTC), sha256="0" * 64, size=known.stat().st_size))
        await s.commit()
    await db.close()
    async with running(cfg) as r:
        assert await r.areas.cameras.cleanup == (2, 1)  # the sweep runs in the background from the start
        rows = {x.path: x for x in await segments(r)}
    assert not empty.exists() and not header.exists()  # no picture: deleted
    assert files_on_disk(cfg.media_dir) == set(rows) == {playable.relative_to(cfg.media_dir).as_posix(), known.relative_to(cfg.media_dir).as_posix()}
    adopted = rows[playable.relative_to(cfg.media_dir).as_posix()]
    assert adopted.sha256 == sha256_file(playable) == hashlib.sha256(playable.read_bytes()).hexdigest()
    assert adopted.size == playable.stat().st_size and adopted.codec == "h264"
    assert adopted.started_at == datetime(2026, 12, 1, 8, 2, 0, 250_000, tzinfo=UTC)  # from its name
