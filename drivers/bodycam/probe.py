"""What a received file is: PyAV probe, playability check and thumbnail.

A file is "playable" when the container opens, has a video stream, every
packet demuxes inside the file's bounds and the first frame decodes. Demuxing
without decoding reads the whole index cheaply, which is what catches a
truncated MP4 whose moov atom survived (faststart) but whose media did not.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av

# ISO 6709 as MP4 writers store it in the `location` tag: +48.8577+002.2950+035.000/
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?/?$")


class NotPlayable(Exception):
    pass


@dataclass
class Probe:
    media: dict[str, Any] = field(default_factory=dict)
    thumbnail_jpeg: bytes | None = None


def _creation_time(tags: dict[str, str]) -> str | None:
    raw = tags.get("creation_time")
    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


def _gps(tags: dict[str, str]) -> list[dict[str, float]]:
    """The recorder's position: MP4 `location` (ISO 6709). One point is all
    plain MP4 carries; vendor GPS tracks in data streams are not decoded."""
    for key in ("location", "com.apple.quicktime.location.ISO6709", "location-eng"):
        m = _ISO6709.match(tags.get(key, "").strip())
        if m:
            point = {"lat": float(m.group(1)), "lon": float(m.group(2))}
            if m.group(3):
                point["alt"] = float(m.group(3))
            return [point]
    return []


def probe(path: Path, thumb_width: int = 320) -> Probe:
    """Raises NotPlayable with a human reason; otherwise media metadata and a JPEG thumbnail."""
    size = path.stat().st_size
    if size == 0:
        raise NotPlayable("empty file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise NotPlayable(f"not a readable media container: {e}") from None
    with container:
        video = container.streams.video[0] if container.streams.video else None
        if video is None:
            raise NotPlayable(f"no video stream in {container.format.name} container")
        tags = {k.lower(): str(v) for k, v in (container.metadata or {}).items()}
        media: dict[str, Any] = {
            "container": container.format.name,
            "video_codec": video.codec_context.name,
            "width": video.width,
            "height": video.height,
            "audio_codec": next((s.codec_context.name for s in container.streams if s.type == "audio"), None),
            "duration_s": round(container.duration / av.time_base, 3) if container.duration else None,
            "creation_time": _creation_time(tags),
            "gps": _gps(tags),
        }
        packets = 0
        try:
            for packet in container.demux(video):
                if packet.size == 0:
                    continue  # flush packet at the end of the stream
                if packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > size:
                    raise NotPlayable(f"truncated: packet at byte {packet.pos} runs past the end of the file ({size} bytes)")
                packets += 1
        except av.FFmpegError as e:
            raise NotPlayable(f"damaged media data after {packets} packets: {e}") from None
        if packets == 0:
            raise NotPlayable("video stream holds no frames")
        if video.frames and packets < video.frames:
            # the index (moov at the front) promises more than the file holds
            raise NotPlayable(f"truncated: {packets} of {video.frames} indexed video frames present")
        media["video_packets"] = packets
        container.seek(0)
        thumb = None
        try:
            for frame in container.decode(video):
                if not isinstance(frame, av.VideoFrame):
                    continue
                img = frame.to_image()
                img.thumbnail((thumb_width, thumb_width * 4))
                buf = io.BytesIO()
                img.convert("RGB").save(buf, "JPEG", quality=80)
                thumb = buf.getvalue()
                break
        except av.FFmpegError as e:
            raise NotPlayable(f"first frame does not decode: {e}") from None
        if thumb is None:
            raise NotPlayable("no decodable video frame")
    return Probe(media, thumb)
