"""One demux per camera, packets fanned out to every consumer.

The camera driver's demux thread calls `Fanout.publish(item)` for every packet and for
stream changes; each consumer has its own bounded queue, so a slow consumer (a viewer on
a bad link, a busy sampler) only loses its own packets and never stalls the demuxer or
the other consumers. Queues drop the oldest item when full; consumers learn about it
from `dropped` and resynchronise on the next keyframe.

A tap (`Fanout.tap`) is instead called on the demux thread itself, for work cheaper
than a thread hand-off: the recorder muxes there (into memory; its disk writes have a
thread and a bounded queue of their own). A tap must not block and must not raise.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Union

import av


class MediaPacket:
    """An encoded packet as the demuxer delivered it.

    Made once per packet on the demux thread, so it is a plain slotted class: a frozen
    dataclass costs a `object.__setattr__` call per field, on every packet of every camera.
    Nobody changes one after `publish`.

    `packet` is the demuxed av.Packet. Taps (on the demux thread) may set its pts, dts and
    stream to mux it; they never change its data. `data` is a detached copy of the bytes,
    made on first use (by a consumer on another thread, or a snapshot). A camera that
    is only recorded never copies its packets.
    """

    __slots__ = ("kind", "pts", "dts", "time_base", "keyframe", "at", "generation", "packet", "_data")

    def __init__(self, kind: str, pts: int, dts: int, time_base: Fraction, keyframe: bool, at: float,
                 generation: int, packet: Any = None, data: bytes | None = None) -> None:
        self.kind = kind  # "video" | "audio"
        self.pts = pts
        self.dts = dts
        self.time_base = time_base
        self.keyframe = keyframe
        self.at = at  # wall clock (epoch s) when it arrived
        self.generation = generation  # which connection it came from; changes on every reconnect
        self.packet = packet
        self._data = data

    @property
    def data(self) -> bytes:
        d = self._data
        if d is None:
            # two threads may both copy: same bytes, last one kept
            d = self._data = bytes(self.packet)
        return d

    def __repr__(self) -> str:
        return f"MediaPacket({self.kind}, dts={self.dts}, key={self.keyframe}, gen={self.generation})"


@dataclass(slots=True)
class StreamInfo:
    """What a connection carries. `video_template`/`audio_template` are detached copies of the
    demuxer's streams (in a never-written in-memory MP4), usable after the source closes."""

    generation: int
    codec: str
    width: int
    height: int
    profile: str | None
    extradata: bytes
    video_template: Any
    audio_template: Any = None
    audio_codec: str | None = None
    _holder: Any = field(default=None, repr=False)

    @classmethod
    def from_container(cls, container: Any, generation: int) -> "StreamInfo":
        v = container.streams.video[0]
        a = container.streams.audio[0] if container.streams.audio else None
        holder = av.open(io.BytesIO(), "w", format="mp4")
        vt = holder.add_stream_from_template(v)
        at = None
        if a is not None and a.codec_context.name in ("aac", "opus", "mp3", "alac", "pcm_alaw", "pcm_mulaw"):
            try:
                at = holder.add_stream_from_template(a)
            except ValueError:
                at = None  # a codec MP4 cannot hold: recorded as video only
        cc = v.codec_context
        return cls(generation=generation, codec=cc.name, width=cc.width, height=cc.height, profile=cc.profile,
                   extradata=bytes(cc.extradata or b""), video_template=vt, audio_template=at,
                   audio_codec=a.codec_context.name if a is not None and at is not None else None, _holder=holder)


@dataclass(frozen=True, slots=True)
class SourceDown:
    """The connection ended (camera gone, stalled or reconnecting)."""

    at: float
    reason: str


Item = Union[MediaPacket, StreamInfo, SourceDown]


class Consumer:
    """A bounded queue read by a thread (`get`) or by asyncio (`aget`); drop-oldest when full."""

    def __init__(self, name: str, maxsize: int, video_only: bool = False) -> None:
        self.name = name
        self.video_only = video_only
        self._q: deque[Item] = deque(maxlen=maxsize)
        self._cond = threading.Condition()
        self.dropped = 0
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.closed = False

    def put(self, item: Item) -> None:
        if self.video_only and isinstance(item, MediaPacket) and item.kind != "video":
            return
        with self._cond:
            if len(self._q) == self._q.maxlen:
                self.dropped += 1
            self._q.append(item)
            self._cond.notify()
            waiter = self._waiter
        if waiter is not None:
            loop, ev = waiter
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:
                pass  # loop closed: the consumer is gone

    def get(self, timeout: float | None = None) -> Item | None:
        with self._cond:
            if not self._q:
                self._cond.wait(timeout)
            return self._q.popleft() if self._q else None

    async def aget(self) -> Item:
        loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        while True:
            with self._cond:
                if self._q:
                    return self._q.popleft()
                ev.clear()
                self._waiter = (loop, ev)
            await ev.wait()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class Fanout:
    """Packets of one camera to all its consumers. Thread-safe; publish never blocks."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._consumers: list[Consumer] = []
        self._taps: list[Callable[[Item], None]] = []
        self._lock = threading.Lock()
        self.info: StreamInfo | None = None
        self.last_keyframe: list[MediaPacket] = []  # the latest GOP so far, for snapshots and fast live start

    def add(self, consumer: Consumer) -> Consumer:
        with self._lock:
            self._consumers = [*self._consumers, consumer]
            if self.info is not None:
                consumer.put(self.info)
        return consumer

    def tap(self, fn: Callable[[Item], None]) -> None:
        with self._lock:
            self._taps = [*self._taps, fn]
            if self.info is not None:
                fn(self.info)

    def untap(self, fn: Callable[[Item], None]) -> None:
        with self._lock:
            # ==, not `is`: a bound method (`recorder.feed`) is a new object on every access
            self._taps = [t for t in self._taps if t != fn]

    def remove(self, consumer: Consumer) -> None:
        with self._lock:
            self._consumers = [c for c in self._consumers if c is not consumer]
        consumer.closed = True
        consumer.wake()

    def publish(self, item: Item) -> None:
        if type(item) is MediaPacket:  # nearly every call: tested first
            if item.kind == "video":
                if item.keyframe:
                    self.last_keyframe = [item]
                elif self.last_keyframe and len(self.last_keyframe) < 600:
                    self.last_keyframe.append(item)  # readers take a copy (list() is atomic under the GIL)
        elif isinstance(item, StreamInfo):
            self.info = item
            self.last_keyframe = []
        elif isinstance(item, SourceDown):
            self.last_keyframe = []
        for t in self._taps:  # copy-on-write lists: no lock needed to iterate
            t(item)
        for c in self._consumers:
            c.put(item)

    @property
    def consumers(self) -> list[str]:
        return [c.name for c in self._consumers]
