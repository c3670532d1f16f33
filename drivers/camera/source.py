"""Transport: one PyAV RTSP connection, demuxed in a thread, packets into a Fanout.

`run_once` blocks until the connection ends and returns why; the session decides when to
try again. Credentials go into the URL only here, for FFmpeg (which does basic and digest
auth itself), and are never logged.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import av

from streams.fanout import Fanout, MediaPacket, SourceDown, StreamInfo

log = logging.getLogger(__name__)


class Flag:
    """A stop flag read on every packet: a plain attribute, where `threading.Event.is_set`
    would be a Python call per packet. Nobody waits on it."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False

    def set(self) -> None:
        self.on = True

    def clear(self) -> None:
        self.on = False


@dataclass
class Outcome:
    state: str  # "offline" | "auth_failed" | "unreachable" | "stopped"
    detail: str
    packets: int


@dataclass
class Stats:
    """Updated by the demux thread, read by the session (plain attribute writes are atomic)."""

    last_packet: float = 0.0
    last_keyframe: float = 0.0
    frames: int = 0
    bytes: int = 0
    connected: bool = False


def url_with_credentials(url: str, username: str | None, password: str | None) -> str:
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{quote(username, safe='')}:{quote(password or '', safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _time_base(stream: Any) -> Fraction:
    tb = stream.time_base
    return tb if tb is not None else Fraction(1, 90000)  # RTP's video clock: never None once demuxing


def classify(err: Exception) -> tuple[str, str]:
    """(state, detail) of a failed connection, by the error's type first, then by its
    message alone: FFmpeg's errors carry the URL too, and a port such as 40123 once read
    as an HTTP 401."""
    text = str(err)
    if isinstance(err, (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError, PermissionError)):
        return "auth_failed", "the camera refused the credentials (401)"
    if isinstance(err, (ConnectionRefusedError, TimeoutError)):
        return "unreachable", text[:200]
    message = (getattr(err, "strerror", None) or text).lower()
    if re.search(r"\b40[13]\b", message) or "unauthorized" in message or "forbidden" in message:
        return "auth_failed", "the camera refused the credentials (401)"
    if any(s in message for s in ("connection refused", "timed out", "no route", "name or service", "network is unreachable", "immediate exit")):
        return "unreachable", text[:200]
    return "offline", text[:200]


class RtspSource:
    def __init__(self, camera_id: str, url: str, transport: str, fanout: Fanout,
                 username: str | None = None, password: str | None = None,
                 open_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> None:
        self.camera_id = camera_id
        self.url = url
        self._full_url = url_with_credentials(url, username, password)
        self.transport = transport
        self.fanout = fanout
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.stats = Stats()
        self.abort = Flag()  # set by the watchdog or on stop
        self.generation = 0

    def run_once(self) -> Outcome:
        """Connect, demux until the stream ends, stalls or is aborted. Blocking (run in a thread)."""
        self.generation += 1
        gen = self.generation
        packets = 0
        try:
            container = av.open(
                self._full_url,
                options={"rtsp_transport": self.transport, "timeout": str(int(self.read_timeout_s * 1e6)),
                         "allowed_media_types": "video+audio", "fflags": "nobuffer"},
                # Reads are bounded by FFmpeg's own socket timeout (the "timeout" option
                # above), not by PyAV's read timeout: that one is a Python callback taking
                # the GIL on every I/O call, much of a camera's demux CPU (docs/cameras.md).
                timeout=(self.open_timeout_s, None),
            )
        except Exception as e:  # av.error.* for every network/auth failure
            state, detail = classify(e)
            return Outcome(state, self._redact(detail), 0)
        try:
            if not container.streams.video:
                return Outcome("offline", "the stream has no video", 0)
            v = container.streams.video[0]
            a = container.streams.audio[0] if container.streams.audio else None
            if not (v.codec_context.width and v.codec_context.height):
                # FFmpeg's probe saw no frame (a camera that accepts the session but sends
                # nothing yet): with 0x0 no muxer accepts the stream, so try again instead.
                return Outcome("offline", "the camera sent no picture", 0)
            info = StreamInfo.from_container(container, gen)
            self.fanout.publish(info)
            wanted = [v] + ([a] if a is not None and info.audio_template is not None else [])
            last = {v.index: -1, **({a.index: -1} if a is not None else {})}
            # one Fraction each, not one per packet
            tbs: dict[int, Fraction] = {v.index: _time_base(v), **({a.index: _time_base(a)} if a is not None else {})}
            stats = self.stats
            stats.connected = True
            abort, publish, clock = self.abort, self.fanout.publish, time.time
            vindex = v.index
            # Per packet, only what the fan-out needs: this loop runs for every packet of
            # every camera, and with dozens of cameras its interpreter time is most of what
            # recording costs beyond FFmpeg's own.
            for p in container.demux(wanted):
                if abort.on:
                    return Outcome("stopped" if self._stopping else "offline", "stopped" if self._stopping else "stalled", packets)
                size = p.size
                if size == 0:
                    continue
                # RTP gives no pts until RTCP sync and no dts at all: keep them present and increasing.
                index = p.stream_index
                prev = last[index]
                pts = p.pts
                if pts is None:
                    pts = prev + 1
                dts = p.dts
                if dts is None:
                    dts = pts
                if dts <= prev:
                    dts = prev + 1
                if pts < dts:
                    pts = dts
                last[index] = dts
                now = clock()
                key = p.is_keyframe
                if index == vindex:
                    stats.frames += 1
                    stats.bytes += size
                    if key:
                        stats.last_keyframe = now
                    publish(MediaPacket("video", pts, dts, tbs[index], key, now, gen, p))
                else:
                    publish(MediaPacket("audio", pts, dts, tbs[index], key, now, gen, p))
                stats.last_packet = now
                packets += 1
            return Outcome("offline", "the camera ended the stream", packets)
        except Exception as e:
            state, detail = classify(e)
            return Outcome(state if packets == 0 else "offline", self._redact(detail), packets)
        finally:
            self.stats.connected = False
            self.fanout.publish(SourceDown(time.time(), "disconnected"))
            try:
                container.close()
            except Exception:
                log.debug("closing %s", self.camera_id, exc_info=True)

    _stopping = False

    def _redact(self, text: str) -> str:
        """FFmpeg's messages quote the URL: never let the password reach logs or events."""
        return text.replace(self._full_url, self.url)

    def stop(self) -> None:
        self._stopping = True
        self.abort.set()
