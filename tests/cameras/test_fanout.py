"""Fan-out taps, packets handed to them and on, and the recorders' disk writer."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import av

from simulators.media import make_clip
from streams.fanout import Fanout, MediaPacket, SourceDown
from streams.recorder import MOVFLAGS
from streams.segment_writer import DiskWriter


class Tapper:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def feed(self, item: object) -> None:
        self.seen.append(item)


def test_a_bound_method_tap_is_removed_by_untap() -> None:
    fan, t = Fanout("cam"), Tapper()
    fan.tap(t.feed)
    fan.publish(SourceDown(1.0, "first"))
    fan.untap(t.feed)  # a new bound-method object, equal to the tapped one
    fan.publish(SourceDown(2.0, "second"))
    assert [i.reason for i in t.seen] == ["first"]  # type: ignore[attr-defined]


def test_a_packets_bytes_are_intact_after_the_recorder_muxed_it(tmp_path: Path) -> None:
    """Consumers copy a packet's bytes lazily, after the recorder's tap has muxed the very
    same av.Packet (new pts/dts/stream): the bytes they get must be the camera's."""
    clip = make_clip(tmp_path / "c.mp4", seconds=2, profile="high")
    with av.open(str(clip)) as src:
        v = src.streams.video[0]
        out = av.open(io.BytesIO(), "w", format="mp4", options={"movflags": MOVFLAGS})
        o = out.add_stream_from_template(v)
        out.start_encoding()
        checked = 0
        for n, p in enumerate(src.demux(v)):
            if p.size == 0:
                continue
            original = bytes(p)
            mp = MediaPacket("video", p.pts, p.dts, p.time_base, p.is_keyframe, 0.0, 1, p)
            p.pts = p.dts = n
            p.stream = o
            out.mux_one(p)
            assert mp.data == original
            checked += 1
        out.close()
    assert checked >= 30


async def test_disk_writer_keeps_each_cameras_order_and_wakes_only_when_asked() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.got: list[int] = []

        def handle(self, msg: int) -> None:
            self.got.append(msg)

    w = DiskWriter(interval_s=30)  # no round during the test: only urgent puts and flush wake it
    w.start()
    a, b = Recorder(), Recorder()
    try:
        await asyncio.sleep(0.05)
        for i in range(200):
            w.put(a, i)
            w.put(b, -i)
        await asyncio.sleep(0.3)
        assert a.got == [] and b.got == []  # queued fragments wait for the next round
        w.put(a, 200, urgent=True)  # a segment opened or closed: written at once
        for _ in range(100):
            if len(a.got) == 201:
                break
            await asyncio.sleep(0.02)
        assert a.got == list(range(201)) and b.got == [-i for i in range(200)]
        w.put(b, -200)
        await w.flush()
        assert b.got[-1] == -200
    finally:
        await w.stop()
    assert not w._thread.is_alive()


async def test_recorder_writes_each_fragment_when_the_next_keyframe_comes_and_the_rest_at_stop(tmp_path: Path, make_config) -> None:  # type: ignore[no-untyped-def]
    """The recorder holds a GOP's packets and muxes them in one go: a fragment must still
    reach the disk as soon as the keyframe after it arrives (as muxing packet by packet
    would write it), no keyframe may be lost, and stopping writes what is held."""
    from streams.fanout import StreamInfo
    from streams.recorder import CameraRecorder
    from streams.segment_rows import SegmentRows
    from tests.cameras.conftest import playable_frames
    from tests.conftest import running

    def frames(path: Path) -> int:
        return playable_frames(path, tolerate_cut=True)  # a file with its header only has none

    clip = make_clip(tmp_path / "c.mp4", seconds=3, fps=15, profile="high")  # a keyframe every 15 frames
    async with running(make_config()) as gw:
        fan, disk = Fanout("cam"), DiskWriter(interval_s=30)
        disk.start()
        core = gw.services
        rows = SegmentRows(db=core.db, bus=core.bus, alerts=core.alerts, metrics=core.metrics)
        rows.start()
        rec = CameraRecorder("cam", fan, disk=disk, rows=rows, metrics=core.metrics, media_dir=core.media_dir, segment_s=60)
        rec.start()

        async def written() -> None:  # the writer, then the row it waits for, then the writer again
            await disk.flush()
            await rows.idle()
            await disk.flush()

        try:
            with av.open(str(clip)) as src:
                v = src.streams.video[0]
                fan.publish(StreamInfo.from_container(src, 1))
                packets = [p for p in src.demux(v) if p.size]
                assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 15, 30]

                def publish(i: int) -> None:
                    p = packets[i]
                    fan.publish(MediaPacket("video", p.pts, p.dts, p.time_base, p.is_keyframe, 1000.0 + i / 15, 1, p))

                for i in range(16):  # the first GOP and the keyframe after it
                    publish(i)
                path = gw.services.media_dir / (rec.open_segment or "")
                await written()
                assert frames(path) == 15
                for i in range(16, 30):  # the rest of the second GOP: not a fragment yet
                    publish(i)
                await written()
                assert frames(path) == 15
                publish(30)
                await written()
                assert frames(path) == 30
                for i in range(31, len(packets)):
                    publish(i)
            await rec.stop()
            assert frames(path) == len(packets)
        finally:
            await disk.stop()
            await rows.stop()


