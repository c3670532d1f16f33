"""Continuous recording by stream copy into fragmented MP4 segments: the muxing side.

Packets are muxed as they are (no decode, no re-encode, audio copied when present) on the
camera's demux thread, through a Fanout tap, a GOP at a time when the next keyframe comes
(`_mux_pending`): handing each packet to a recorder thread of its own cost more CPU than
demuxing and muxing together (a thread wake-up per packet; docs/cameras.md).

The muxer writes into memory; each completed fragment (one per keyframe,
frag_keyframe+empty_moov) goes to the camera's `SegmentWriter` on the `DiskWriter`
thread (streams/segment_writer.py), which writes the file and hashes it, and posts the
`recordings` rows to the event loop (streams/segment_rows.py) without waiting for them.
A stalled disk therefore fills each camera's bounded queue (then fragments are dropped
and a gap recorded) instead of stalling the demuxer, and with it live view and the
sampler; a busy event loop delays no file but a new segment's first bytes.

A segment starts on a keyframe and rotates on the first keyframe after `segment_s`. A
crash loses at most the open fragment; the file stays readable up to there. A closed
segment gets its SHA-256 in its row; an open one has a row without hash, finished at the
next start (streams/recovery.py). Interruptions are stored as `gap` rows and published as
`RecordingGap`, from the last frame recorded to the first after: a lost connection, an
overflowing queue, a full disk, and the time before this recorder started (`gap`, given
by the area: the gateway was down, or the camera disabled).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from gateway.clock import utc_at
from gateway.disk import DiskMonitor
from gateway.metrics import Metrics
from streams.fanout import Fanout, Item, MediaPacket, SourceDown, StreamInfo
from streams.segment_rows import SegmentRows
from streams.segment_writer import DiskWriter, Fragment, SegmentClose, SegmentOpen, SegmentWriter

log = logging.getLogger(__name__)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
MAX_PENDING = 256  # packets held for one mux call at most (a long GOP is muxed in parts)


def segment_relpath(camera_id: str, ts: float) -> str:
    t = utc_at(ts)
    return f"recordings/{camera_id}/{t:%Y/%m/%d}/{camera_id}-{t:%Y%m%dT%H%M%S}_{t.microsecond // 1000:03d}Z.mp4"


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


class CameraRecorder:
    """Records one camera: `feed` muxes on the demux thread; the camera's `writer`
    writes on the DiskWriter thread (and tells this side, through `written` and
    `failed`, how far behind it is and when not to open a segment)."""

    def __init__(self, camera_id: str, fanout: Fanout, *, disk: DiskWriter, rows: SegmentRows, metrics: Metrics, media_dir: Path,
                 segment_s: float, monitor: DiskMonitor | None = None, gap: tuple[float, str] | None = None,
                 queue_bytes: int = 64 << 20, retry_s: float = 3.0) -> None:
        self.camera_id = camera_id
        self.fanout = fanout
        self.segment_s = segment_s
        self.retry_s = retry_s
        self.queue_bytes = queue_bytes
        self.rows = rows
        # demux thread side (under _lock: stop() may close the segment from the loop)
        self._lock = threading.Lock()
        self._mux: _Muxing | None = None
        self._info: StreamInfo | None = None
        self._gap_start: float | None = gap[0] if gap else None
        self._gap_reason = gap[1] if gap else "camera down"
        self._rotate_waiters: list[threading.Event] = []
        self._stopped = False
        # told by the writer thread
        self._disk = disk
        self._queued = 0  # bytes handed to the writer and not yet written
        self._queued_lock = threading.Lock()
        self._failed_until = 0.0  # no new segment before (a write error or a full disk)
        self._failed_reason = ""
        self.writer = SegmentWriter(camera_id, feedback=self, disk=disk, rows=rows, media_dir=media_dir, metrics=metrics, monitor=monitor,
                                    retry_s=retry_s)
        self._m_dropped = metrics.counter("gateway_recording_dropped_packets_total", "Packets the recorder could not keep up with",
                                          ("camera",)).labels(camera_id)

    # --- control, from the event loop -------------------------------------------------
    def start(self) -> None:
        self.fanout.tap(self.feed)

    async def stop(self, timeout: float = 30.0) -> None:
        """Close the open segment and return once its file and rows are written (or given
        up: a row the database refuses is retried by the rows writer until it stops)."""
        self.fanout.untap(self.feed)
        with self._lock:
            self._stopped = True
            self._close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # A close may wait for its segment's row, whose answer goes back to the writer
        # thread, whose finish goes to the rows writer again: a few hops, each awaited.
        while loop.time() < deadline:
            await self._disk.flush()
            await self.rows.idle()
            if self.writer.settled:
                return
        log.warning("recorder %s: stopped with a segment still waiting for its row", self.camera_id)

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

    # --- told by the writer thread ----------------------------------------------------
    def written(self, size: int) -> None:
        with self._queued_lock:
            self._queued -= size

    def failed(self, reason: str, until: float) -> None:
        self._failed_reason = reason
        self._failed_until = max(self._failed_until, until)

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
            gap, self._gap_start = (self._gap_start, self._gap_reason), None
        self._send(SegmentOpen(rel, first.at, info.codec, as_ is not None, gap), 0)
        self._mux = _Muxing(rel, out, sink, vs, as_, first.at, float(first.dts * first.time_base), first.at, first.dts)
        self._hand_over(self._mux, first.at, header=True)
        return self._mux

    def _write(self, mux: _Muxing, p: MediaPacket) -> None:
        # offsets kept per kind, not looked up by time base: hashing a Fraction on every
        # packet was much of the recorder's own time (a connection's time bases do not change)
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
        if (p.keyframe and p.kind == "video") or len(mux.pending) >= MAX_PENDING:
            # with the keyframe that starts the next one, the muxer writes the fragment
            # now, as it would have packet by packet (it ends with the packet before)
            self._mux_pending(mux, mux.last_at)
        mux.last_at = p.at

    def _mux_pending(self, mux: _Muxing, end_at: float) -> None:
        """Mux the packets held since the last keyframe, at once. The muxer writes a
        fragment only when the next keyframe comes (frag_keyframe), so holding the rest
        of a GOP delays nothing on disk; and each `mux_one` gives up Python's GIL to
        FFmpeg and waits to get it back, so a GOP in one go costs less than a packet at
        a time (measured: docs/cameras.md)."""
        pending, mux.pending = mux.pending, []
        write = mux.out.mux_one
        for pkt in pending:
            write(pkt)
        if mux.sink.parts:
            self._hand_over(mux, end_at)

    def _hand_over(self, mux: _Muxing, end_at: float, header: bool = False) -> None:
        parts = mux.sink.take()
        if parts:
            size = sum(len(b) for b in parts)
            self._send(Fragment(mux.rel, parts, size, end_at, header), size)

    def _close(self) -> None:
        mux = self._mux
        if mux is None:
            return
        self._mux = None
        try:
            self._mux_pending(mux, mux.last_at)
        except Exception as e:
            log.warning("recorder %s: muxing the last packets of %s: %s", self.camera_id, mux.rel, e)
        try:
            mux.out.close()  # writes the last fragment into the sink
        except Exception as e:
            log.warning("recorder %s: closing %s: %s", self.camera_id, mux.rel, e)
        self._hand_over(mux, mux.last_at)
        waiters, self._rotate_waiters = self._rotate_waiters, []
        self._send(SegmentClose(mux.rel, mux.last_at, mux.last_at - mux.start_ts, waiters), 0)

    def _send(self, msg: Any, size: int) -> None:
        if size:
            with self._queued_lock:
                self._queued += size
        self._disk.put(self.writer, msg, urgent=not size)
