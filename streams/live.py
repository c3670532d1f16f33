"""Live view: WHEP sessions relaying the camera's own H.264 over WebRTC (aiortc), no transcode.

Each viewer is one `Consumer` on the camera's Fanout (small queue, drop-oldest, resync on
the next keyframe) wrapped in a track whose `recv()` returns `av.Packet`s, which aiortc's
RTCRtpSender packetizes as they are (`H264Encoder.pack`).

Profile: aiortc only offers Constrained Baseline (42001f/42e01f) and matches H.264 by
profile (aiortc issue #747), so a Main/High camera would get no common codec and Chrome
would not play. We read the camera's real profile from its SPS, pick the browser's offered
H.264 format whose profile contains it (`choose_profile`), register that format with aiortc
and make it the only preference of the viewer's transceiver, so the answer carries a
profile the browser declared it can decode for what the camera really sends.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecCapability, RTCRtpCodecParameters

from streams.fanout import Consumer, MediaPacket, SourceDown, StreamInfo

log = logging.getLogger(__name__)


def nal_units(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream into NAL units (without start codes)."""
    out, i, n = [], 0, len(data)
    starts = []
    while i < n - 2:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            starts.append(i + 3)
            i += 3
        else:
            i += 1
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        while e > s and data[e - 1] == 0:
            e -= 1
        out.append(data[s:e])
    return out


def avcc_to_annexb(extradata: bytes) -> bytes:
    """SPS/PPS from an avcC record (MP4-style extradata) as Annex B."""
    if not extradata or extradata[0] != 1:
        return extradata
    out, pos = b"", 5
    n = extradata[pos] & 0x1F
    pos += 1
    for _ in range(n):
        ln = int.from_bytes(extradata[pos:pos + 2], "big")
        out += b"\x00\x00\x00\x01" + extradata[pos + 2:pos + 2 + ln]
        pos += 2 + ln
    n = extradata[pos]
    pos += 1
    for _ in range(n):
        ln = int.from_bytes(extradata[pos:pos + 2], "big")
        out += b"\x00\x00\x00\x01" + extradata[pos + 2:pos + 2 + ln]
        pos += 2 + ln
    return out


def profile_level_id(extradata: bytes) -> str | None:
    """profile_idc, constraint flags, level_idc of the first SPS, as SDP hex (e.g. 64001f)."""
    for nal in nal_units(avcc_to_annexb(extradata)):
        if nal and nal[0] & 0x1F == 7 and len(nal) >= 4:
            return nal[1:4].hex()
    return None


# Which offered formats to answer for a stream of a given profile, best first: the profile
# itself, then the profiles that contain it (Constrained Baseline ⊂ Main ⊂ High ⊂ High 10 ⊂
# High 4:2:2). Last resort for High: Main. Debian's Chromium 156 offers 42001f/42e01f/4d001f/
# f4001f but no 64xxxx; with f4001f it receives the RTP but assembles no frame (framesReceived
# stays 0, tested), while under the 4d001f label its software decoder (FFmpeg's, which decodes
# every 8-bit 4:2:0 profile) plays the High stream. Still no transcode: the label differs,
# the bits are the camera's.
CONTAINS = {
    "cb": ["42e0", "4200", "4d", "64", "6e", "7a", "f4"],  # constrained baseline
    "b": ["4200", "f4"],
    "main": ["4d", "64", "6e", "7a", "f4"],
    "high": ["64", "6e", "7a", "4d"],  # see FALLBACK below
    "chigh": ["640c", "64", "6e", "7a", "f4"],
}


def stream_class(plid: str) -> str:
    idc, iop = int(plid[:2], 16), int(plid[2:4], 16)
    if idc == 0x42 or (idc == 0x4D and iop & 0x80):
        return "cb" if iop & 0x40 else "b"
    if idc == 0x4D:
        return "main"
    if idc == 0x64 and iop & 0x0C == 0x0C:
        return "chigh"
    return "high"  # 0x64 and anything higher is matched against High and above


