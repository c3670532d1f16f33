"""A session party as a program: an aiortc peer sending a picture (a real photo from
../shared/data/faces, letterboxed as a camera frame) and a tone, and keeping the composite
it receives. The picture can be changed mid-session (someone else sits down)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

FPS = 10


class Picture(MediaStreamTrack):
    kind = "video"

    def __init__(self, rgb: np.ndarray) -> None:
        super().__init__()
        self.rgb = rgb
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        self._n += 1
        await asyncio.sleep(max(0.0, self._t0 + self._n / FPS - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(self.rgb, format="rgb24")
        frame.pts, frame.time_base = self._n * 9000, fractions.Fraction(1, 90000)
        return frame


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, hz: float) -> None:
        super().__init__()
        self.hz = hz
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        await asyncio.sleep(max(0.0, self._t0 + self._n * 0.02 - time.monotonic()))
        t = (np.arange(960) + self._n * 960) / 48000
        pcm = (3000 * np.sin(2 * math.pi * self.hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, self._n * 960, fractions.Fraction(1, 48000)
        self._n += 1
        return frame


class Party:
    def __init__(self, rgb: np.ndarray, hz: float = 440.0) -> None:
        self.picture = Picture(rgb)
        self.tone = Tone(hz)
        self.pc = RTCPeerConnection()
        self.composites = 0
        self.last: np.ndarray | None = None
        self.audio_frames = 0
        self._readers: list[asyncio.Task[None]] = []
        self.answer: dict[str, Any] = {}

    async def join(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
        self.pc.addTrack(self.picture)
        self.pc.addTrack(self.tone)

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self._readers.append(asyncio.ensure_future(self._read(track)))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await client.post(path, json={"sdp": self.pc.localDescription.sdp}, headers=headers)
        if r.status_code == 200:
            self.answer = r.json()
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer["sdp"], type="answer"))
        return r

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.composites += 1
                    self.last = frame.to_ndarray(format="rgb24")
                else:
                    self.audio_frames += 1

    async def close(self) -> None:
        for t in self._readers:
            t.cancel()
        await self.pc.close()
