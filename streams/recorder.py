"""Continuous recording by stream copy into fragmented MP4 segments.

Packets are muxed as they are (no decode, no re-encode, audio copied when present) on the
camera's demux thread, through a Fanout tap, a GOP at a time when the next keyframe comes
(`_mux_pending`): handing each packet to a recorder thread of its own cost more CPU than
demuxing and muxing together (a thread wake-up per packet).
The muxer writes into memory; each completed fragment (one per keyframe,
frag_keyframe+empty_moov) is queued for the `DiskWriter`, one thread for all cameras,
which writes it to disk, hashes it on the way and keeps the `recordings` rows. A
stalled disk therefore fills each camera's bounded queue (then fragments are dropped
and a gap recorded) instead of stalling the demuxer, and with it live view and the
sampler.

A segment starts on a keyframe and rotates on the first keyframe after `segment_s`. A
crash loses at most the open fragment; the file stays readable up to there. A closed
segment gets its SHA-256 in its row; an open one has a row without hash, finished at the
next start (`recover`). Interruptions are stored as `gap` rows and published as
`RecordingGap`. Disk full stops recording cleanly with a red `disk_full` alert, retried
every few seconds and cleared when space returns.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

import av
from sqlalchemy import insert, select, update

from gateway.db.models import Recording
from gateway.events import RecordingGap
from gateway.evidence import sha256_file
from streams.fanout import Fanout, Item, MediaPacket, SourceDown, StreamInfo

log = logging.getLogger(__name__)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
MAX_PENDING = 256  # packets held for one mux call at most (a long GOP is muxed in parts)


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


class _Chunks:
    """The muxer's output file: collects what FFmpeg writes (a fragment at a time). No
    `seek`, so FFmpeg treats it as a stream, which fragmented MP4 is made for."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> list[bytes]:
        parts, self.parts = self.parts, []
        return parts


@dataclass
class _Muxing:
    """The open segment, as the demux thread sees it."""

    rel: str
    out: Any
    sink: _Chunks
    vstream: Any
    astream: Any
    start_ts: float
    base_s: float  # media time (s) of the first packet: subtracted so each file starts at 0
    last_at: float
    video_offset: int  # base_s in the video time base (the first packet's dts)
    audio_offset: int | None = None  # base_s in the audio time base, once audio came
    pending: list[Any] = field(default_factory=list)  # packets of the open GOP, not yet muxed


@dataclass
class _Open:
    rel: str
    started: float
    codec: str
    has_audio: bool
    gap: tuple[float, float, str] | None


@dataclass
class _Data:
    rel: str
    parts: list[bytes]
    size: int
    header: bool = False  # the file header only: a segment cut right after it holds no picture


@dataclass
class _Close:
    rel: str
    last_at: float
    duration: float
    waiters: list[threading.Event] = field(default_factory=list)


@dataclass
class _Written:
    """The segment file, as the writer thread sees it."""

    rel: str
    path: Path
    f: BinaryIO
    row_id: int
    sha: Any
    size: int = 0
    good: int = 0  # bytes up to the end of the last fragment completely written
    broken: bool = False


