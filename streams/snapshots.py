"""Snapshots: decode only the latest keyframe onward (never the whole stream), cached."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import av
import cv2


class NoPicture(Exception):
    pass


def decode_latest(codec: str, extradata: bytes, gop: list[Any]) -> bytes:
    """JPEG of the newest frame decodable from a keyframe and what followed it."""
    if not gop:
        raise NoPicture("no keyframe received yet")
    ctx: Any = av.CodecContext.create(codec, "r")  # a video decoder: the stubs type it as the base class
    if extradata:
        ctx.extradata = extradata
    frame = None
    for p in gop:
        for f in ctx.decode(av.Packet(p.data)):
            frame = f
    for f in ctx.decode(None):
        frame = f
    if frame is None:
        raise NoPicture("the latest keyframe did not decode")
    ok, jpg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise NoPicture("JPEG encoding failed")
    return bytes(jpg)


class Snapshots:
    def __init__(self, area: Any, max_age_s: float = 1.0) -> None:
        self.area = area
        self.max_age_s = max_age_s
        self._cache: dict[str, tuple[float, bytes]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self, camera_id: str) -> None:
        """The camera was replaced: its cached picture is the old connection's."""
        self._cache.pop(camera_id, None)

    async def jpeg(self, camera_id: str) -> bytes:
        fan = self.area.fanout(camera_id)
        if fan is None:
            raise KeyError(camera_id)
        lock = self._locks.setdefault(camera_id, asyncio.Lock())
        async with lock:  # many viewers asking at once decode once
            hit = self._cache.get(camera_id)
            if hit and time.monotonic() - hit[0] < self.max_age_s:
                return hit[1]
            info, gop = fan.info, list(fan.last_keyframe)
            if info is None:
                raise NoPicture("the camera has not connected yet")
            # decode at most ~half a second after the keyframe: a snapshot needs a recent frame, not all of them
            jpg = await asyncio.to_thread(decode_latest, info.codec, info.extradata, gop[:8] if len(gop) > 8 else gop)
            self._cache[camera_id] = (time.monotonic(), jpg)
            return jpg