async def test_the_disk_writer_never_waits_for_the_event_loop(tmp_path: Path, make_config) -> None:  # type: ignore[no-untyped-def]
    """The writer thread writes every camera's files: if it waited for the event loop for a
    segment's rows, a busy loop would stall them all. With the loop blocked, camera a
    rotates (its rows need the loop) and camera b's next fragment must still reach the disk."""
    import threading

    from streams.fanout import StreamInfo
    from streams.recorder import CameraRecorder
    from streams.segment_rows import SegmentRows
    from tests.conftest import running
    from tests.waiting import wait_for_blocking

    clip = make_clip(tmp_path / "c.mp4", seconds=3, fps=15, profile="high")  # a keyframe every 15 frames
    async with running(make_config()) as gw:
        core = gw.services
        disk = DiskWriter(interval_s=0.05)
        disk.start()
        rows = SegmentRows(db=core.db, bus=core.bus, alerts=core.alerts, metrics=core.metrics)
        rows.start()
        cams: dict[str, tuple[Fanout, CameraRecorder, list[av.Packet]]] = {}
        sources = []
        try:
            for name, segment_s in (("a", 0.5), ("b", 60)):  # a rotates on every keyframe
                fan = Fanout(name)
                rec = CameraRecorder(name, fan, disk=disk, rows=rows, metrics=core.metrics, media_dir=core.media_dir, segment_s=segment_s)
                rec.start()
                src = av.open(str(clip))  # packets of their own: the recorder muxes the very packet objects
                sources.append(src)
                fan.publish(StreamInfo.from_container(src, 1))
                cams[name] = (fan, rec, [p for p in src.demux(src.streams.video[0]) if p.size])

            def publish(name: str, frames: range) -> None:
                fan, _, packets = cams[name]
                for i in frames:
                    p = packets[i]
                    fan.publish(MediaPacket("video", p.pts, p.dts, p.time_base, p.is_keyframe, 1000.0 + i / 15, 1, p))

            for name in cams:
                publish(name, range(16))  # first segment open, its first fragment written
            await disk.flush()
            await rows.idle()
            await disk.flush()
            b_file = core.media_dir / (cams["b"][1].open_segment or "")
            size = b_file.stat().st_size
            written, release = threading.Event(), threading.Event()

            def while_the_loop_is_busy() -> None:
                try:
                    publish("a", range(16, 31))  # a rotates: closes its segment, opens one (rows: the loop)
                    publish("b", range(16, 31))  # b: one more fragment to write
                    wait_for_blocking(lambda: b_file.stat().st_size > size, 10, "camera b's fragment on disk while the loop is busy")
                    written.set()
                finally:
                    release.set()

            threading.Thread(target=while_the_loop_is_busy).start()
            release.wait(30)  # the event loop, blocked: no row can be written meanwhile
            assert written.is_set(), "the writer waited for the event loop"
            for _, rec, _ in cams.values():
                await rec.stop()
        finally:
            await disk.stop()
            await rows.stop()
            for src in sources:
                src.close()
