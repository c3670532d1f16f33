"""A remote-session party as a program: an aiortc peer that sends a picture (a photo,
letterboxed as a 640x480 camera frame) at 10 fps and a tone, and receives the session's
composite and mix. The tests and the bench use it; testers join a session with it:

    python -m simulators.call_party 'http://gateway:8080/call#<token>' --photo face.jpg

The picture can be changed while it plays (someone else sits down: `party.picture.rgb = ...`),
and `on_send` may draw on each frame before it goes (the bench stamps a counter in it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from PIL import Image

FPS = 10


def letterboxed(photo: Path, width: int = 640, height: int = 480) -> np.ndarray:
    """The photo (RGB, read as face_recognition reads it) scaled into width x height on grey."""
    import cv2

    rgb = np.array(Image.open(photo).convert("RGB"))
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    small = cv2.resize(rgb, (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, np.uint8)
    y0, x0 = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return canvas


class Paced(MediaStreamTrack):
    """Frames at a steady rate from the first `recv`."""

    def __init__(self, period_s: float) -> None:
        super().__init__()
        self.period_s = period_s
        self.n = 0
        self._t0: float | None = None

    async def tick(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        self.n += 1
        await asyncio.sleep(max(0.0, self._t0 + (self.n - 1) * self.period_s - time.monotonic()))
        return self.n


class Picture(Paced):
    kind = "video"

    def __init__(self, rgb: np.ndarray, on_send: Callable[[int, np.ndarray], np.ndarray] | None = None, fps: int = FPS) -> None:
        super().__init__(1 / fps)
        self.rgb, self.on_send, self.fps = rgb, on_send, fps

    async def recv(self) -> av.VideoFrame:
        n = await self.tick()
        picture = self.on_send(n, self.rgb) if self.on_send is not None else self.rgb
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts, frame.time_base = n * (90000 // self.fps), fractions.Fraction(1, 90000)
        return frame


class Tone(Paced):
    kind = "audio"

    def __init__(self, hz: float) -> None:
        super().__init__(0.02)
        self.hz = hz

    async def recv(self) -> av.AudioFrame:
        n = await self.tick() - 1
        t = (np.arange(960) + n * 960) / 48000
        pcm = (3000 * np.sin(2 * math.pi * self.hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, n * 960, fractions.Fraction(1, 48000)
        return frame


async def consume(track: MediaStreamTrack, on_frame: Callable[[Any], None]) -> None:
    with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
        while True:
            on_frame(await track.recv())


class Party:
    """One party: `join` posts the offer where the party may (the officer's, a link's or a
    kiosk's join route) and applies the answer. `composites`, `audio_frames` and `last` (the
    newest composite, RGB) say what came back; `on_composite` sees each one."""

    def __init__(self, rgb: np.ndarray, hz: float = 440.0, on_send: Callable[[int, np.ndarray], np.ndarray] | None = None,
                 on_composite: Callable[[av.VideoFrame], None] | None = None) -> None:
        self.picture = Picture(rgb, on_send)
        self.tone = Tone(hz)
        self.pc = RTCPeerConnection()
        self.on_composite = on_composite
        self.composites = 0
        self.audio_frames = 0
        self.last: np.ndarray | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.pc.addTrack(self.picture)
        self.pc.addTrack(self.tone)

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self._readers.append(asyncio.ensure_future(consume(track, self._video if track.kind == "video" else self._audio)))

    def _video(self, frame: av.VideoFrame) -> None:
        self.composites += 1
        if self.on_composite is not None:
            self.on_composite(frame)
        else:
            self.last = frame.to_ndarray(format="rgb24")

    def _audio(self, frame: av.AudioFrame) -> None:
        self.audio_frames += 1

    async def join(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await client.post(path, json={"sdp": self.pc.localDescription.sdp}, headers=headers)
        if r.status_code == 200:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=r.json()["sdp"], type="answer"))
        return r

    async def close(self) -> None:
        for t in self._readers:
            t.cancel()
        await self.pc.close()


async def _play(link: str, photo: Path, seconds: float | None) -> int:
    base, _, token = link.partition("#")
    base = base.rsplit("/call", 1)[0]
    party = Party(letterboxed(photo))
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await party.join(client, "/api/call-link/join", {"X-Call-Token": token})
        if r.status_code != 200:
            print(f"refused: {r.status_code} {r.text}", file=sys.stderr)
            return 1
        print(f"joined session {r.json()['session_id']} as party {r.json()['party_id']}; Ctrl-C to leave")
        try:
            started = time.monotonic()
            while seconds is None or time.monotonic() - started < seconds:
                await asyncio.sleep(1)
                print(f"\r{party.composites} composites received, {party.pc.connectionState}   ", end="", flush=True)
        finally:
            print()
            await party.close()
            await client.post("/api/call-link/leave", headers={"X-Call-Token": token})
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m simulators.call_party", description="Join a remote video session with a join link, playing a photo.")
    p.add_argument("link", help="the join link the officer got (http://.../call#token)")
    p.add_argument("--photo", type=Path, required=True, help="the picture the party's camera shows")
    p.add_argument("--seconds", type=float, default=None, help="leave after this long (default: until Ctrl-C)")
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_play(args.link, args.photo, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
