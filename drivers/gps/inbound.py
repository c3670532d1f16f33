"""What one tracker MQTT message says, decoded without any gateway state.

Pure (apart from the per-device NMEA date memory it is handed), so it runs wherever the
MQTT connection is: in the ingest worker process (`drivers/gps/ingest.py`) or, without
one, on the gateway's event loop. The driver then judges the result against what it
knows (is the device known, was it silent, what did it last send).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from drivers.gps.nmea import Fix, NmeaState, decode_nmea
from drivers.gps.owntracks import OwnTracksResult, decode_owntracks

log = logging.getLogger(__name__)

SUBS = ("nmea", "status", "state", "owntracks")
# Devices whose NMEA date is remembered; beyond this (a flood of made-up ids) it starts over,
# which only costs a GGA without an RMC before it the wall-clock date.
MAX_DEVICES = 100_000


@dataclass(slots=True)
class Inbound:
    """One message: `dev` None means the topic itself is wrong; `reject` is why the payload
    is unusable (counted against the device once it is known)."""

    topic: str
    dev: str | None
    sub: str
    reject: str | None = None
    fixes: list[Fix] | None = None
    skipped: dict[str, int] | None = None  # NMEA sentences skipped, by reason
    owntracks: OwnTracksResult | None = None
    status: dict[str, Any] | None = None
    state: str | None = None


def decode_batch(batch: Iterable[Any], nmea: dict[str, NmeaState], today: date) -> list[Inbound]:
    """`decode_inbound` for each MQTT message (topic, payload); a decoder bug costs only
    its own message (`decoder_error`, logged), never the rest of the batch."""
    items = []
    for m in batch:
        try:
            items.append(decode_inbound(m.topic, m.payload, nmea, today))
        except Exception:
            log.exception("tracker message on %s could not be decoded", m.topic)
            items.append(Inbound(m.topic, None, "", "decoder_error"))
    return items


def split_topic(topic: str) -> tuple[str, str] | None:
    """(device id, kind) of `trackers/{id}/{kind}` or `owntracks/{user}/{id}`."""
    parts = topic.split("/")
    if len(parts) != 3:
        return None
    if parts[0] == "trackers":
        return parts[1], parts[2]
    if parts[0] == "owntracks":
        return parts[2], "owntracks"
    return None


def decode_inbound(topic: str, payload: bytes, nmea: dict[str, NmeaState], today: date) -> Inbound:
    where = split_topic(topic)
    if where is None:
        return Inbound(topic, None, "", "bad_topic")
    dev, sub = where
    if sub not in SUBS:
        return Inbound(topic, dev, sub, "bad_topic")
    if sub == "nmea":
        st = nmea.get(dev)
        if st is None:
            if len(nmea) >= MAX_DEVICES:
                nmea.clear()
            st = nmea[dev] = NmeaState()
        d = decode_nmea(payload, st, today)
        return Inbound(topic, dev, sub, fixes=d.fixes, skipped=dict(d.skipped) if d.skipped else None)
    if sub == "owntracks":
        return Inbound(topic, dev, sub, owntracks=decode_owntracks(payload))
    if sub == "status":
        status = parse_status(payload)
        return Inbound(topic, dev, sub, "bad_status" if status is None else None, status=status)
    text = payload.decode("utf-8", "replace").strip().lower()
    if text not in ("online", "offline"):
        return Inbound(topic, dev, sub, "bad_state")
    return Inbound(topic, dev, sub, state=text)


def parse_status(payload: bytes) -> dict[str, Any] | None:
    """The status JSON of CONTRACTS.md, validated field by field; None if unusable."""
    if len(payload) > 4096:
        return None
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    out: dict[str, Any] = {}
    ts = obj.get("ts")
    if ts is not None:
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not 0 < ts < 32503680000:
            return None
        out["ts"] = datetime.fromtimestamp(ts, UTC)
    b = obj.get("battery")
    if b is not None:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b <= 100:
            return None
        out["battery"] = int(b)
    for k in ("charging", "tamper", "sos"):
        v = obj.get(k)
        if v is not None:
            if not isinstance(v, bool):
                return None
            out[k] = v
    return out