def offered_h264(offer_sdp: str) -> list[dict[str, str]]:
    """fmtp parameters of the offer's H.264 payload types, in the offer's order."""
    pts: dict[str, dict[str, str]] = {}
    for line in offer_sdp.splitlines():
        if line.startswith("a=rtpmap:") and "H264/90000" in line.upper():
            pts[line[9:].split()[0]] = {}
    for line in offer_sdp.splitlines():
        if line.startswith("a=fmtp:"):
            pt, _, rest = line[7:].partition(" ")
            if pt in pts:
                pts[pt] = dict(kv.split("=", 1) for kv in rest.strip().split(";") if "=" in kv)
    return list(pts.values())


def choose_profile(camera_plid: str, offer_sdp: str) -> dict[str, str] | None:
    """The offered H.264 format that can play this camera's stream, as the answer should carry it."""
    cands = [p for p in offered_h264(offer_sdp) if p.get("packetization-mode") == "1" and len(p.get("profile-level-id", "")) == 6]
    for prefix in CONTAINS[stream_class(camera_plid)]:
        for p in cands:
            plid = p["profile-level-id"].lower()
            if plid.startswith(prefix) and (prefix not in ("64", "4d") or int(plid[2:4], 16) & 0x0C != 0x0C):
                # the level is the camera's: level-asymmetry lets the sender exceed the receiver's
                return {"level-asymmetry-allowed": "1", "packetization-mode": "1", "profile-level-id": plid}
    return None


def ensure_codec(h264: dict[str, str]) -> RTCRtpCodecCapability:
    """Make aiortc able to negotiate this H.264 format (once per process)."""
    params: dict[str, int | str | None] = dict(h264)
    video = CODECS["video"]
    if not any(c.mimeType == "video/H264" and c.parameters == params for c in video):
        pt = max(c.payloadType or 0 for c in video) + 1
        fb = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli"), RTCRtcpFeedback(type="goog-remb")]
        video.append(RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=pt, rtcpFeedback=fb, parameters=params))
        video.append(RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=pt + 1, parameters={"apt": pt}))
    return RTCRtpCodecCapability(mimeType="video/H264", clockRate=90000, parameters=params)


class RelayTrack(MediaStreamTrack):
    """The camera's packets for one viewer; starts (and resyncs after drops) on a keyframe."""

    kind = "video"

    def __init__(self, fanout: Any, queue_packets: int) -> None:
        super().__init__()
        self.fanout = fanout
        self.consumer = fanout.add(Consumer(f"live:{secrets.token_hex(3)}", queue_packets, video_only=True))
        self._need_key = True
        self._seen_dropped = 0
        self._headers = b""
        self._t0: int | None = None
        self._gen = -1
        if fanout.info is not None:
            self._headers = avcc_to_annexb(fanout.info.extradata)
            self._gen = fanout.info.generation

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            item = await self.consumer.aget()
            if isinstance(item, StreamInfo):
                self._headers, self._gen, self._need_key = avcc_to_annexb(item.extradata), item.generation, True
                continue
            if isinstance(item, SourceDown) or not isinstance(item, MediaPacket):
                self._need_key = True
                continue
            if self.consumer.dropped != self._seen_dropped:
                self._seen_dropped, self._need_key = self.consumer.dropped, True
            if self._need_key:
                if not item.keyframe:
                    continue
                self._need_key = False
            data = item.data
            if item.keyframe and not any(n and n[0] & 0x1F == 7 for n in nal_units(data[:64])):
                data = self._headers + data  # SPS/PPS only in the SDP: the browser needs them in-band
            pts = int(item.pts * item.time_base * 90000)
            if self._t0 is None:
                self._t0 = pts
            pkt = av.Packet(data)
            pkt.pts = pkt.dts = pts - self._t0
            pkt.time_base = Fraction(1, 90000)
            return pkt

    def stop(self) -> None:
        super().stop()
        self.fanout.remove(self.consumer)


