"""H.264 helpers for the simulator: access units from files or an encoder, RTP packetization (RFC 6184)."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

MTU_PAYLOAD = 1400


@dataclass(frozen=True, slots=True)
class AccessUnit:
    nals: tuple[bytes, ...]  # without start codes
    ts: float  # seconds from the start of the stream
    keyframe: bool


def split_annexb(data: bytes) -> list[bytes]:
    out, i, n, starts = [], 0, len(data), []
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
        if e > s:
            out.append(data[s:e])
    return out


def split_avcc(data: bytes, size_len: int = 4) -> list[bytes]:
    out, pos = [], 0
    while pos + size_len <= len(data):
        ln = int.from_bytes(data[pos:pos + size_len], "big")
        out.append(data[pos + size_len:pos + size_len + ln])
        pos += size_len + ln
    return out


def parameter_sets(extradata: bytes) -> tuple[list[bytes], int]:
    """(SPS+PPS NAL units, NAL length size) from avcC or Annex B extradata."""
    if extradata[:1] == b"\x01":
        size_len = (extradata[4] & 3) + 1
        nals, pos = [], 5
        for count_mask in (0x1F, 0xFF):
            n = extradata[pos] & count_mask
            pos += 1
            for _ in range(n):
                ln = int.from_bytes(extradata[pos:pos + 2], "big")
                nals.append(extradata[pos + 2:pos + 2 + ln])
                pos += 2 + ln
        return nals, size_len
    return split_annexb(extradata), 0


def sdp_fmtp(params: list[bytes]) -> str:
    sps = next((p for p in params if p[0] & 0x1F == 7), None)
    pps = [p for p in params if p[0] & 0x1F == 8]
    plid = sps[1:4].hex() if sps else "42e01f"
    sprop = ",".join(base64.b64encode(p).decode() for p in ([sps] if sps else []) + pps)
    return f"packetization-mode=1;profile-level-id={plid};sprop-parameter-sets={sprop}"


def rtp_packets(au: AccessUnit, seq: int, ts90: int, ssrc: int, pt: int = 96) -> tuple[list[bytes], int]:
    """RTP packets for one access unit (single NAL or FU-A); returns (packets, next seq)."""
    out: list[bytes] = []
    payloads: list[bytes] = []
    for nal in au.nals:
        if len(nal) <= MTU_PAYLOAD:
            payloads.append(nal)
            continue
        hdr, body = nal[0], nal[1:]
        ind = (hdr & 0xE0) | 28
        first = True
        while body:
            chunk, body = body[:MTU_PAYLOAD - 2], body[MTU_PAYLOAD - 2:]
            fu = (hdr & 0x1F) | (0x80 if first else 0) | (0x40 if not body else 0)
            payloads.append(bytes((ind, fu)) + chunk)
            first = False
    for i, p in enumerate(payloads):
        marker = 0x80 if i == len(payloads) - 1 else 0
        out.append(struct.pack("!BBHII", 0x80, marker | pt, seq & 0xFFFF, ts90 & 0xFFFFFFFF, ssrc) + p)
        seq += 1
    return out, seq
