"""The camera simulator against FFmpeg's RTSP client (PyAV) and against the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from drivers.camera.source import url_with_credentials
from simulators.media import make_clip
from simulators.rtsp.server import serve_cameras
from tests.cameras.conftest import camera_config, wait_for
from tests.conftest import running


def read(url: str, transport: str, frames: int = 20) -> tuple[str, int, int]:
    with av.open(url, options={"rtsp_transport": transport}, timeout=(5, 5)) as c:
        v = c.streams.video[0]
        n = 0
        for f in c.decode(v):
            n += 1
            if n >= frames:
                return str(v.codec_context.profile), f.width, n
    return "", 0, n


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_ffmpeg_plays_files_and_pattern_with_digest_auth(tmp_path: Path, transport: str) -> None:
    import asyncio

    clip = make_clip(tmp_path / "high.mp4", seconds=2, profile="high")
    server = await serve_cameras({"file": clip, "pattern": "pattern:main:320x240:15"}, port=0, username="admin", password="s3cret")
    try:
        # FFmpeg takes credentials in the URL; the gateway's configuration never does
        auth = lambda p: url_with_credentials(server.url(p), "admin", "s3cret")  # noqa: E731
        assert await asyncio.to_thread(read, auth("file"), transport) == ("High", 320, 20)
        assert await asyncio.to_thread(read, auth("pattern"), transport) == ("Main", 320, 20)
        with pytest.raises(av.error.HTTPUnauthorizedError):
            await asyncio.to_thread(read, url_with_credentials(server.url("file"), "admin", "wrong"), transport)
        with pytest.raises(av.error.FFmpegError):
            await asyncio.to_thread(read, auth("nope"), transport)
    finally:
        await server.close()


async def test_stall_triggers_watchdog_restart_and_a_recorded_gap(tmp_path: Path, make_config: Any) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=3, profile="high")
    server = await serve_cameras({"a": clip, "b": clip}, port=0)
    try:
        cfg = camera_config(make_config, {"cam1": server.url("a"), "cam2": server.url("b")}, segment_s=2, stall_s=2)
        async with running(cfg) as r:
            area = r.areas.cameras
            await wait_for(lambda: all(c.session.state == "online" for c in area.cameras.values()), 20, "both online")
            server.stall("a", 6)
            await wait_for(lambda: area.cameras["cam1"].session.state == "offline", 15, "cam1 offline after stall")
            assert area.cameras["cam2"].session.state == "online"  # one camera's trouble stays its own
            await wait_for(lambda: area.cameras["cam1"].session.state == "online", 20, "cam1 back online")
            h = await r.login()
            metrics = (await r.client.get("/metrics", headers=h)).text
            # the stall is ended by FFmpeg's read timeout or by the watchdog, whichever fires first
            assert 'gateway_camera_connects_total{camera="cam1",outcome="offline"}' in metrics
            await wait_for(lambda: _gaps(r, h), 20, "a gap row for cam1")
    finally:
        await server.close()


async def _gaps(r: Any, h: dict[str, str]) -> list[Any]:
    rows = (await r.client.get("/api/recordings", params={"camera_id": "cam1"}, headers=h)).json()
    # from the last frame before the 6 s stall to the first after it
    return [x for x in rows if x["kind"] == "gap" and x["duration_s"] > 5]


async def test_scenario_player_serves_each_camera_on_one_port(tmp_path: Path) -> None:
    import asyncio

    from simulators.camera import play
    from simulators.scenario import ScenarioContext
    from tests.conftest import free_port

    clip = make_clip(tmp_path / "c.mp4", seconds=2, profile="high")
    port = free_port()
    ctx = ScenarioContext(gateway_url="http://127.0.0.1:1", mqtt_url=None, speed=1, seed=1, rtsp_port=port)
    tasks = [asyncio.create_task(play({"kind": "camera", "id": cid, "params": {"source": str(clip)}}, ctx)) for cid in ("r1", "r2")]
    try:
        for cid in ("r1", "r2"):
            url = f"rtsp://127.0.0.1:{port}/{cid}"
            got = await wait_for(lambda u=url: _try_read(u), 20, f"{cid} served")
            assert got == ("High", 320, 20)
    finally:
        ctx.stop.set()
        await asyncio.gather(*tasks)


async def _try_read(url: str) -> Any:
    import asyncio

    try:
        return await asyncio.to_thread(read, url, "tcp")
    except av.error.FFmpegError:
        return None


def _raw_h264(size: tuple[int, int], frames: int) -> bytes:
    import time
    from fractions import Fraction

    from simulators.media import clock_frame

    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = size[0], size[1], "yuv420p", Fraction(1, 15)
    ctx.options = {"profile": "high", "bf": "0", "g": "15", "preset": "superfast", "tune": "zerolatency"}
    out = b""
    for i in range(frames):
        f = av.VideoFrame.from_ndarray(clock_frame(time.time(), i, size), format="bgr24").reformat(format="yuv420p")
        f.pts = i
        out += b"".join(bytes(p) for p in ctx.encode(f))
    return out + b"".join(bytes(p) for p in ctx.encode(None))


async def test_resolution_change_mid_stream_keeps_recording(tmp_path: Path, make_config: Any) -> None:
    """320x240 then 640x360 in one stream (new SPS in-band): recording goes on, both decode."""
    from sqlalchemy import select

    from gateway.db.models import Recording

    raw = tmp_path / "change.h264"
    raw.write_bytes(_raw_h264((320, 240), 30) + _raw_h264((640, 360), 30))
    server = await serve_cameras({"rc": raw}, port=0)
    try:
        async with running(camera_config(make_config, {"cam1": server.url("rc")}, segment_s=2)) as r:
            async def both_sizes() -> bool:
                async with r.services.db.session() as s:
                    rows = (await s.scalars(select(Recording).where(Recording.kind == "segment", Recording.sha256.is_not(None)))).all()
                widths: set[int] = set()
                for row in rows:
                    with av.open(str(r.services.media_dir / row.path)) as c:
                        widths |= {f.width for f in c.decode(video=0)}
                return widths == {320, 640}

            await wait_for(both_sizes, 30, "segments holding both resolutions, all decodable")
            assert r.areas.cameras.cameras["cam1"].session.state == "online"
    finally:
        await server.close()


async def test_bad_requests_get_clear_errors(tmp_path: Path, make_config: Any) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=2, profile="high")
    server = await serve_cameras({"a": clip}, port=0)
    try:
        async with running(camera_config(make_config, {"cam1": server.url("a")})) as r:
            area = r.areas.cameras
            await wait_for(lambda: area.cameras["cam1"].session.state == "online", 20, "online")
            h = await r.login()
            url = "/api/cameras/cam1/whep"
            assert (await r.client.post(url, content="v=0", headers={**h, "Content-Type": "text/plain"})).status_code == 415
            assert (await r.client.post(url, content="hello", headers={**h, "Content-Type": "application/sdp"})).status_code == 400
            assert (await r.client.post("/api/cameras/zz/whep", content="v=0\r\n", headers={**h, "Content-Type": "application/sdp"})).status_code == 404
            assert (await r.client.delete("/api/cameras/cam1/whep/nope", headers=h)).status_code == 404
            # an offer without any H.264 format that can carry a High stream: refused, not transcoded
            vp8_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n"
            resp = await r.client.post(url, content=vp8_only, headers={**h, "Content-Type": "application/sdp"})
            assert resp.status_code == 400 and "H.264" in resp.json()["detail"]
            monitor = await r.login(username="mon", role="monitor")
            started = await r.client.post("/api/proceedings", json={"camera_ids": ["cam1"], "kind": "talk"}, headers=monitor)
            assert started.status_code == 403
            assert (await r.client.get("/api/proceedings/12345", headers=h)).status_code == 404
            assert (await r.client.post("/api/proceedings/12345/stop", headers=h)).status_code == 404
            assert (await r.client.get("/api/recordings", params={"since": "not-a-date"}, headers=h)).status_code == 422
    finally:
        await server.close()


async def _states_seen(cam: str, suffix: str, accept_live: bool) -> list[tuple[bytes, bool]]:
    """(payload, retained) of what a fresh subscriber to the camera's state topic receives,
    once it has seen `online` retained (or, with accept_live, live)."""
    import queue

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: queue.Queue[tuple[bytes, bool]] = queue.Queue()
    seen: list[tuple[bytes, bool]] = []
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{cam}-{suffix}")
    sub.on_message = lambda c, u, m: got.put((bytes(m.payload), bool(m.retain)))
    sub.connect("127.0.0.1", 1883)
    sub.subscribe(f"gateway/devices/{cam}/state", qos=1)
    sub.loop_start()

    def online() -> bool:
        while not got.empty():
            seen.append(got.get())
        return (b"online", True) in seen or (accept_live and (b"online", False) in seen)

    try:
        await wait_for(online, 30, "the online state on MQTT")
    finally:
        sub.loop_stop()
        sub.disconnect()
    return seen


async def test_camera_state_is_published_retained_on_mqtt(tmp_path: Path, make_config: Any, mqtt_url: str) -> None:
    import secrets

    clip = make_clip(tmp_path / "c.mp4", seconds=2, profile="high")
    server = await serve_cameras({"a": clip}, port=0)
    cam = f"cam-{secrets.token_hex(3)}"
    cfg = camera_config(make_config, {cam: server.url("a")})
    cfg.mqtt.url = mqtt_url
    cfg.gateway.node_id = f"t{secrets.token_hex(3)}"
    try:
        async with running(cfg) as r:
            await wait_for(lambda: r.areas.cameras.cameras[cam].session.state == "online", 20, "online")
            # The state is published once the core has stored it, which may be before or after a
            # subscriber arrives (a message that arrives live carries retain=0): a subscriber that
            # comes after it has been published must get it as retained.
            seen = await _states_seen(cam, "first", accept_live=True)
            if (b"online", True) not in seen:
                seen = await _states_seen(cam, "late", accept_live=False)
            assert (b"online", True) in seen  # retained: what a late subscriber gets
    finally:
        await server.close()


async def test_stagger_starts_each_path_at_its_own_offset_and_all_still_play(tmp_path: Path) -> None:
    import asyncio

    clip = make_clip(tmp_path / "c.mp4", seconds=2, profile="high")
    server = await serve_cameras({f"c{i}": clip for i in range(6)}, port=0, stagger_s=0.5)
    try:
        offsets = [p.offset_s for p in server.paths.values()]
        assert all(0 <= o <= 0.5 for o in offsets) and len(set(offsets)) == 6
        for name in ("c0", "c5"):
            assert await asyncio.to_thread(read, server.url(name), "tcp") == ("High", 320, 20)
    finally:
        await server.close()
    server = await serve_cameras({"a": clip, "b": clip}, port=0)
    try:
        assert [p.offset_s for p in server.paths.values()] == [0.0, 0.0]  # default: in step
    finally:
        await server.close()
