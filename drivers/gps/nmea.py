"""Pure NMEA 0183 decoder: bytes from `trackers/{id}/nmea` → fixes.

pynmea2 is the parser of record: it verifies checksums and parses, and this
module decides what is a usable fix. For the common case (a plain RMC, GGA,
GNS or GLL sentence whose checksum is right) `_fields` verifies and splits the
line itself, giving exactly what pynmea2 would (tests compare both on every
capture), for less; anything else goes through pynmea2 (docs/trackers.md). Accepted:
RMC, GGA, GNS, GLL from any talker (GP, GN, GL, GA, GB, BD...).
Skipped and counted by reason, never raised:

- `checksum`: checksum missing or wrong (a truncated sentence lands here too)
- `malformed`: pynmea2 cannot parse it, or a field is not a number
- `garbage`: a line that is not an NMEA sentence at all (binary, JSON...)
- `proprietary`: `$P...` vendor sentences
- `void`: the receiver says it has no fix (RMC/GLL status V, GGA quality 0, GNS mode N)
- `empty`: a valid-looking sentence with empty position or time fields
- `range`: latitude/longitude outside the earth
- `other`: well-formed sentences that carry no position (GSV, GSA, VTG...)
- `too_large`: the whole payload is over MAX_PAYLOAD bytes

Sentences of one epoch (same time of day) in one payload merge into one fix:
RMC brings date, speed and course; GGA/GNS altitude, satellites and HDOP. A
GGA, GNS or GLL alone has no date: it takes the date of the device's last RMC
(rolled over at midnight), else the caller's `today`.
"""

from __future__ import annotations

import functools
import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

import pynmea2
from pynmea2 import nmea_utils

from drivers.gps.geo import valid_lat_lon

MAX_PAYLOAD = 64 * 1024
MAX_LINE = 200  # NMEA allows 82; RTK receivers emit longer lines, garbage is longer still
KNOTS_TO_MPS = 0.514444
# Accuracy (m) estimated as HDOP x UERE; 5 m is a typical consumer receiver's
# user equivalent range error. Rules only need a conservative order of magnitude.
UERE_M = 5.0
HEX = frozenset("0123456789ABCDEFabcdef")
# (time field, latitude field) of each sentence in msg.data; hemisphere, longitude and
# its hemisphere follow the latitude
FIELDS = {"RMC": (0, 2), "GGA": (0, 1), "GNS": (0, 1), "GLL": (4, 0)}
POSITION_TYPES = tuple(FIELDS)


class Fix(NamedTuple):
    """Immutable; a tuple because a frozen dataclass took longer to build than to decode."""

    fix_time: datetime
    lat: float
    lon: float
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    accuracy_m: float | None = None
    satellites: int | None = None


@dataclass
class NmeaState:
    """What the decoder remembers per device between payloads."""

    last_date: date | None = None
    last_rmc_time: time | None = None


@dataclass
class Decoded:
    fixes: list[Fix] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass
class _Epoch:
    tod: time
    lat: float
    lon: float
    day: date | None = None
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    hdop: float | None = None
    satellites: int | None = None


def _num(v: str | None) -> float | None:
    if v is None or v == "":
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def _int(v: str | None) -> int | None:
    x = _num(v)
    return int(x) if x is not None else None


def decode_nmea(payload: bytes, state: NmeaState, today: date) -> Decoded:
    out = Decoded()
    if len(payload) > MAX_PAYLOAD:
        out.skipped["too_large"] += 1
        return out
    text = payload.decode("ascii", errors="replace")
    epochs: dict[time, _Epoch] = {}
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        reason = _sentence(line, epochs)
        if reason:
            out.skipped[reason] += 1
    for ep in epochs.values():
        day = ep.day
        if day is None:
            day = state.last_date or today
            if state.last_rmc_time is not None and state.last_date is not None and _seconds(ep.tod) < _seconds(state.last_rmc_time) - 12 * 3600:
                day = day + timedelta(days=1)  # past midnight since that RMC
        else:
            state.last_date, state.last_rmc_time = day, ep.tod
        out.fixes.append(Fix(
            fix_time=datetime.combine(day, ep.tod, tzinfo=UTC),  # the tzinfo argument wins over the time's
            lat=ep.lat, lon=ep.lon, alt_m=ep.alt_m, speed_mps=ep.speed_mps, course_deg=ep.course_deg,
            accuracy_m=ep.hdop * UERE_M if ep.hdop is not None else None, satellites=ep.satellites,
        ))
    return out


@functools.lru_cache(maxsize=64)
def _datestamp(ddmmyy: str) -> date | None:
    """pynmea2's own parser (strptime), remembered: a tracker sends the same date all day."""
    return nmea_utils.datestamp(ddmmyy) if ddmmyy else None