class DiskWriter:
    """The thread that writes every camera's segments.

    Fragments are not handed over one at a time: waking a thread per fragment (a context
    switch each way, and the GIL handed over) cost more, with dozens of cameras, than
    writing and hashing them. Queued fragments wait for the next round, every
    `interval_s`, so a crash loses at most that much more than the open fragment.
    Opening and closing a segment wake the thread at once: a proceeding waits for them.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self._q: deque[tuple[Any, Any]] = deque()  # (recorder, message); append and popleft are atomic
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, recorder: "CameraRecorder | None", msg: Any, urgent: bool = False) -> None:
        self._q.append((recorder, msg))
        if urgent:
            self._wake.set()

    async def flush(self) -> None:
        """Return once everything queued so far is written."""
        done = threading.Event()
        self.put(None, done, urgent=True)
        if self._thread.is_alive():
            await asyncio.to_thread(done.wait, 30)

    async def stop(self) -> None:
        self.put(None, None, urgent=True)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 30)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()  # before draining: a put after this wakes the next round
            while self._q:
                recorder, msg = self._q.popleft()
                if recorder is not None:
                    recorder.handle(msg)
                elif msg is None:
                    return
                else:
                    msg.set()


class CameraRecorder:
    """Records one camera: `feed` muxes on the demux thread, `handle` writes (on the
    DiskWriter's thread)."""

    def __init__(self, camera_id: str, fanout: Fanout, *, db: Any, bus: Any, alerts: Any, metrics: Any, media_dir: Path,
                 loop: asyncio.AbstractEventLoop, segment_s: float, disk: DiskWriter, queue_bytes: int = 64 << 20, retry_s: float = 3.0) -> None:
        self.camera_id = camera_id
        self.fanout = fanout
        self.db, self.bus, self.alerts = db, bus, alerts
        self.loop = loop
        self.segment_s = segment_s
        self.retry_s = retry_s
        self.queue_bytes = queue_bytes
        self.media_dir = media_dir
        # demux thread side (under _lock: stop() may close the segment from the loop)
        self._lock = threading.Lock()
        self._mux: _Muxing | None = None
        self._info: StreamInfo | None = None
        self._gap_start: float | None = None
        self._gap_reason = "camera down"
        self._rotate_waiters: list[threading.Event] = []
        self._stopped = False
        # shared with the writer thread
        self._disk = disk
        self._seg: _Written | None = None  # the writer's side of the open segment
        self._queued = 0  # bytes handed to the writer and not yet written
        self._queued_lock = threading.Lock()
        self._failed_until = 0.0  # set by the writer on a write error: no new segment before
        self._failed_reason = ""
        self._disk_alert = False
        m = metrics
        self._m_segments = m.counter("gateway_recording_segments_total", "Segments closed", ("camera",)).labels(camera_id)
        self._m_bytes = m.counter("gateway_recording_bytes_total", "Bytes recorded", ("camera",)).labels(camera_id)
        self._m_gaps = m.counter("gateway_recording_gaps_total", "Recording interruptions", ("camera",)).labels(camera_id)
        self._m_dropped = m.counter("gateway_recording_dropped_packets_total", "Packets the recorder could not keep up with", ("camera",)).labels(camera_id)
        self._m_errors = m.counter("gateway_recording_errors_total", "Write errors", ("camera", "reason"))

    # --- control, from the event loop -------------------------------------------------
    def start(self) -> None:
        self.fanout.tap(self.feed)

    async def stop(self) -> None:
        self.fanout.untap(self.feed)
        with self._lock:
            self._stopped = True
            self._close()
        await self._disk.flush()

    async def rotate_now(self, timeout: float = 15.0) -> bool:
        """Close the open segment at the next keyframe (so a proceeding can seal it); True
        once it is closed and its row finished."""
        ev = threading.Event()
        with self._lock:
            if self._mux is None:
                return True
            self._rotate_waiters.append(ev)
        return await asyncio.to_thread(ev.wait, timeout)

    @property
    def open_segment(self) -> str | None:
        m = self._mux
        return m.rel if m else None

    # --- the demux thread -------------------------------------------------------------
    def feed(self, item: Item) -> None:
        """The Fanout tap. Never raises: one bad packet must not end the demux."""
        try:
            with self._lock:
                mux = self._mux
                # The common case first, with the fewest checks (a non-key packet of the
                # open segment's connection, nothing failed or queued too deep): it runs for
                # every packet of every camera. Everything else takes `_feed`. (With a
                # segment open, `_info` is its connection's.)
                if (mux is not None and type(item) is MediaPacket and not item.keyframe
                        and item.generation == self._info.generation  # type: ignore[union-attr]
                        and self._queued <= self.queue_bytes and self._failed_until <= item.at):
                    self._write(mux, item)
                elif not self._stopped:
                    self._feed(item)
        except Exception:
            log.exception("recorder %s", self.camera_id)
            self._close()

    def _feed(self, item: Item) -> None:
        if isinstance(item, MediaPacket):
            if self._info is None or item.generation != self._info.generation:
                return
            key = item.kind == "video" and item.keyframe
            mux = self._mux
            if mux is not None and (self._failed_until > item.at or self._queued > self.queue_bytes):
                self._interrupted(item, self._failed_reason if self._failed_until > item.at else "recorder overflow")
                mux = None
            if mux is None:
                if not key or item.at < self._failed_until or self._queued > self.queue_bytes:
                    if self._queued > self.queue_bytes:
                        self._m_dropped.inc()
                    return
                mux = self._open(item)
                if mux is None:
                    return
            elif key and (item.at - mux.start_ts >= self.segment_s or self._rotate_waiters):
                self._close()
                mux = self._open(item)
                if mux is None:
                    return
            self._write(mux, item)
        elif isinstance(item, StreamInfo):
            if self._mux is not None:
                self._close()
            self._info = item
        elif isinstance(item, SourceDown):
            if self._mux is not None:
                # the gap runs from the last frame recorded, not from when the loss was
                # noticed (a read timeout or the stall watchdog, seconds later)
                end = self._mux.last_at
                self._close()
                self._gap_start, self._gap_reason = end, "camera down"

    def _interrupted(self, item: MediaPacket, reason: str) -> None:
        self._close()
        if self._gap_start is None:
            self._gap_start, self._gap_reason = item.at, reason

    def _open(self, first: MediaPacket) -> _Muxing | None:
        info = self._info
        assert info is not None
        sink = _Chunks()
        try:
            out = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"})
            vs = out.add_stream_from_template(info.video_template)
            as_ = out.add_stream_from_template(info.audio_template) if info.audio_template is not None else None
            out.start_encoding()
        except Exception:
            log.exception("recorder %s: cannot mux %s", self.camera_id, info.codec)
            self._failed_until, self._failed_reason = first.at + self.retry_s, "mux"
            return None
        rel = segment_relpath(self.camera_id, first.at)
        gap = None
        if self._gap_start is not None:
            gap, self._gap_start = (self._gap_start, first.at, self._gap_reason), None
        self._send(_Open(rel, first.at, info.codec, as_ is not None, gap), 0)
        self._mux = _Muxing(rel, out, sink, vs, as_, first.at, float(first.dts * first.time_base), first.at, first.dts)
        self._hand_over(self._mux, header=True)
        return self._mux

    def _write(self, mux: _Muxing, p: MediaPacket) -> None:
        # offsets kept per kind, not looked up by time base: hashing a Fraction on every
        # packet was a third of the recorder's own time (a connection's time bases do not change)
        off: int | None
        if p.kind == "video":
            stream, off = mux.vstream, mux.video_offset
        else:
            stream, off = mux.astream, mux.audio_offset
            if stream is None:
                return
            if off is None:
                off = mux.audio_offset = round(mux.base_s / p.time_base)
        dts = p.dts - off
        if dts < 0:
            return  # audio from before the segment's first keyframe
        pkt = p.packet
        if pkt is None:
            pkt = av.Packet(p.data)
            pkt.time_base = p.time_base
            pkt.is_keyframe = p.keyframe
        # the demuxed packet itself (mux takes a reference, no copy): its bytes stay as they
        # are, for consumers that copy them later; its timestamps and stream become ours
        pkt.dts, pkt.pts = dts, p.pts - off
        pkt.stream = stream
        mux.pending.append(pkt)
        mux.last_at = p.at
        if (p.keyframe and p.kind == "video") or len(mux.pending) >= MAX_PENDING:
            # with the keyframe that starts the next one, the muxer writes the fragment
            # now, as it would have packet by packet
            self._mux_pending(mux)

    def _mux_pending(self, mux: _Muxing) -> None:
        """Mux the packets held since the last keyframe, at once. The muxer writes a
        fragment only when the next keyframe comes (frag_keyframe), so holding the rest
        of a GOP delays nothing on disk; and muxing a GOP in one go cost 3-5% less CPU in
        all than a packet at a time, each of which gives up Python's GIL to FFmpeg and
        waits to get it back (32 cameras, paired runs)."""
        pending, mux.pending = mux.pending, []
        write = mux.out.mux_one
        for pkt in pending:
            write(pkt)
        if mux.sink.parts:
            self._hand_over(mux)

    def _hand_over(self, mux: _Muxing, header: bool = False) -> None:
        parts = mux.sink.take()
        if parts:
            size = sum(len(b) for b in parts)
            self._send(_Data(mux.rel, parts, size, header), size)

    def _close(self) -> None:
        mux = self._mux
        if mux is None:
            return
        self._mux = None
        try:
            self._mux_pending(mux)
        except Exception as e:
            log.warning("recorder %s: muxing the last packets of %s: %s", self.camera_id, mux.rel, e)
        try:
            mux.out.close()  # writes the last fragment into the sink
        except Exception as e:
            log.warning("recorder %s: closing %s: %s", self.camera_id, mux.rel, e)
        self._hand_over(mux)
        waiters, self._rotate_waiters = self._rotate_waiters, []
        self._send(_Close(mux.rel, mux.last_at, mux.last_at - mux.start_ts, waiters), 0)

    def _send(self, msg: Any, size: int) -> None:
        if size:
            with self._queued_lock:
                self._queued += size
        self._disk.put(self, msg, urgent=not size)

    # --- the writer thread ------------------------------------------------------------
    def _call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def handle(self, msg: Any) -> None:
        """One message from `feed`, in order. Never raises: the thread writes every camera."""
        seg = self._seg
        try:
            if isinstance(msg, _Data):
                with self._queued_lock:
                    self._queued -= msg.size
                if seg is not None and seg.rel == msg.rel and not seg.broken:
                    self._append(seg, msg)
            elif isinstance(msg, _Open):
                self._seg = self._start(msg)
            elif isinstance(msg, _Close):
                if seg is not None and seg.rel == msg.rel:
                    self._seg = None
                    self._finish_file(seg, msg)
                for w in msg.waiters:
                    w.set()
        except Exception:
            log.exception("recorder %s: writer", self.camera_id)

    def _start(self, msg: _Open) -> _Written | None:
        path = self.media_dir / msg.rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # unbuffered: a failed write is known at once, and the file can be cut back to it
            f: BinaryIO = open(path, "xb", buffering=0)  # noqa: SIM115 - closed in _finish_file
        except OSError as e:
            self._fail(e, msg.started)
            return None
        row_id = self._call(self._insert(dict(camera_id=self.camera_id, kind="segment", path=msg.rel, started_at=naive(utc(msg.started)),
                                              codec=msg.codec, has_audio=msg.has_audio, hold=False)))
        if msg.gap is not None:
            self._call(self._record_gap(*msg.gap))
        if self._disk_alert:
            self._disk_alert = False
            self._call(self.alerts.clear("disk_full", device_id=self.camera_id, note="recording resumed"))
        return _Written(msg.rel, path, f, row_id, hashlib.sha256())

    def _append(self, seg: _Written, data: _Data) -> None:
        try:
            for b in data.parts:
                view = memoryview(b)
                while view:
                    view = view[seg.f.write(view):]
                seg.sha.update(b)
                seg.size += len(b)
        except OSError as e:
            # Cut back to the last whole fragment, so what is kept plays to its end.
            seg.broken = True
            try:
                os.ftruncate(seg.f.fileno(), seg.good)
            except OSError:
                log.warning("recorder %s: cannot cut %s back to %d bytes", self.camera_id, seg.rel, seg.good)
            self._fail(e, time.time())
            return
        if not data.header:
            seg.good = seg.size
        self._m_bytes.inc(data.size)

    def _finish_file(self, seg: _Written, msg: _Close) -> None:
        try:
            seg.f.close()
        except OSError as e:
            seg.broken = True
            self._fail(e, time.time())
        try:
            # hashed as written; a segment cut by a write error is hashed as it is on disk
            size, digest = (seg.path.stat().st_size, sha256_file(seg.path)) if seg.broken else (seg.size, seg.sha.hexdigest())
        except OSError:
            size, digest = None, None
        if seg.broken and not seg.good:
            # the disk was full before a whole fragment of it was written: no segment at all
            seg.path.unlink(missing_ok=True)
            self._call(self._forget(seg.row_id))
            return
        self._call(self._finish(seg.row_id, msg.last_at, msg.duration, size, digest))
        self._m_segments.inc()
        log.debug("recorder %s: closed %s", self.camera_id, seg.rel)

    def _fail(self, e: BaseException, at: float) -> None:
        full = is_disk_full(e)
        kind = "disk_full" if full else "recording_failed"
        self._m_errors.labels(self.camera_id, "disk_full" if full else "write").inc()
        self._failed_reason = "disk full" if full else "write error"
        self._failed_until = max(at, time.time()) + self.retry_s
        if not self._disk_alert:
            self._disk_alert = True
            log.error("recorder %s: %s: %s", self.camera_id, kind, e)
            try:
                self._call(self.alerts.raise_alert(kind, device_id=self.camera_id, message=f"recording of {self.camera_id} stopped: {e}"))
            except Exception:
                log.exception("raising %s", kind)

    # --- coroutines run on the loop -------------------------------------------------
    # Segment rows by Core statements through `Database.write` (on SQLite, inline on the
    # loop): a camera writes two per segment, and through the ORM's unit of work and
    # aiosqlite each cost the event loop ~1.2 ms of CPU (32 cameras: a row a second).
    async def _insert(self, values: dict[str, Any]) -> int:
        stmt = insert(Recording).values(**values).returning(Recording.id)
        return await self.db.write(lambda c: int(c.execute(stmt).scalar_one()))

    async def _finish(self, row_id: int, last_at: float, duration: float, size: int | None, digest: str | None) -> None:
        stmt = update(Recording).where(Recording.id == row_id).values(
            ended_at=naive(utc(last_at)), duration_s=round(duration, 3), size=size, sha256=digest)
        await self.db.write(lambda c: c.execute(stmt))

    async def _forget(self, row_id: int) -> None:
        async with self.db.session() as s:
            row = await s.get(Recording, row_id)
            if row is not None:
                await s.delete(row)
                await s.commit()

    async def _record_gap(self, start: float, end: float, reason: str) -> None:
        async with self.db.session() as s:
            s.add(Recording(camera_id=self.camera_id, kind="gap", started_at=naive(utc(start)), ended_at=naive(utc(end)),
                            duration_s=round(end - start, 3)))
            await s.commit()
        self._m_gaps.inc()
        await self.bus.publish(RecordingGap(camera_id=self.camera_id, started_at=utc(start), ended_at=utc(end),
                                                     duration_s=round(end - start, 3), reason=reason))


async def recover(db: Any, media_dir: Path) -> int:
    """Finish segments left open by a crash: the file is readable up to its last fragment."""
    n = 0
    async with db.session() as s:
        rows = (await s.scalars(select(Recording).where(Recording.kind == "segment", Recording.sha256.is_(None)))).all()
        for row in rows:
            try:
                path = media_dir / (row.path or "")
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


async def apply_retention(db: Any, media: Path, retention_days: dict[str, int], min_free_bytes: int, now: datetime | None = None) -> list[str]:
    """Delete expired segments, then the oldest ones while free space is below the floor.
    Segments under hold (part of a proceeding) are never deleted. Returns deleted paths."""
    now = naive(now or datetime.now(timezone.utc))
    deleted: list[str] = []
    async with db.session() as s:
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
