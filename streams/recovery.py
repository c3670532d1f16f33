"""What a start finds of the last run's recordings: rows left open by a crash, segment
files without a row, and where each camera's recording stopped.

- `recover`: a segment row without hash (the gateway died while it was open) is finished
  from its file, which plays up to its last whole fragment; a row whose file is gone is
  deleted.
- `last_recorded`: when a camera's recording last ended, so that the hole until its first
  new segment becomes a `gap` row (the gateway was down, the camera disabled).
- `remove_orphans`: a segment file without a row. Rows are written before files now, so
  such a file comes from an older version (files created before a failed insert on a
  full disk) or from a hand-made mess. A file with no picture in it (zero bytes, or the
  header only) is deleted; one holding at least one video frame is kept as evidence and
  adopted: a row is written for it, hashed as it is, with its time taken from its name.
  Run in the background at start (one directory of a camera's day at a time), under the
  area's file lock, which retention holds while it deletes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
from sqlalchemy import func, select

from gateway.clock import utc_at
from gateway.db.engine import Database
from gateway.db.models import Recording
from gateway.evidence import sha256_file

log = logging.getLogger(__name__)

_NAME = re.compile(r"-(\d{8}T\d{6})_(\d{3})Z\.mp4$")


async def recover(db: Database, media_dir: Path, camera_id: str | None = None) -> int:
    """Finish segments left open by a crash: the file is readable up to its last fragment.
    `camera_id`: only that camera's (a node taking a camera over finishes what its dead
    owner left open; the other cameras' open segments are being written by other nodes)."""
    n = 0
    async with db.session() as s:
        q = select(Recording).where(Recording.kind == "segment", Recording.sha256.is_(None))
        if camera_id is not None:
            q = q.where(Recording.camera_id == camera_id)
        rows = (await s.scalars(q)).all()
        for row in rows:
            try:
                path = media_dir / (row.path or "")
                st = path.stat()
                row.size = st.st_size
                row.sha256 = await asyncio.to_thread(sha256_file, path)
                row.ended_at = row.ended_at or utc_at(st.st_mtime)
                row.duration_s = (row.ended_at - row.started_at).total_seconds()
            except OSError:
                await s.delete(row)
            n += 1
        await s.commit()
    return n


async def last_recorded(db: Database, camera_id: str) -> float | None:
    """When the camera's last segment (or gap) ended, as epoch seconds; None if it never recorded."""
    async with db.session() as s:
        end = await s.scalar(select(func.max(Recording.ended_at)).where(Recording.camera_id == camera_id))
    return end.timestamp() if end is not None else None


def _picture(path: Path) -> tuple[str, bool] | None:
    """(codec, has audio) when the file holds at least one video packet; None when it
    holds no picture (empty, the header only, or not a recording at all)."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            v = c.streams.video[0]
            for p in c.demux(v):
                if p.size:
                    return str(v.codec_context.name), bool(c.streams.audio)
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    return None


def _started(name: str, mtime: float) -> datetime:
    m = _NAME.search(name)
    if m is None:
        return utc_at(mtime)
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC) + timedelta(milliseconds=int(m.group(2)))


def _day_dirs(media_dir: Path) -> list[tuple[str, Path, datetime]]:
    """(camera, folder, UTC day) of every recordings/{camera}/{YYYY}/{MM}/{DD} folder."""
    out: list[tuple[str, Path, datetime]] = []
    root = media_dir / "recordings"
    if not root.is_dir():
        return out
    for cam in sorted(os.scandir(root), key=lambda e: e.name):
        if not cam.is_dir():
            continue
        for folder in sorted(Path(cam.path).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]")):
            try:
                day = datetime.strptime("/".join(folder.parts[-3:]), "%Y/%m/%d").replace(tzinfo=UTC)
            except ValueError:
                continue
            out.append((cam.name, folder, day))
    return out


def _segment_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".mp4" and p.is_file())


async def remove_orphans(db: Database, media_dir: Path, lock: asyncio.Lock) -> tuple[int, int]:
    """Delete segment files without a row and without a picture, adopt those with one.
    Returns (deleted, adopted)."""
    deleted = adopted = 0
    for camera_id, folder, day in await asyncio.to_thread(_day_dirs, media_dir):
        async with lock:
            # the listing first, then the rows: a file is created only after its row, so
            # one listed here without a row seen after is not a segment being started
            files = await asyncio.to_thread(_segment_files, folder)
            if not files:
                continue
            async with db.session() as s:
                known = set((await s.scalars(select(Recording.path).where(
                    Recording.camera_id == camera_id, Recording.kind == "segment",
                    Recording.started_at >= day, Recording.started_at < day + timedelta(days=1)))).all())
            for path in files:
                rel = path.relative_to(media_dir).as_posix()
                if rel in known:
                    continue
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue  # a segment that kept nothing, removed by its writer meanwhile
                picture = await asyncio.to_thread(_picture, path) if st.st_size else None
                if picture is None:
                    path.unlink(missing_ok=True)
                    deleted += 1
                    log.info("removed %s: a segment file without a row and without a picture", rel)
                    continue
                digest = await asyncio.to_thread(sha256_file, path)
                started, ended = _started(path.name, st.st_mtime), utc_at(st.st_mtime)
                async with db.session() as s:
                    s.add(Recording(camera_id=camera_id, kind="segment", path=rel, started_at=started, ended_at=max(ended, started),
                                    duration_s=max(0.0, (ended - started).total_seconds()), size=st.st_size, sha256=digest,
                                    codec=picture[0], has_audio=picture[1], hold=False))
                    await s.commit()
                adopted += 1
                log.warning("adopted %s: a playable segment file without a row (kept as a recovered segment, hashed as found)", rel)
    return deleted, adopted
