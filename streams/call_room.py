"""One remote video session's media: the gateway as the session's mixer and recorder.

Every party sends the gateway its camera and microphone. The room keeps each party's newest
picture and a short buffer of its voice; one ticker makes, every 20 ms, the mix of all voices
(each party is sent the mix without its own voice, so nobody hears their own echo) and, `fps`
times a second, one composite picture: every party in its own tile of a fixed grid, labelled.
Every party receives that composite, and the recorder writes the composite and the full mix
into one fragmented MP4 (H.264 + AAC) that any player plays, and that stays playable up to its
last fragment if the gateway dies mid-session.

Why a mixer rather than forwarding each party's stream to the others: the record must be one
file holding every party; fixed tiles do not change shape when a party joins or drops, so no
renegotiation is needed; and each party receives one stream however many parties there are.
The cost is one decode per party and one encode per receiver plus the recorder's
(bench/bench_calls.py, docs/calls.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

RATE = 48_000
TICK_S = 0.020
TICK_SAMPLES = int(RATE * TICK_S)
MAX_BUFFER = RATE // 5  # a party's voice is at most 200 ms behind: older samples are dropped
STALE_S = 2.0  # a picture older than this is not shown (the party's video stalled)
BACKGROUND = 28


def grid(max_parties: int) -> tuple[int, int]:
    """Columns and rows of the tiles: 2 -> 2x1, 4 -> 2x2, 6 -> 3x2, 9 -> 3x3."""
    cols = 1
    while cols * cols < max_parties:
        cols += 1
    rows = -(-max_parties // cols)
    return cols, rows


def fit(w: int, h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest even size of aspect w:h inside the box."""
    scale = min(box_w / w, box_h / h)
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def ascii_label(text: str) -> str:
    """OpenCV draws ASCII only: other characters are left out (the console shows the full names)."""
    return "".join(c for c in text if 32 <= ord(c) < 127).strip()[:32]


@dataclass
class Slot:
    party_id: str
    label: str
    index: int
    connected: bool = False
    dropped: bool = False
    frame: Any = None  # the newest av.VideoFrame
    frame_at: float = 0.0
    pcm: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    resampler: Any = None
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    video_out: list[asyncio.Queue[Any]] = field(default_factory=list)
    audio_out: list[asyncio.Queue[Any]] = field(default_factory=list)
    received_frames: int = 0


def _put_newest(q: asyncio.Queue[Any], item: Any) -> None:
    if q.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            q.get_nowait()
    q.put_nowait(item)