class TooManyViewers(Exception):
    """A cap on live sessions is reached (per camera or per user)."""


class LiveRelay:
    """Live sessions are capped per camera and per user (each holds a relay, a peer
    connection and its UDP sockets: one user had opened 150 in seconds), and one whose
    browser never connects is closed after `connect_s` instead of holding its place."""

    def __init__(self, area: Any, metrics: Any, queue_packets: int, max_per_camera: int = 16, max_per_user: int = 8,
                 connect_s: float = 30.0) -> None:
        self.area = area
        self.queue_packets = queue_packets
        self.max_per_camera, self.max_per_user, self.connect_s = max_per_camera, max_per_user, connect_s
        self.sessions: dict[str, tuple[str, RTCPeerConnection, RelayTrack]] = {}
        self.owners: dict[str, str] = {}  # session id -> user
        self._viewers = metrics.gauge("gateway_live_viewers", "WebRTC viewers", ("camera",))

    def owner(self, sid: str) -> str | None:
        return self.owners.get(sid)

    async def answer(self, camera_id: str, offer_sdp: str, user: str = "") -> tuple[str, str]:
        """WHEP: SDP offer in, (session id, SDP answer) out."""
        fan = self.area.fanout(camera_id)
        if fan is None:
            raise KeyError(camera_id)
        if sum(1 for cam, _, _ in self.sessions.values() if cam == camera_id) >= self.max_per_camera:
            raise TooManyViewers(f"camera {camera_id} has {self.max_per_camera} live viewers already")
        if sum(1 for u in self.owners.values() if u == user) >= self.max_per_user:
            raise TooManyViewers(f"{user} has {self.max_per_user} live sessions open: close one first (DELETE its Location)")
        info = fan.info
        if info is None:
            raise LookupError("the camera has not connected yet")
        if info.codec != "h264":
            raise ValueError(f"live view relays H.264 only; this camera sends {info.codec}")
        plid = profile_level_id(info.extradata) or "42e01f"
        params = choose_profile(plid, offer_sdp)
        if params is None:
            raise ValueError(f"the offer has no H.264 format able to play this camera's profile-level-id {plid}")
        cap = ensure_codec(params)
        pc = RTCPeerConnection()
        track = RelayTrack(fan, self.queue_packets)
        sid = secrets.token_urlsafe(16)
        try:
            # the transceiver exists before the offer is applied, so our preference shapes the answer
            t = pc.addTransceiver(track, direction="sendonly")
            t.setCodecPreferences([cap])
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            track.stop()
            await pc.close()
            raise
        if "H264" not in pc.localDescription.sdp:
            track.stop()
            await pc.close()
            raise ValueError(f"the browser does not accept H.264 profile-level-id {plid}")

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(sid)

        self.sessions[sid] = (camera_id, pc, track)
        self.owners[sid] = user
        self._viewers.labels(camera_id).inc()
        asyncio.get_running_loop().call_later(self.connect_s, self._reap, sid, pc)
        return sid, pc.localDescription.sdp

    def _reap(self, sid: str, pc: RTCPeerConnection) -> None:
        entry = self.sessions.get(sid)
        if entry is not None and entry[1] is pc and pc.connectionState != "connected":
            task = asyncio.ensure_future(self.close(sid))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def close(self, sid: str) -> bool:
        entry = self.sessions.pop(sid, None)
        if entry is None:
            return False
        self.owners.pop(sid, None)
        camera_id, pc, track = entry
        track.stop()
        await pc.close()
        self._viewers.labels(camera_id).dec()
        return True

    async def close_camera(self, camera_id: str) -> int:
        """End every viewer of a camera (stopped, or replaced by one with new settings)."""
        sids = [sid for sid, (cam, _, _) in self.sessions.items() if cam == camera_id]
        await asyncio.gather(*(self.close(s) for s in sids), return_exceptions=True)
        return len(sids)

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(s) for s in list(self.sessions)), return_exceptions=True)
