"""Segment files: the disk side of recording, on one thread for every camera.

The muxer (streams/recorder.py, on each camera's demux thread) sends what it made to its
camera's `SegmentWriter` through the `DiskWriter` queue: `SegmentOpen`, `Fragment`s (the
muxer's output, a GOP at a time), `SegmentClose`. The writer appends each fragment to the
segment's file, hashing it on the way (no re-read at close), and posts the segment's rows
to the event loop (streams/segment_rows.py) without waiting for them.

A segment's file is created only once its row exists (the loop answers with `RowReady`):
a failed insert (the database's disk is full) leaves no file behind. Fragments arriving
before that answer wait in memory and still count against the camera's queue, so a loop
that is slow to answer delays only that camera's first bytes, and never beyond its queue.

Disk full (ENOSPC): the file is cut back to its last whole fragment (so it plays to its
end; a segment without one is not kept), the disk monitor is told (one `disk_full` alert
per disk, gateway/disk.py), and the muxer stops opening segments for `retry_s`. Other
write errors raise `recording_failed` for the camera, resolved when a segment opens again.
A segment that could not start (its row or its file) hands its gap on to the next one, so
the gap that is finally recorded runs from the last frame kept to the first frame kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from gateway.disk import DiskMonitor, is_disk_full
from gateway.evidence import sha256_file
from gateway.metrics import Metrics
from streams.segment_rows import (
    AlertChange,
    FinishSegment,
    ForgetSegment,
    InsertGap,
    InsertSegment,
    SegmentRows,
)

log = logging.getLogger(__name__)


# --- what the muxer sends ---------------------------------------------------------------
@dataclass
class SegmentOpen:
    rel: str
    started: float  # the first frame (epoch s)
    codec: str
    has_audio: bool
    gap: tuple[float, str] | None  # (start, reason): recording was interrupted from then until `started`


@dataclass
class Fragment:
    rel: str
    parts: list[bytes]
    size: int
    end_at: float  # when its last frame arrived (epoch s)
    header: bool = False  # the file header only: a segment cut right after it holds no picture


@dataclass
class SegmentClose:
    rel: str
    last_at: float
    duration: float
    waiters: list[threading.Event] = field(default_factory=list)


@dataclass
class RowReady:
    """The loop's answer to a segment's insert."""

    rel: str
    row_id: int | None
    error: BaseException | None


class Handler(Protocol):
    def handle(self, msg: Any) -> None: ...


class DiskWriter:
    """The thread that writes every camera's segments.

    Fragments are not handed over one at a time: waking a thread per fragment (a context
    switch each way, and the GIL handed over) cost more, with dozens of cameras, than
    writing and hashing them (docs/cameras.md). Queued fragments wait for the next round,
    every `interval_s`, so a crash loses at most that much more than the open fragment.
    Opening and closing a segment, and the loop's answers, wake the thread at once: a
    proceeding waits for them.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self._q: deque[tuple[Handler | None, Any]] = deque()  # append and popleft are atomic
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, handler: Handler | None, msg: Any, urgent: bool = False) -> None:
        self._q.append((handler, msg))
        if urgent:
            self._wake.set()

    async def flush(self) -> None:
        """Return once everything queued so far is handled."""
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
                handler, msg = self._q.popleft()
                if handler is not None:
                    handler.handle(msg)
                elif msg is None:
                    return
                else:
                    msg.set()


class Feedback(Protocol):
    """What the writer tells the muxer (streams/recorder.py CameraRecorder)."""

    def written(self, size: int) -> None: ...

    def failed(self, reason: str, until: float) -> None: ...


@dataclass
class _Segment:
    """A segment file, as the writer thread sees it."""

    open: SegmentOpen
    gap: tuple[float, str] | None
    path: Path
    row_id: int | None = None
    f: BinaryIO | None = None
    held: list[Fragment] = field(default_factory=list)  # fragments waiting for the row
    close: SegmentClose | None = None  # closed before its row came back
    dead: bool = False  # no row or no file: whatever comes for it is dropped
    sha: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    good: int = 0  # bytes up to the end of the last fragment completely written
    good_at: float = 0.0  # when the last frame of that fragment arrived
    broken: bool = False


