"""Continuous recording by stream copy into fragmented MP4 segments.

One thread per camera reads its Fanout consumer and muxes packets as they are (no decode,
no re-encode, audio copied when present). A segment starts on a keyframe and rotates on the
first keyframe after `segment_s`; each keyframe starts a new MP4 fragment
(frag_keyframe+empty_moov), so a crash loses at most the open fragment and the file stays
readable up to there. A closed segment gets its SHA-256 in the `recordings` row; an open one
has a row without hash, finished at the next start (`recover`). Interruptions are stored as
`gap` rows and published as `RecordingGap`. Disk full stops recording cleanly with a red
`disk_full` alert, retried every few seconds and cleared when space returns.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import av
from sqlalchemy import select

from gateway.db.models import Recording
from gateway.events import RecordingGap
from gateway.evidence import sha256_file
from streams.fanout import Consumer, Fanout, MediaPacket, SourceDown, StreamInfo

log = logging.getLogger(__name__)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def naive(dt: datetime) -> datetime:
    """Aware UTC, as the database layer requires."""
    return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def segment_relpath(camera_id: str, ts: float) -> str:
    t = utc(ts)
    return f"recordings/{camera_id}/{t:%Y/%m/%d}/{camera_id}-{t:%Y%m%dT%H%M%S}_{t.microsecond // 1000:03d}Z.mp4"


def is_disk_full(e: BaseException) -> bool:
    return getattr(e, "errno", None) == errno.ENOSPC or "No space left" in str(e)


@dataclass
class _Segment:
    rel: str
    path: Path
    row_id: int
    out: Any
    vstream: Any
    astream: Any
    start_ts: float
    base_s: float  # media time (s) of the first packet: subtracted so each file starts at 0
    last_at: float
    video_tb: Any


class CameraRecorder:
    """Records one camera. The thread owns the muxer; DB writes go to the event loop."""

    def __init__(self, camera_id: str, fanout: Fanout, services: Any, loop: asyncio.AbstractEventLoop,
                 segment_s: float, queue_packets: int = 3000, retry_s: float = 3.0) -> None:
        self.camera_id = camera_id
        self.fanout = fanout
        self.services = services
        self.loop = loop
        self.segment_s = segment_s
        self.retry_s = retry_s
        self.media_dir: Path = services.media_dir
        self.consumer = Consumer(f"recorder:{camera_id}", queue_packets)
        self._seg: _Segment | None = None
        self._info: StreamInfo | None = None
        self._gap_start: float | None = None
        self._gap_reason = "camera down"
        self._seen_dropped = 0
        self._failed_until = 0.0
        self._disk_alert = False
        self._stop = threading.Event()
        self._rotate_waiters: list[threading.Event] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"recorder:{camera_id}", daemon=True)
        m = services.metrics
        self._m_segments = m.counter("gateway_recording_segments_total", "Segments closed", ("camera",))
        self._m_bytes = m.counter("gateway_recording_bytes_total", "Bytes recorded", ("camera",))
        self._m_gaps = m.counter("gateway_recording_gaps_total", "Recording interruptions", ("camera",))
        self._m_dropped = m.counter("gateway_recording_dropped_packets_total", "Packets the recorder could not keep up with", ("camera",))
        self._m_errors = m.counter("gateway_recording_errors_total", "Write errors", ("camera", "reason"))

    # --- control, from the event loop -------------------------------------------------
    def start(self) -> None:
        self.fanout.add(self.consumer)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        self.consumer.wake()
        await asyncio.to_thread(self._thread.join, 15)
        self.fanout.remove(self.consumer)

    async def rotate_now(self, timeout: float = 15.0) -> bool:
        """Close the open segment at the next keyframe (so a proceeding can seal it); True if done."""
        ev = threading.Event()
        with self._lock:
            if self._seg is None:
                return True
            self._rotate_waiters.append(ev)
        return await asyncio.to_thread(ev.wait, timeout)

    @property
    def open_segment(self) -> str | None:
        seg = self._seg
        return seg.rel if seg else None

    # --- the thread -------------------------------------------------------------------
    def _call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _run(self) -> None:
        try:
            while True:
                item = self.consumer.get(0.5)
                if item is None:
                    if self._stop.is_set():
                        break
                    continue
                try:
                    self._handle(item)
                except Exception as e:  # never let one bad packet end recording
                    log.exception("recorder %s", self.camera_id)
                    self._fail(e)
        finally:
            self._close("stopped")

    def _handle(self, item: Any) -> None:
        if isinstance(item, StreamInfo):
            if self._seg is not None:
                self._close("new stream")
            self._info = item
            return
        if isinstance(item, SourceDown):
            if self._seg is not None:
                self._close("camera down")
                self._gap_start = item.at
                self._gap_reason = "camera down"
            return
        assert isinstance(item, MediaPacket)
        if self._info is None or item.generation != self._info.generation:
            return
        if self.consumer.dropped != self._seen_dropped:
            self._m_dropped.labels(self.camera_id).inc(self.consumer.dropped - self._seen_dropped)
            self._seen_dropped = self.consumer.dropped
            if self._seg is not None:
                self._close("overflow")
                self._gap_start, self._gap_reason = item.at, "recorder overflow"
        key = item.kind == "video" and item.keyframe
        if self._seg is None:
            if not key or item.at < self._failed_until:
                return
            if not self._open(item):
                return
        elif key and (item.at - self._seg.start_ts >= self.segment_s or self._rotate_waiters):
            self._close("rotate")
            if not self._open(item):
                return
        self._write(item)

    def _open(self, first: MediaPacket) -> bool:
        info = self._info
        assert info is not None
        rel = segment_relpath(self.camera_id, first.at)
        path = self.media_dir / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = av.open(str(path), "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"})
            vs = out.add_stream_from_template(info.video_template)
            as_ = out.add_stream_from_template(info.audio_template) if info.audio_template is not None else None
            out.start_encoding()
        except Exception as e:
            self._fail(e, path)
            return False
        row = Recording(camera_id=self.camera_id, kind="segment", path=rel, started_at=naive(utc(first.at)),
                        codec=info.codec, has_audio=as_ is not None)
        row_id = self._call(self._insert(row))
        gap_start = self._gap_start
        if gap_start is not None:
            self._gap_start = None
            self._call(self._record_gap(gap_start, first.at, self._gap_reason))
        self._seg = _Segment(rel, path, row_id, out, vs, as_, first.at, float(first.dts * first.time_base), first.at, first.time_base)
        if self._disk_alert:
            self._disk_alert = False
            self._call(self.services.alerts.clear("disk_full", device_id=self.camera_id, note="recording resumed"))
        return True

    def _write(self, p: MediaPacket) -> None:
        seg = self._seg
        assert seg is not None
        stream = seg.vstream if p.kind == "video" else seg.astream
        if stream is None:
            return
        off = round(seg.base_s / p.time_base)
        dts = p.dts - off
        if dts < 0:
            return  # audio from before the segment's first keyframe
        pkt = av.Packet(p.data)
        pkt.dts, pkt.pts, pkt.time_base = dts, p.pts - off, p.time_base
        pkt.is_keyframe = p.keyframe
        pkt.stream = stream
        try:
            seg.out.mux(pkt)
        except Exception as e:
            self._fail(e)
            return
        seg.last_at = p.at
        self._m_bytes.labels(self.camera_id).inc(len(p.data))

    def _close(self, why: str) -> None:
        seg = self._seg
        if seg is None:
            return
        self._seg = None
        try:
            seg.out.close()
        except Exception as e:
            log.warning("recorder %s: closing %s: %s", self.camera_id, seg.rel, e)
        try:
            size = seg.path.stat().st_size
            digest = sha256_file(seg.path)
        except OSError:
            size, digest = None, None
        self._call(self._finish(seg.row_id, seg.last_at, seg.last_at - seg.start_ts, size, digest))
        self._m_segments.labels(self.camera_id).inc()
        with self._lock:
            waiters, self._rotate_waiters = self._rotate_waiters, []
        for w in waiters:
            w.set()
        log.debug("recorder %s: closed %s (%s)", self.camera_id, seg.rel, why)

    def _fail(self, e: BaseException, path: Path | None = None) -> None:
        full = is_disk_full(e)
        self._m_errors.labels(self.camera_id, "disk_full" if full else "write").inc()
        now = time.time()
        if self._seg is not None:
            self._close("error")
        elif path is not None:
            try:
                if path.exists() and path.stat().st_size == 0:
                    path.unlink()
            except OSError:
                pass
        if self._gap_start is None:
            self._gap_start, self._gap_reason = now, "disk full" if full else "write error"
        self._failed_until = now + self.retry_s
        if not self._disk_alert:
            self._disk_alert = True
            kind = "disk_full" if full else "recording_failed"
            log.error("recorder %s: %s: %s", self.camera_id, kind, e)
            try:
                self._call(self.services.alerts.raise_alert(kind, device_id=self.camera_id, message=f"recording of {self.camera_id} stopped: {e}"))
            except Exception:
                log.exception("raising %s", kind)

    # --- coroutines run on the loop -------------------------------------------------
    async def _insert(self, row: Recording) -> int:
        async with self.services.db.session() as s:
            s.add(row)
            await s.commit()
            return int(row.id)

    async def _finish(self, row_id: int, last_at: float, duration: float, size: int | None, digest: str | None) -> None:
        async with self.services.db.session() as s:
            row = await s.get(Recording, row_id)
            if row is None:
                return
            row.ended_at, row.duration_s, row.size, row.sha256 = naive(utc(last_at)), round(duration, 3), size, digest
            await s.commit()

    async def _record_gap(self, start: float, end: float, reason: str) -> None:
        async with self.services.db.session() as s:
            s.add(Recording(camera_id=self.camera_id, kind="gap", started_at=naive(utc(start)), ended_at=naive(utc(end)),
                            duration_s=round(end - start, 3)))
            await s.commit()
        self._m_gaps.labels(self.camera_id).inc()
        await self.services.bus.publish(RecordingGap(camera_id=self.camera_id, started_at=utc(start), ended_at=utc(end),
                                                     duration_s=round(end - start, 3), reason=reason))


async def recover(services: Any) -> int:
    """Finish segments left open by a crash: the file is readable up to its last fragment."""
    n = 0
    async with services.db.session() as s:
        rows = (await s.scalars(select(Recording).where(Recording.kind == "segment", Recording.sha256.is_(None)))).all()
        for row in rows:
            try:
                path = services.media_dir / (row.path or "")
                st = path.stat()
                row.size = st.st_size
                row.sha256 = await asyncio.to_thread(sha256_file, path)
                row.ended_at = row.ended_at or naive(utc(st.st_mtime))
                row.duration_s = (row.ended_at - row.started_at).total_seconds()
            except OSError:
                await s.delete(row)
            n += 1
        await s.commit()
    return n


async def apply_retention(services: Any, retention_days: dict[str, int], min_free_bytes: int, now: datetime | None = None) -> list[str]:
    """Delete expired segments, then the oldest ones while free space is below the floor.
    Segments under hold (part of a proceeding) are never deleted. Returns deleted paths."""
    now = naive(now or datetime.now(timezone.utc))
    deleted: list[str] = []
    media: Path = services.media_dir
    async with services.db.session() as s:
        q = select(Recording).where(Recording.kind == "segment", Recording.hold.is_(False), Recording.sha256.is_not(None)).order_by(Recording.started_at)
        rows = (await s.scalars(q)).all()
        for row in rows:
            days = retention_days.get(row.camera_id, retention_days.get("*", 30))
            expired = row.started_at < now - timedelta(days=days)
            low = shutil.disk_usage(media).free < min_free_bytes
            if not (expired or low):
                break  # ordered by age: nothing later is due either
            try:
                os.unlink(media / (row.path or ""))
            except FileNotFoundError:
                pass
            deleted.append(row.path or "")
            await s.delete(row)
        await s.commit()
    return deleted