def _seconds(t: time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _sentence(line: str, epochs: dict[time, _Epoch]) -> str | None:
    """Merge one sentence into `epochs`; return why it was skipped, if it was."""
    if len(line) > MAX_LINE or line[0] not in "$!" or not line[1:].replace("\ufffd", "\x00").isprintable():
        return "garbage"
    if line.startswith("$P"):
        return "proprietary"
    fast = _fields(line)
    if fast is not None:
        kind, data = fast
    else:
        try:
            msg = pynmea2.parse(line, check=True)
        except pynmea2.ChecksumError:
            return "checksum"
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError, IndexError):
            return "malformed"
        sentence_type = getattr(msg, "sentence_type", None)
        if sentence_type not in POSITION_TYPES:
            return "proprietary" if isinstance(msg, pynmea2.ProprietarySentence) else "other"
        kind, data = str(sentence_type), msg.data
    try:
        return _position(kind, data, epochs)
    except (ValueError, TypeError, AttributeError, IndexError, OverflowError):
        return "malformed"


def _fields(line: str) -> tuple[str, list[str]] | None:
    """(sentence type, data) of a plain `$ttSSS,...*hh` position sentence with a right
    checksum, as pynmea2.parse(line, check=True) gives them; None for anything less
    plain (lower case, odd characters, wrong checksum...), which pynmea2 then judges."""
    star = len(line) - 3
    if star < 7 or line[star] != "*" or line[6] != "," or not line.isascii():
        return None
    kind = line[3:6]
    if kind not in FIELDS or not line[1:3].isalnum():  # the talker: any, as pynmea2's \w{2}
        return None
    body = line[1:star]
    if "*" in body or line[star + 1] not in HEX or line[star + 2] not in HEX:
        return None
    if functools.reduce(operator.xor, body.encode(), 0) != int(line[star + 1:], 16):
        return None
    return kind, line[7:star].split(",")


def _signed(dm: str, hemi: str, pos: str, neg: str) -> float:
    """pynmea2's LatLonFix.latitude/longitude on raw fields (no hemisphere: 0, as there)."""
    sd = _dm_to_sd(dm)
    return sd if hemi == pos else -sd if hemi == neg else 0.0


def _dm_to_sd(dm: str) -> float:
    """nmea_utils.dm_to_sd without its regex for plain `dddmm.mmm` (same arithmetic,
    so the same float); anything else is left to it, errors included."""
    dot = dm.find(".")
    if dot >= 3 and dm.isascii() and dm[:dot].isdigit() and dm[dot + 1:].isdigit():
        return float(dm[:dot - 2]) + float(dm[dot - 2:]) / 60
    return float(nmea_utils.dm_to_sd(dm))


@functools.lru_cache(maxsize=1024)
def _timestamp(hhmmss: str) -> time:
    """pynmea2's parser, remembered: the sentences of an epoch, and trackers reporting
    on the second, share their time fields."""
    return nmea_utils.timestamp(hhmmss)  # type: ignore[no-any-return]


def _position(kind: str, d: list[str], epochs: dict[time, _Epoch]) -> str | None:
    if kind == "RMC":
        if len(d) < 9:
            return "malformed"
        if d[1] != "A":
            return "void"
        if len(d) >= 12 and d[11] == "N":  # NMEA 2.3 mode indicator: data not valid
            return "void"
    elif kind == "GGA":
        if len(d) < 9:
            return "malformed"
        if d[5] in ("", "0"):
            return "void"
    elif kind == "GLL":
        if len(d) < 6:
            return "malformed"
        if d[5] != "A" or (len(d) > 6 and d[6] == "N"):
            return "void"
    elif kind == "GNS":
        if len(d) < 8:
            return "malformed"
        if not d[5] or set(d[5]) <= {"N"}:
            return "void"
    # The fields straight from msg.data, converted by pynmea2's own helpers: its
    # attribute access looks each field up by name and converts it on every read,
    # which was most of the decoding time of a busy gateway.
    ti, li = FIELDS[kind]
    if len(d) <= max(ti, li + 3):
        return "malformed"
    if not d[ti] or not d[li] or not d[li + 2]:
        return "empty"
    tod = _timestamp(d[ti])
    lat, lon = _signed(d[li], d[li + 1], "N", "S"), _signed(d[li + 2], d[li + 3], "E", "W")
    if not valid_lat_lon(lat, lon):
        return "range"
    ep = epochs.get(tod)
    if ep is None:
        ep = epochs[tod] = _Epoch(tod=tod, lat=lat, lon=lon)
    else:
        ep.lat, ep.lon = lat, lon
    if kind == "RMC":
        day = _datestamp(d[8])
        if not day:
            return "empty"
        ep.day = day
        spd, course = _num(d[6]), _num(d[7])
        ep.speed_mps = spd * KNOTS_TO_MPS if spd is not None else ep.speed_mps
        ep.course_deg = course if course is not None else ep.course_deg
    elif kind == "GGA":
        ep.satellites, ep.hdop, ep.alt_m = _int(d[6]), _num(d[7]), _num(d[8])
    elif kind == "GNS":
        ep.satellites, ep.hdop, ep.alt_m = _int(d[6]), _num(d[7]), _num(d[8])
    return None
