"""Live sessions are bounded: per camera and per user (one monitor had opened 150 WHEP
sessions in 4.5 s, 300 UDP sockets), a session whose browser never connects is closed,
and a session can be closed only by its owner (or an admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection

from simulators.media import make_clip
from simulators.rtsp.server import serve_cameras
from tests.cameras.conftest import wait_for
from tests.conftest import running

REC = {"segment_s": 60, "stall_s": 3, "open_timeout_s": 3, "backoff_max_s": 1, "retention_check_s": 3600, "min_free_bytes": 0,
       "live_max_per_camera": 3, "live_max_per_user": 2, "live_connect_s": 600}


async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_live_sessions_are_capped_and_owned(tmp_path: Path, make_config: Any) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=2, size=(320, 240), profile="baseline")
    server = await serve_cameras({"a": clip}, port=0)
    peers: list[RTCPeerConnection] = []
    try:
        cfg = make_config(recording=REC, devices=[{"id": "cam1", "kind": "camera", "url": server.url("a"), "record": False}])
        async with running(cfg) as r:
            live = r.areas.cameras.live
            mon1, mon2, admin = await r.login("mon1", role="monitor"), await r.login("mon2", role="monitor"), await r.login()
            await wait_for(lambda: live.area.fanout("cam1").info is not None, 30, "the camera connected")

            async def whep(h: dict[str, str]) -> Any:
                pc, sdp = await _offer()
                peers.append(pc)
                return await r.client.post("/api/cameras/cam1/whep", content=sdp, headers={**h, "Content-Type": "application/sdp"})

            first, second, third = [await whep(mon1) for _ in range(3)]
            assert [first.status_code, second.status_code] == [201, 201]
            assert third.status_code == 429 and "mon1" in third.text  # two per user
            assert (await whep(mon2)).status_code == 201
            full = await whep(admin)
            assert full.status_code == 429 and "cam1" in full.text  # three per camera

            # someone else's session is not theirs to close; its owner's it is
            loc = first.headers["location"]
            assert (await r.client.delete(loc, headers=mon2)).status_code == 404
            assert len(live.sessions) == 3
            assert (await r.client.delete(loc, headers=mon1)).status_code == 200
            assert (await whep(mon1)).status_code == 201  # the place is free again
    finally:
        for pc in peers:
            await pc.close()
        await server.close()


async def test_a_session_whose_browser_never_connects_is_closed(tmp_path: Path, make_config: Any) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=2, size=(320, 240), profile="baseline")
    server = await serve_cameras({"a": clip}, port=0)
    pc = None
    try:
        rec = {**REC, "live_max_per_user": 1, "live_connect_s": 1}
        cfg = make_config(recording=rec, devices=[{"id": "cam1", "kind": "camera", "url": server.url("a"), "record": False}])
        async with running(cfg) as r:
            live = r.areas.cameras.live
            h = await r.login("mon1", role="monitor")
            await wait_for(lambda: live.area.fanout("cam1").info is not None, 30, "the camera connected")
            pc, sdp = await _offer()
            res = await r.client.post("/api/cameras/cam1/whep", content=sdp, headers={**h, "Content-Type": "application/sdp"})
            assert res.status_code == 201
            # the answer is never applied by the viewer: nothing connects, and the session goes
            await wait_for(lambda: not live.sessions, 30, "the unconnected session closed")
            again = await r.client.post("/api/cameras/cam1/whep", content=sdp, headers={**h, "Content-Type": "application/sdp"})
            assert again.status_code == 201  # its place (one per user here) is free again
    finally:
        if pc is not None:
            await pc.close()
        await server.close()
