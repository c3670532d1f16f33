"""RTSP server for simulated cameras: DESCRIBE/SETUP/PLAY/TEARDOWN, TCP interleaved and UDP,
optional digest (or basic) auth, several paths on one port.

A path plays a `FileSource` (an H.264 MP4/Annex B file, looped, packets sent as stored: no
encoding, so dozens of cameras fit on one machine) or a `PatternSource` (libx264 of a chosen
profile, a visible clock burned in, for latency measurements). Each path is read once and
fanned out to all its clients, which join at the next keyframe. `stall(path, s)` keeps the
connections open but sends nothing; `drop(path)` closes them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
import secrets
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from simulators.rtsp.h264 import (
    AccessUnit,
    parameter_sets,
    rtp_packets,
    sdp_fmtp,
    split_annexb,
    split_avcc,
)

log = logging.getLogger(__name__)


class FileSource:
    """Access units of an H.264 file, read once into memory and looped."""

    def __init__(self, path: Path | str, fps: float = 15) -> None:
        raw = str(path).endswith((".h264", ".264"))
        with av.open(str(path), format="h264" if raw else None) as c:
            v = c.streams.video[0]
            rate = float(v.average_rate or fps) if not raw else fps  # raw H.264 carries no timestamps
            self.params, size_len = parameter_sets(bytes(v.codec_context.extradata or b""))
            aus: list[AccessUnit] = []
            first = None
            for p in c.demux(v):
                if p.size == 0 or (p.pts is None and not raw):
                    continue
                data = bytes(p)
                nals = split_avcc(data, size_len) if size_len else split_annexb(data)
                if not self.params:
                    self.params = [n for n in nals if n[0] & 0x1F in (7, 8)]
                t = float(p.pts * p.time_base) if p.pts is not None else len(aus) / rate
                first = t if first is None else first
                aus.append(AccessUnit(tuple(nals), t - first, bool(p.is_keyframe)))
        if not aus or not aus[0].keyframe:
            raise ValueError(f"{path}: no H.264 video starting with a keyframe")
        step = (aus[-1].ts / (len(aus) - 1)) if len(aus) > 1 else 0.04
        self.aus = aus
        self.period = aus[-1].ts + step

    async def units(self) -> Any:
        loop = 0
        while True:
            for au in self.aus:
                yield AccessUnit(au.nals, au.ts + loop * self.period, au.keyframe)
            loop += 1


class PatternSource:
    """A generated pattern with a clock, encoded live (libx264, chosen profile, no B-frames)."""

    def __init__(self, profile: str = "high", size: tuple[int, int] = (320, 240), fps: int = 15, gop: int | None = None) -> None:
        from simulators.media import PROFILES

        self.fps, self.size = fps, size
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = size[0], size[1], "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.framerate = Fraction(fps, 1)
        ctx.options = {"profile": PROFILES[profile], "bf": "0", "g": str(gop or fps), "preset": "ultrafast" if profile == "baseline" else "superfast",
                       "tune": "zerolatency", "sc_threshold": "0"}
        self.ctx = ctx
        self.n = 0
        first = self._encode(time.time())
        self.params = [n for n in first.nals if n[0] & 0x1F in (7, 8)]
        self._pending: AccessUnit | None = first

    def _encode(self, t: float) -> AccessUnit:
        from simulators.media import clock_frame

        frame = av.VideoFrame.from_ndarray(clock_frame(t, self.n, self.size), format="bgr24").reformat(format="yuv420p")
        frame.pts = self.n
        self.n += 1
        nals: list[bytes] = []
        key = False
        for p in self.ctx.encode(frame):
            nals += split_annexb(bytes(p))
            key = key or bool(p.is_keyframe)
        return AccessUnit(tuple(nals), (self.n - 1) / self.fps, key)

    async def units(self) -> Any:
        if self._pending is not None:
            yield self._pending
            self._pending = None
        while True:
            # the clock shows the time the frame is due on the wire, for latency measurements
            t = time.time()
            yield await asyncio.to_thread(self._encode, t)


class Path_:
    """One served path: a source read once, its clients, stall/drop state."""

    def __init__(self, name: str, source: Any, offset_s: float = 0.0) -> None:
        self.name = name
        self.source = source
        self.offset_s = offset_s
        self.clients: set["Session"] = set()
        self.stalled_until = 0.0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        if self.offset_s:
            await asyncio.sleep(self.offset_s)
        start = time.monotonic()
        async for au in self.source.units():
            delay = start + au.ts - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -2:  # fell far behind (machine busy): skip ahead rather than burst
                start = time.monotonic() - au.ts
            if time.monotonic() < self.stalled_until:
                continue
            for c in list(self.clients):
                c.send(au)


class Session:
    def __init__(self, server: "CameraServer", writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.id = secrets.token_hex(8)
        self.path: Path_ | None = None
        self.tcp_channel: int | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.udp_rtcp: asyncio.DatagramTransport | None = None
        self.udp_dest: tuple[str, int] | None = None
        self.seq = random.randint(0, 0x7FFF)
        self.ssrc = random.getrandbits(32)
        self.ts_base = random.getrandbits(31)
        self.started = False  # waits for a keyframe
        self.dropped = 0

    def send(self, au: AccessUnit) -> None:
        if not self.started:
            if not au.keyframe:
                return
            self.started = True
        nals = au.nals
        if au.keyframe and self.path is not None and not any(n[0] & 0x1F == 7 for n in nals):
            nals = tuple(self.path.source.params) + nals  # parameter sets in-band too, as cameras do
        pkts, self.seq = rtp_packets(AccessUnit(nals, au.ts, au.keyframe), self.seq, self.ts_base + int(au.ts * 90000), self.ssrc)
        if self.tcp_channel is not None:
            if self.writer.transport.get_write_buffer_size() > 2_000_000:
                self.dropped += 1  # the client reads too slowly: drop rather than buffer without end
                self.started = False
                return
            self.writer.write(b"".join(b"$" + bytes((self.tcp_channel,)) + len(p).to_bytes(2, "big") + p for p in pkts))
        elif self.udp is not None and self.udp_dest is not None:
            for p in pkts:
                self.udp.sendto(p, self.udp_dest)

    def close(self) -> None:
        if self.path is not None:
            self.path.clients.discard(self)
        for t in (self.udp, self.udp_rtcp):
            if t is not None:
                t.close()
        self.writer.close()


class CameraServer:
    """The server. Use `serve_cameras(...)` to build and start one."""

    def __init__(self, paths: dict[str, Any], host: str = "127.0.0.1", port: int = 8554,
                 username: str | None = None, password: str | None = None, stagger_s: float = 0.0) -> None:
        # stagger: each path starts at its own random offset, so that its frames and
        # keyframes fall where an independent camera's would; without, every path sends
        # its frames in the same millisecond, which no real site does
        self.paths = {k.strip("/"): Path_(k.strip("/"), v, random.uniform(0, stagger_s)) for k, v in paths.items()}
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.realm = "gateway-sim"
        self.nonce = secrets.token_hex(16)
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[Session] = set()

    async def start(self) -> "CameraServer":
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        for p in self.paths.values():
            p.task = asyncio.create_task(p.run(), name=f"rtsp-path:{p.name}")
        return self

    def url(self, path: str) -> str:
        return f"rtsp://{self.host}:{self.port}/{path.strip('/')}"

    def add_path(self, name: str, source: Any) -> None:
        """Serve another path on the running server (a built source, see `make_source`)."""
        p = Path_(name.strip("/"), source)
        self.paths[p.name] = p
        p.task = asyncio.create_task(p.run(), name=f"rtsp-path:{p.name}")

    def remove_path(self, name: str) -> None:
        p = self.paths.pop(name.strip("/"), None)
        if p is not None:
            for c in list(p.clients):
                c.close()
            if p.task:
                p.task.cancel()

    def stall(self, path: str, seconds: float) -> None:
        """Keep connections open but send nothing for `seconds`."""
        self.paths[path.strip("/")].stalled_until = time.monotonic() + seconds

    def drop(self, path: str) -> None:
        """Close every connection playing `path`."""
        for s in list(self.paths[path.strip("/")].clients):
            s.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for s in list(self._sessions):
            s.close()
        for p in self.paths.values():
            if p.task:
                p.task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    # --- protocol ---------------------------------------------------------------
    def _authorized(self, method: str, headers: dict[str, str]) -> bool:
        if not self.username:
            return True
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                return base64.b64decode(auth[6:]).decode() == f"{self.username}:{self.password}"
            except Exception:
                return False
        if not auth.startswith("Digest "):
            return False
        fields = {}
        for part in auth[7:].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v.strip('"')
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731 - RFC 2617 is MD5
        ha1 = md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = md5(f"{method}:{fields.get('uri', '')}")
        return fields.get("username") == self.username and fields.get("nonce") == self.nonce and \
            fields.get("response") == md5(f"{ha1}:{self.nonce}:{ha2}")

    def _path_of(self, url: str) -> Path_ | None:
        rest = url.split("://", 1)[-1]
        path = rest.split("/", 1)[1] if "/" in rest else ""
        path = path.split("?")[0].strip("/")
        if path.endswith("trackID=0"):
            path = path[: -len("trackID=0")].strip("/")
        return self.paths.get(path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, writer)
        self._sessions.add(session)
        peer = writer.get_extra_info("peername")[0]
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # interleaved RTCP from the client: skip it
                    hdr = await reader.readexactly(3)
                    await reader.readexactly(int.from_bytes(hdr[1:3], "big"))
                    continue
                head = first + await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("utf-8", "replace").split("\r\n")
                method, url, _ = (lines[0].split(" ") + ["", ""])[:3]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                if int(headers.get("content-length", "0") or 0):
                    await reader.readexactly(int(headers["content-length"]))
                await self._handle(session, method, url, headers, peer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            session.close()
            self._sessions.discard(session)

    async def _handle(self, s: Session, method: str, url: str, h: dict[str, str], peer: str) -> None:
        cseq = h.get("cseq", "0")

        def reply(code: str, extra: dict[str, str] | None = None, body: str = "") -> None:
            lines = [f"RTSP/1.0 {code}", f"CSeq: {cseq}", "Server: gateway-sim"]
            lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
            if body:
                lines += ["Content-Length: " + str(len(body.encode()))]
            s.writer.write(("\r\n".join(lines) + "\r\n\r\n" + body).encode())

        if method == "OPTIONS":
            return reply("200 OK", {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"})
        if method in ("DESCRIBE", "SETUP", "PLAY") and not self._authorized(method, h):
            return reply("401 Unauthorized", {"WWW-Authenticate": f'Digest realm="{self.realm}", nonce="{self.nonce}"'})
        path = self._path_of(url)
        if method == "DESCRIBE":
            if path is None:
                return reply("404 Not Found")
            sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=gateway-sim\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n"
                   "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                   f"a=fmtp:96 {sdp_fmtp(path.source.params)}\r\na=control:trackID=0\r\n")
            return reply("200 OK", {"Content-Type": "application/sdp", "Content-Base": url.rstrip("/") + "/"}, sdp)
        if method == "SETUP":
            if path is None:
                return reply("404 Not Found")
            t = h.get("transport", "")
            s.path = path
            if "interleaved=" in t:
                ch = int(t.split("interleaved=")[1].split("-")[0].split(";")[0])
                s.tcp_channel = ch
                tr = f"RTP/AVP/TCP;unicast;interleaved={ch}-{ch + 1};ssrc={s.ssrc:08X}"
            elif "client_port=" in t:
                lo = int(t.split("client_port=")[1].split("-")[0].split(";")[0])
                loop = asyncio.get_running_loop()
                s.udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(self.host, 0))
                s.udp_rtcp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(self.host, 0))
                s.udp_dest = (peer, lo)
                sp = s.udp.get_extra_info("sockname")[1]
                sp2 = s.udp_rtcp.get_extra_info("sockname")[1]
                tr = f"RTP/AVP;unicast;client_port={lo}-{lo + 1};server_port={sp}-{sp2};ssrc={s.ssrc:08X}"
            else:
                return reply("461 Unsupported Transport")
            return reply("200 OK", {"Transport": tr, "Session": f"{s.id};timeout=60"})
        if method == "PLAY":
            if s.path is None:
                return reply("455 Method Not Valid in This State")
            reply("200 OK", {"Session": s.id, "Range": "npt=0.000-", "RTP-Info": f"url={url.rstrip('/')}/trackID=0;seq={s.seq};rtptime={s.ts_base}"})
            await s.writer.drain()
            s.path.clients.add(s)
            return None
        if method == "TEARDOWN":
            reply("200 OK", {"Session": s.id})
            await s.writer.drain()
            s.close()
            return None
        if method == "GET_PARAMETER":
            return reply("200 OK", {"Session": s.id})
        return reply("501 Not Implemented")


def make_source(spec: Any) -> Any:
    """A source from a spec: a FileSource/PatternSource, a file path, or "pattern[:profile[:WxH[:fps]]]"."""
    if not isinstance(spec, (str, Path)):
        return spec
    text = str(spec)
    if text.startswith("pattern"):
        bits = text.split(":")
        profile = bits[1] if len(bits) > 1 and bits[1] else "high"
        size = tuple(int(x) for x in bits[2].split("x")) if len(bits) > 2 else (320, 240)
        fps = int(bits[3]) if len(bits) > 3 else 15
        return PatternSource(profile, size, fps)  # type: ignore[arg-type]
    return FileSource(text)


async def serve_cameras(paths: dict[str, Any], port: int = 8554, host: str = "127.0.0.1",
                        username: str | None = None, password: str | None = None, stagger_s: float = 0.0) -> CameraServer:
    """Start an RTSP server on `host:port` serving each `paths` entry (name -> source spec,
    see `make_source`) at rtsp://host:port/<name>. Returns the running `CameraServer`
    (`.url(name)`, `.stall(name, s)`, `.drop(name)`, `await .close()`). With `username`,
    clients must authenticate (digest or basic). With `stagger_s`, each path starts at a
    random offset up to that many seconds. Runs on the calling event loop."""
    srcs = {}
    for name, spec in paths.items():
        srcs[name] = await asyncio.to_thread(make_source, spec)
    return await CameraServer(srcs, host, port, username, password, stagger_s).start()


class ThreadedCameraServer:
    """The server on its own event loop in a thread (for sync tests and benchmarks)."""

    def __init__(self, paths: dict[str, Any], port: int = 0, host: str = "127.0.0.1", **kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.server: CameraServer | None = None
        self._error: BaseException | None = None

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.server = self.loop.run_until_complete(serve_cameras(paths, port, host, **kw))
            except BaseException as e:  # surfaced in __init__
                self._error = e
            self._ready.set()
            if self._error is None:
                self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="rtsp-sim", daemon=True)
        self.thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error

    def url(self, path: str) -> str:
        assert self.server is not None
        return self.server.url(path)

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