class SegmentWriter:
    """One camera's segment files (DiskWriter thread) and the rows it posts (loop)."""

    def __init__(self, camera_id: str, *, feedback: Feedback, disk: DiskWriter, rows: SegmentRows, media_dir: Path, metrics: Metrics,
                 monitor: DiskMonitor | None, retry_s: float = 3.0) -> None:
        self.camera_id = camera_id
        self.feedback, self.disk, self.rows, self.media_dir, self.monitor = feedback, disk, rows, media_dir, monitor
        self.retry_s = retry_s
        self._segs: dict[str, _Segment] = {}  # in flight: one, or two while a rotated one waits for its row
        self._carry: tuple[float, str] | None = None  # the gap of a segment that could not start
        self._alerted = False  # recording_failed raised and not yet cleared
        self._m_segments = metrics.counter("gateway_recording_segments_total", "Segments closed", ("camera",)).labels(camera_id)
        self._m_bytes = metrics.counter("gateway_recording_bytes_total", "Bytes recorded", ("camera",)).labels(camera_id)
        self._m_errors = metrics.counter("gateway_recording_errors_total", "Write errors", ("camera", "reason"))

    @property
    def settled(self) -> bool:
        """Nothing in flight: every segment sent so far is closed (or dropped)."""
        return not self._segs

    def handle(self, msg: Any) -> None:
        """One message, in order. Never raises: the thread writes every camera."""
        try:
            if type(msg) is Fragment:
                self._fragment(msg)
            elif isinstance(msg, SegmentOpen):
                self._open(msg)
            elif isinstance(msg, RowReady):
                self._row_ready(msg)
            elif isinstance(msg, SegmentClose):
                self._close(msg)
        except Exception:
            log.exception("recorder %s: writer", self.camera_id)

    # --- messages ---------------------------------------------------------------------
    def _open(self, msg: SegmentOpen) -> None:
        gap, self._carry = _merged(self._carry, msg.gap), None
        seg = self._segs[msg.rel] = _Segment(msg, gap, self.media_dir / msg.rel)

        def done(row_id: int | None, error: BaseException | None) -> None:  # on the loop
            self.disk.put(self, RowReady(seg.open.rel, row_id, error), urgent=True)

        self.rows.post(InsertSegment(self.camera_id, msg.rel, msg.started, msg.codec, msg.has_audio, done))

    def _fragment(self, msg: Fragment) -> None:
        seg = self._segs.get(msg.rel)
        if seg is None or seg.dead or seg.broken:
            self.feedback.written(msg.size)  # dropped: no longer queued
        elif seg.f is None:
            seg.held.append(msg)  # still counted as queued until written
        else:
            self._append(seg, msg)

    def _row_ready(self, msg: RowReady) -> None:
        seg = self._segs.get(msg.rel)
        if seg is None:
            return
        if msg.row_id is None:
            self._lost(seg, "disk full" if is_disk_full(msg.error) else "database error")
        else:
            seg.row_id = msg.row_id
            try:
                seg.path.parent.mkdir(parents=True, exist_ok=True)
                # unbuffered: a failed write is known at once, and the file can be cut back to it
                seg.f = open(seg.path, "xb", buffering=0)  # noqa: SIM115 - closed in _finish
            except OSError as e:
                self.rows.post(ForgetSegment(self.camera_id, msg.row_id))
                self._fail(e)
                self._lost(seg, self._reason(e))
            else:
                self._started(seg)
        if seg.close is not None:
            self._close(seg.close)

    def _started(self, seg: _Segment) -> None:
        held, seg.held = seg.held, []
        for frag in held:
            if seg.broken:
                self.feedback.written(frag.size)
            else:
                self._append(seg, frag)
        if seg.broken:
            return
        if seg.gap is not None:
            self.rows.post(InsertGap(self.camera_id, seg.gap[0], seg.open.started, seg.gap[1]))
        if self._alerted:
            self._alerted = False
            self.rows.post(AlertChange(False, "recording_failed", {"device_id": self.camera_id, "note": "recording resumed"}))

    def _close(self, msg: SegmentClose) -> None:
        seg = self._segs.get(msg.rel)
        if seg is None:
            _wake(msg.waiters)
            return
        if seg.row_id is None and not seg.dead:
            seg.close = msg  # closed when the row comes back
            return
        del self._segs[msg.rel]
        if seg.f is None:
            _wake(msg.waiters)
        else:
            self._finish(seg, msg)

    # --- the file ---------------------------------------------------------------------
    def _append(self, seg: _Segment, frag: Fragment) -> None:
        assert seg.f is not None
        try:
            for b in frag.parts:
                view = memoryview(b)
                while view:
                    view = view[seg.f.write(view):]
                seg.sha.update(b)
                seg.size += len(b)
        except OSError as e:
            # Cut back to the last whole fragment, so what is kept plays to its end; what
            # is lost is a gap from there (the muxer notices later, at a later frame).
            seg.broken = True
            try:
                os.ftruncate(seg.f.fileno(), seg.good)
            except OSError:
                log.warning("recorder %s: cannot cut %s back to %d bytes", self.camera_id, seg.open.rel, seg.good)
            self._carry = _merged((seg.good_at if seg.good else seg.open.started, self._reason(e)), self._carry)
            self._fail(e)
            return
        finally:
            self.feedback.written(frag.size)
        if not frag.header:
            seg.good, seg.good_at = seg.size, frag.end_at
        self._m_bytes.inc(frag.size)

    def _finish(self, seg: _Segment, msg: SegmentClose) -> None:
        assert seg.f is not None and seg.row_id is not None
        try:
            seg.f.close()
        except OSError as e:
            seg.broken = True
            self._fail(e)
        if seg.broken and not seg.good:
            # the disk was full before a whole fragment of it was written: no segment at all
            seg.path.unlink(missing_ok=True)
            self.rows.post(ForgetSegment(self.camera_id, seg.row_id, msg.waiters))
            return
        try:
            # hashed as written; a segment cut by a write error is hashed as it is on disk
            size, digest = (seg.path.stat().st_size, sha256_file(seg.path)) if seg.broken else (seg.size, seg.sha.hexdigest())
        except OSError:
            size, digest = None, None
        # a cut segment ends with its last whole fragment, not where the muxer stopped
        last_at, duration = (seg.good_at, seg.good_at - seg.open.started) if seg.broken else (msg.last_at, msg.duration)
        self.rows.post(FinishSegment(self.camera_id, seg.row_id, last_at, duration, size, digest, msg.waiters))
        self._m_segments.inc()
        log.debug("recorder %s: closed %s", self.camera_id, seg.open.rel)

    # --- failures ---------------------------------------------------------------------
    def _lost(self, seg: _Segment, reason: str) -> None:
        """The segment could not start: nothing of it is kept, and its gap (or, without
        one, its own span) goes to the next segment that does."""
        seg.dead = True
        for frag in seg.held:
            self.feedback.written(frag.size)
        seg.held = []
        gap = seg.gap or (seg.open.started, reason)
        # a later segment already sent and not started yet (the loop was slow to answer)
        # is the next one that may start: the gap goes there
        later = next((s for s in self._segs.values() if s is not seg and not s.dead and s.f is None), None)
        if later is not None:
            later.gap = _merged(gap, later.gap)
        else:
            self._carry = _merged(gap, self._carry)
        self.feedback.failed(reason, time.time() + self.retry_s)

    def _reason(self, e: BaseException) -> str:
        return "disk full" if is_disk_full(e) else "write error"

    def _fail(self, e: BaseException) -> None:
        full = is_disk_full(e)
        self._m_errors.labels(self.camera_id, "disk_full" if full else "write").inc()
        self.feedback.failed(self._reason(e), time.time() + self.retry_s)
        if full:
            # one alert per disk, whichever camera (or upload, or database write) hit it
            if self.monitor is not None:
                self.monitor.report(e, self.media_dir)
            return
        if not self._alerted:
            self._alerted = True
            log.error("recorder %s: recording failed: %s", self.camera_id, e)
            self.rows.post(AlertChange(True, "recording_failed", {"device_id": self.camera_id, "message": f"recording of {self.camera_id} stopped: {e}"}))


def _merged(a: tuple[float, str] | None, b: tuple[float, str] | None) -> tuple[float, str] | None:
    """Two interruptions before the same segment are one, from the earlier start, for
    the earlier reason."""
    if a is None or b is None:
        return a or b
    return a if a[0] <= b[0] else b


def _wake(waiters: list[threading.Event]) -> None:
    for w in waiters:
        w.set()