class OutTrack(MediaStreamTrack):
    """What the room sends one party: the composite picture or the mix of the others' voices."""

    def __init__(self, kind: str, source: asyncio.Queue[Any], on_stop: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self._source = source
        self._on_stop = on_stop

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._source.get()
        if item is None:
            raise MediaStreamError
        return item

    def stop(self) -> None:
        super().stop()
        self._on_stop()


class SessionRecorder:
    """The composite picture and the full mix into one fragmented MP4, encoded in a thread of
    its own (never on the event loop). A fragment per keyframe (every two seconds): a crash
    loses at most the last two seconds."""

    def __init__(self, path: Path, width: int, height: int, fps: int, bitrate: int,
                 on_error: Callable[[BaseException], object] | None = None) -> None:
        self.path = path
        self.on_error = on_error  # told (from the encoder's thread) when writing fails: a full disk
        self.width, self.height, self.fps, self.bitrate = width, height, fps, bitrate
        self._queue: queue.Queue[tuple[str, np.ndarray, int] | None] = queue.Queue(maxsize=fps * 10 + 500)
        self.error: str | None = None
        self.dropped = 0
        self.video_frames = 0
        self._thread = threading.Thread(target=self._run, name=f"record {path.name}", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def video(self, yuv: np.ndarray, index: int) -> None:
        self._offer(("v", yuv, index))

    def audio(self, pcm: np.ndarray, sample: int) -> None:
        self._offer(("a", pcm, sample))

    def _offer(self, item: tuple[str, np.ndarray, int]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1  # the encoder fell behind by seconds: counted, the session goes on

    def close(self) -> None:
        """Flush the encoders and close the file (blocking: call from a thread)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        try:
            out = av.open(str(self.path), "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"})
        except Exception as e:  # noqa: BLE001 - said in the session's manifest
            self.error = f"recording could not start: {e}"
            log.error("call recording %s: %s", self.path, self.error)
            self._failed(e)
            return
        try:
            v = out.add_stream("libx264", rate=self.fps)
            v.width, v.height, v.pix_fmt, v.bit_rate = self.width, self.height, "yuv420p", self.bitrate
            v.codec_context.time_base = Fraction(1, self.fps)
            v.options = {"preset": "veryfast", "tune": "zerolatency", "g": str(self.fps * 2), "keyint_min": str(self.fps * 2)}
            a = out.add_stream("aac", rate=RATE)
            a.layout = "mono"
            while True:
                item = self._queue.get()
                if item is None:
                    break
                what, data, pos = item
                if what == "v":
                    vf = av.VideoFrame.from_ndarray(data, format="yuv420p")
                    vf.pts, vf.time_base = pos, Fraction(1, self.fps)
                    out.mux(v.encode(vf))
                    self.video_frames += 1
                else:
                    af = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
                    af.sample_rate, af.pts, af.time_base = RATE, pos, Fraction(1, RATE)
                    out.mux(a.encode(af))
            out.mux(v.encode(None))
            out.mux(a.encode(None))
        except Exception as e:  # noqa: BLE001
            self.error = f"recording failed: {e}"
            log.error("call recording %s failed: %s", self.path, e)
            self._failed(e)
            while self._queue.get() is not None:  # the session goes on unrecorded: its frames are dropped here
                self.dropped += 1
        finally:
            with contextlib.suppress(Exception):
                out.close()

    def _failed(self, e: BaseException) -> None:
        if self.on_error is not None:
            try:
                self.on_error(e)
            except Exception:  # noqa: BLE001 - the report must not kill the thread
                log.exception("reporting a recording failure failed")


def trim_partial_fragment(path: Path) -> int:
    """Cut a fragmented MP4 after its last complete fragment (moof + mdat): the end a crash or a
    full disk left half-written would stop a player with "invalid data". Returns the bytes cut."""
    size = path.stat().st_size
    keep = pos = 0
    pending_moof = False
    with open(path, "rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            length, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if length == 1 and len(head) >= 16:
                length = int.from_bytes(head[8:16], "big")
            if length < 8 or pos + length > size:
                break  # the box the writing stopped in
            pos += length
            if kind == b"moof":
                pending_moof = True
            elif kind == b"mdat" or not pending_moof:
                pending_moof = False
                keep = pos
    if keep < size:
        with open(path, "r+b") as f:
            f.truncate(keep)
    return size - keep


class Room:
    """The parties' media of one session, mixed. `attach` a party's received tracks, hand
    each party `outputs(party_id)` to send back; `start` the ticker, `stop` it at the end."""

    def __init__(self, width: int, height: int, fps: int, max_parties: int, recorder: SessionRecorder | None = None) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.cols, self.rows = grid(max_parties)
        self.max_parties = max_parties
        self.recorder = recorder
        self.slots: dict[str, Slot] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.video_index = 0  # composites made: the recording's frame count
        self.late_ticks = 0

    # -- parties -----------------------------------------------------------
    def add(self, party_id: str, label: str) -> Slot:
        if party_id in self.slots:
            return self.slots[party_id]
        used = {s.index for s in self.slots.values()}
        free = [i for i in range(self.max_parties) if i not in used]
        if not free:
            raise ValueError(f"the session has {self.max_parties} parties already")
        slot = Slot(party_id, ascii_label(label), free[0])
        self.slots[party_id] = slot
        return slot

    def attach(self, party_id: str, tracks: list[MediaStreamTrack]) -> None:
        """The party's browser sends these (again, after a reconnect: the old readers end)."""
        slot = self.slots[party_id]
        for t in slot.readers:
            t.cancel()
        slot.readers = []
        slot.resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        for track in tracks:
            reader = self._read_video if track.kind == "video" else self._read_audio
            slot.readers.append(asyncio.ensure_future(reader(slot, track)))
        slot.connected, slot.dropped = True, False

    def detach(self, party_id: str, dropped: bool) -> None:
        slot = self.slots.get(party_id)
        if slot is None:
            return
        for t in slot.readers:
            t.cancel()
        slot.readers, slot.connected, slot.dropped = [], False, dropped
        slot.frame, slot.pcm = None, np.zeros(0, np.int16)
        for q in slot.video_out + slot.audio_out:
            _put_newest(q, None)
        slot.video_out, slot.audio_out = [], []

    def outputs(self, party_id: str) -> list[MediaStreamTrack]:
        """A new pair of tracks to send this party: the composite and the mix without its voice."""
        slot = self.slots[party_id]
        vq: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)  # the newest composite only: a lagging encoder skips, never sends a stale one
        aq: asyncio.Queue[Any] = asyncio.Queue(maxsize=10)
        slot.video_out.append(vq)
        slot.audio_out.append(aq)

        def gone(q: asyncio.Queue[Any], where: list[asyncio.Queue[Any]]) -> Callable[[], None]:
            def remove() -> None:
                if q in where:
                    where.remove(q)
            return remove

        return [OutTrack("video", vq, gone(vq, slot.video_out)), OutTrack("audio", aq, gone(aq, slot.audio_out))]

    def snapshot(self, party_id: str) -> np.ndarray | None:
        """The party's newest picture (RGB), if it is fresh: what an identity check looks at."""
        slot = self.slots.get(party_id)
        if slot is None or slot.frame is None or time.monotonic() - slot.frame_at > STALE_S:
            return None
        arr: np.ndarray = slot.frame.to_ndarray(format="rgb24")
        return arr

    async def _read_video(self, slot: Slot, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                slot.frame, slot.frame_at = frame, time.monotonic()
                slot.received_frames += 1

    async def _read_audio(self, slot: Slot, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                for f in slot.resampler.resample(frame):
                    pcm = f.to_ndarray().reshape(-1).astype(np.int16)
                    slot.pcm = np.concatenate([slot.pcm, pcm])[-MAX_BUFFER:]

    # -- the ticker --------------------------------------------------------
    def start(self) -> None:
        if self.recorder is not None:
            self.recorder.start()
        self._ticker = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for pid in list(self.slots):
            self.detach(pid, dropped=False)
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        per_video = max(1, round(1 / (self.fps * TICK_S)))
        start, n = loop.time(), 0
        while True:
            n += 1
            delay = start + n * TICK_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                # the loop was held up for over a second: go on from now rather than racing
                # through the backlog (the recording's timeline stays continuous)
                self.late_ticks += 1
                start = loop.time() - n * TICK_S
            try:
                self._mix(n)
                if n % per_video == 0:
                    self._composite(n)
            except Exception:
                log.exception("call mixer tick failed")

    def _mix(self, n: int) -> None:
        voices: dict[str, np.ndarray] = {}
        for pid, slot in self.slots.items():
            take = slot.pcm[:TICK_SAMPLES]
            slot.pcm = slot.pcm[TICK_SAMPLES:]
            if len(take) < TICK_SAMPLES:
                take = np.concatenate([take, np.zeros(TICK_SAMPLES - len(take), np.int16)])
            voices[pid] = take.astype(np.int32)
        total = sum(voices.values(), np.zeros(TICK_SAMPLES, np.int32))
        pts = n * TICK_SAMPLES
        for pid, slot in self.slots.items():
            if not slot.audio_out:
                continue
            frame = av.AudioFrame.from_ndarray(np.clip(total - voices[pid], -32768, 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, pts, Fraction(1, RATE)
            for q in slot.audio_out:
                _put_newest(q, frame)
        if self.recorder is not None:
            self.recorder.audio(np.clip(total, -32768, 32767).astype(np.int16), pts)

    def tile(self, index: int) -> tuple[int, int, int, int]:
        tw, th = self.width // self.cols // 2 * 2, self.height // self.rows // 2 * 2
        return (index % self.cols) * tw, (index // self.cols) * th, tw, th

    def _composite(self, n: int) -> None:
        canvas = np.full((self.height, self.width, 3), BACKGROUND, np.uint8)
        now = time.monotonic()
        for slot in self.slots.values():
            x, y, tw, th = self.tile(slot.index)
            label_h = max(14, th // 12)
            f = slot.frame
            if slot.connected and f is not None and now - slot.frame_at <= STALE_S:
                fw, fh = fit(f.width, f.height, tw - 4, th - label_h - 4)
                img = f.reformat(width=fw, height=fh, format="rgb24").to_ndarray()
                ox, oy = x + (tw - fw) // 2, y + (th - label_h - fh) // 2
                canvas[oy:oy + fh, ox:ox + fw] = img
                state = ""
            else:
                state = " (connection lost)" if slot.dropped else " (waiting)"
            scale = label_h / 30
            cv2.putText(canvas, (slot.label or f"party {slot.index + 1}") + state, (x + 4, y + th - label_h // 4 - 2),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, (230, 230, 230), 1, cv2.LINE_AA)
        yuv: np.ndarray[Any, np.dtype[np.uint8]] = cv2.cvtColor(canvas, cv2.COLOR_RGB2YUV_I420).astype(np.uint8, copy=False)
        self.video_index += 1
        if self.recorder is not None:
            self.recorder.video(yuv, self.video_index)
        wanting = [q for slot in self.slots.values() for q in slot.video_out]
        if not wanting:
            return
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = int(n * TICK_S * 90_000), Fraction(1, 90_000)
        for q in wanting:
            _put_newest(q, frame)
