"""Retention: expired segments go, the disk floor deletes the oldest first, held segments never go."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from gateway.db.models import Recording
from streams.retention import apply_retention
from tests.conftest import running


async def _add(services: Any, name: str, age_days: float, hold: bool = False, camera: str = "cam1") -> None:
    now = datetime.now(timezone.utc)
    rel = f"recordings/{camera}/{name}.mp4"
    path = services.media_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 1000)
    async with services.db.session() as s:
        s.add(Recording(camera_id=camera, kind="segment", path=rel, started_at=now - timedelta(days=age_days),
                        ended_at=now - timedelta(days=age_days) + timedelta(seconds=60), sha256="0" * 64, size=1000, hold=hold))
        await s.commit()


async def _left(services: Any) -> list[str]:
    async with services.db.session() as s:
        return sorted(r.path.rsplit("/", 1)[1][:-4] for r in (await s.scalars(select(Recording))).all())


async def test_retention_days_per_camera_and_hold(make_config: Any) -> None:
    async with running(make_config()) as r:
        svc = r.services
        await _add(svc, "old", 40)
        await _add(svc, "old-held", 40, hold=True)
        await _add(svc, "recent", 1)
        await _add(svc, "cam2-old", 40, camera="cam2")
        gone = await apply_retention(svc.db, svc.media_dir, {"*": 30, "cam2": 90}, min_free_bytes=0)
        assert [g.rsplit("/", 1)[1] for g in gone] == ["old.mp4"]
        assert await _left(svc) == ["cam2-old", "old-held", "recent"]
        assert not (svc.media_dir / "recordings/cam1/old.mp4").exists()


async def test_disk_floor_deletes_oldest_unheld_first(make_config: Any) -> None:
    async with running(make_config()) as r:
        svc = r.services
        await _add(svc, "a", 3, hold=True)
        await _add(svc, "b", 2)
        await _add(svc, "c", 1)
        # a floor no disk can meet: everything unheld goes, oldest first; held stays
        gone = await apply_retention(svc.db, svc.media_dir, {"*": 365}, min_free_bytes=1 << 62)
        assert [g.rsplit("/", 1)[1] for g in gone] == ["b.mp4", "c.mp4"]
        assert await _left(svc) == ["a"]


async def test_a_longer_retention_does_not_keep_other_cameras_expired_segments(make_config: Any) -> None:
    """Each camera has its own cutoff: cam2's 90 days hold its own 50-day-old segment, not
    cam1's older-than-30-days ones that started after it."""
    async with running(make_config()) as r:
        svc = r.services
        await _add(svc, "cam2-50d", 50, camera="cam2")
        await _add(svc, "cam1-40d", 40)
        await _add(svc, "cam1-35d", 35)
        await _add(svc, "cam1-recent", 1)
        await _add(svc, "cam3-100d", 100, camera="cam3")
        gone = await apply_retention(svc.db, svc.media_dir, {"*": 30, "cam2": 90, "cam3": 365}, min_free_bytes=0)
        assert sorted(g.rsplit("/", 1)[1] for g in gone) == ["cam1-35d.mp4", "cam1-40d.mp4"]
        assert await _left(svc) == ["cam1-recent", "cam2-50d", "cam3-100d"]
        assert not (svc.media_dir / "recordings/cam1/cam1-40d.mp4").exists()
        assert (svc.media_dir / "recordings/cam2/cam2-50d.mp4").exists()
