"""Pure OwnTracks decoder: JSON from `owntracks/{user}/{device_id}` → records.

Follows the OwnTracks JSON format (owntracks.org/booklet/tech/json/): a
`location` has `lat`, `lon`, `tst` (epoch s, fix time) and optional `acc` (m),
`alt` (m), `vel` (km/h), `cog` (deg), `batt` (%); `lwt` means the app's MQTT
connection was lost; `transition` reports the app's own region enter/leave
(informational: the gateway decides geofences itself). Anything else — other
`_type`s, encrypted payloads, JSON that is not an object — is counted by
reason, never raised.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drivers.gps.geo import valid_lat_lon
from drivers.gps.nmea import Fix

MAX_PAYLOAD = 16 * 1024


@dataclass(frozen=True, slots=True)
class OwnTracksResult:
    kind: str  # location | lwt | transition | rejected
    fix: Fix | None = None
    battery: int | None = None
    reason: str | None = None  # why rejected
    event: str | None = None  # transition: enter / leave
    region: str | None = None


def _rejected(reason: str) -> OwnTracksResult:
    return OwnTracksResult("rejected", reason=reason)


def _number(obj: dict[str, Any], key: str) -> float | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(key)
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(key)
    return x


def decode_owntracks(payload: bytes) -> OwnTracksResult:
    if len(payload) > MAX_PAYLOAD:
        return _rejected("too_large")
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _rejected("not_json")
    if not isinstance(obj, dict):
        return _rejected("not_owntracks")
    kind = obj.get("_type")
    if kind == "lwt":
        return OwnTracksResult("lwt")
    if kind not in ("location", "transition"):
        return _rejected("unsupported_type" if isinstance(kind, str) else "not_owntracks")
    try:
        lat, lon, tst = _number(obj, "lat"), _number(obj, "lon"), _number(obj, "tst")
        acc, alt, vel, cog, batt = (_number(obj, k) for k in ("acc", "alt", "vel", "cog", "batt"))
    except (ValueError, OverflowError):
        return _rejected("bad_field")
    if lat is None or lon is None or tst is None:
        return _rejected("missing_field")
    if not valid_lat_lon(lat, lon):
        return _rejected("range")
    if acc is not None and acc < 0 or tst <= 0 or tst > 32503680000:  # year 3000
        return _rejected("bad_field")
    fix = Fix(
        fix_time=datetime.fromtimestamp(tst, UTC), lat=lat, lon=lon, alt_m=alt,
        speed_mps=vel / 3.6 if vel is not None and vel >= 0 else None,
        course_deg=cog if cog is not None and 0 <= cog <= 360 else None, accuracy_m=acc,
    )
    battery = int(batt) if batt is not None and 0 <= batt <= 100 else None
    if kind == "transition":
        event = obj.get("event")
        region = obj.get("desc")
        return OwnTracksResult("transition", fix=fix, event=event if isinstance(event, str) else None, region=region if isinstance(region, str) else None)
    return OwnTracksResult("location", fix=fix, battery=battery)
