"""Retention: each camera's expired segments, then the disk floor.

1. Expired: per camera, segments that started before now minus that camera's retention
   (its `retention_days`, else the default). Each camera has its own cutoff: a camera kept
   for 90 days never holds back another camera's 30-day segments.
2. The floor: while the media disk has less than `min_free_bytes` free, the oldest
   segments across all cameras, oldest first.

Segments under hold (part of a proceeding) and open ones (no hash yet) are never deleted.
A row is deleted (committed) before its file, so a crash in between leaves a file without
a row, which the next start adopts again (streams/recovery.py) rather than a row without
its file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import Recording

FLOOR_BATCH = 50  # oldest rows read at a time while below the floor


def _unlink(media: Path, rels: list[str]) -> None:
    for rel in rels:
        try:
            os.unlink(media / rel)
        except FileNotFoundError:
            pass


async def apply_retention(db: Database, media: Path, retention_days: dict[str, int], min_free_bytes: int, now: datetime | None = None,
                          lock: asyncio.Lock | None = None) -> list[str]:
    """Delete expired segments per camera (`retention_days[camera]`, else `["*"]`, else 30),
    then the oldest while free space is below the floor. Returns the deleted paths."""
    now = now or datetime.now(timezone.utc)
    lock = lock or asyncio.Lock()
    deleted: list[str] = []
    default = retention_days.get("*", 30)
    unheld = (Recording.kind == "segment", Recording.hold.is_(False), Recording.sha256.is_not(None))
    async with lock:
        async with db.session() as s:
            cameras = (await s.scalars(select(Recording.camera_id).where(*unheld).distinct())).all()
            gone: list[str] = []
            for cam in cameras:
                cutoff = now - timedelta(days=retention_days.get(cam, default))
                rows = (await s.scalars(select(Recording).where(*unheld, Recording.camera_id == cam, Recording.started_at < cutoff)
                                        .order_by(Recording.started_at))).all()
                for row in rows:
                    gone.append(row.path or "")
                    await s.delete(row)
            await s.commit()
        await asyncio.to_thread(_unlink, media, gone)
        deleted += gone
        while shutil.disk_usage(media).free < min_free_bytes:
            async with db.session() as s:
                rows = (await s.scalars(select(Recording).where(*unheld).order_by(Recording.started_at).limit(FLOOR_BATCH))).all()
                if not rows:
                    break
                # one at a time, oldest first: only as many as the floor needs
                for row in rows:
                    await s.delete(row)
                    await s.commit()
                    _unlink(media, [row.path or ""])
                    deleted.append(row.path or "")
                    if shutil.disk_usage(media).free >= min_free_bytes:
                        break
    return deleted
