"""OwnTracks decoder with payloads as the iOS/Android apps publish them."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from drivers.gps.owntracks import MAX_PAYLOAD, OwnTracksResult, decode_owntracks

# As published by OwnTracks Android 2.4 (booklet example, trimmed of nothing)
ANDROID = b'{"_type":"location","acc":13,"alt":48,"batt":88,"bs":1,"conn":"w","created_at":1700000010,"lat":31.2304,"lon":121.4737,"m":1,"t":"u","tid":"p1","tst":1700000000,"vac":3,"vel":5,"BSSID":"aa:bb","SSID":"home"}'
IOS = b'{"_type":"location","cog":271,"batt":42,"lon":121.47,"acc":65,"p":100.9,"bs":1,"vel":0,"vac":10,"lat":31.23,"topic":"owntracks/u/phone","t":"p","conn":"m","tst":1700000100,"alt":12,"tid":"ph"}'


def test_android_location() -> None:
    r = decode_owntracks(ANDROID)
    assert r.kind == "location" and r.battery == 88
    f = r.fix
    assert f is not None and (f.lat, f.lon, f.accuracy_m, f.alt_m) == (31.2304, 121.4737, 13, 48)
    assert f.fix_time == datetime.fromtimestamp(1700000000, UTC) and f.speed_mps == pytest.approx(5 / 3.6)


def test_ios_location() -> None:
    r = decode_owntracks(IOS)
    assert r.kind == "location" and r.fix is not None and r.fix.course_deg == 271 and r.battery == 42 and r.fix.speed_mps == 0


def test_lwt_and_transition() -> None:
    assert decode_owntracks(b'{"_type":"lwt","tst":1700000000}').kind == "lwt"
    r = decode_owntracks(b'{"_type":"transition","wtst":1699990000,"lat":31.23,"lon":121.47,"tst":1700000000,"acc":10,"tid":"p1","event":"leave","desc":"Home","t":"c"}')
    assert (r.kind, r.event, r.region) == ("transition", "leave", "Home")


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "not_json"),
    (b"\xff\xfe\x00", "not_json"),
    (b"[1,2,3]", "not_owntracks"),
    (b'{"lat": 1, "lon": 2}', "not_owntracks"),
    (b'{"_type":"encrypted","data":"abc"}', "unsupported_type"),
    (b'{"_type":"card","name":"x"}', "unsupported_type"),
    (b'{"_type":"location","lat":31.2,"tst":1700000000}', "missing_field"),
    (b'{"_type":"location","lat":91,"lon":121,"tst":1700000000}', "range"),
    (b'{"_type":"location","lat":31,"lon":190,"tst":1700000000}', "range"),
    (b'{"_type":"location","lat":"x","lon":121,"tst":1700000000}', "bad_field"),
    (b'{"_type":"location","lat":true,"lon":121,"tst":1700000000}', "bad_field"),
    (b'{"_type":"location","lat":31,"lon":121,"tst":1700000000,"acc":-5}', "bad_field"),
    (b'{"_type":"location","lat":31,"lon":121,"tst":1e300}', "bad_field"),
    (b'{"_type":"location","lat":NaN,"lon":121,"tst":1700000000}', "bad_field"),
    (b"[" * 100000, "too_large"),
    (b'{"a":' + b" " * (1024 * 1024) + b"1}", "too_large"),
])
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    r = decode_owntracks(payload)
    assert (r.kind, r.reason) == ("rejected", reason)


# --- properties -----------------------------------------------------------------------

KINDS = {"location", "lwt", "transition", "rejected"}
REASONS = {"not_json", "not_owntracks", "unsupported_type", "missing_field", "bad_field", "range", "too_large"}  # docs/trackers.md
NUMBERS = ("lat", "lon", "tst", "acc", "alt", "vel", "cog", "batt")
YEAR_3000 = 32503680000


class _Unusable(Exception):
    pass


def _num(v: Any) -> float | None:
    """A numeric field as the booklet has it: a JSON number (a numeric string is taken too),
    never a boolean, never infinite or NaN. None: the field is absent or null."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _Unusable
    try:
        x = float(v)
    except (ValueError, OverflowError):
        raise _Unusable from None
    if not math.isfinite(x):
        raise _Unusable
    return x


def _reasons_to_reject(obj: dict[str, Any]) -> set[str]:
    """Every documented reason that applies to a location/transition object (empty: valid).
    Which one the decoder reports when several apply is its own choice."""
    reasons: set[str] = set()
    nums: dict[str, float | None] = {}
    for k in NUMBERS:
        try:
            nums[k] = _num(obj.get(k))
        except _Unusable:
            reasons.add("bad_field")
            nums[k] = None
    lat, lon, tst, acc = nums["lat"], nums["lon"], nums["tst"], nums["acc"]
    if any(obj.get(k) is None for k in ("lat", "lon", "tst")):
        reasons.add("missing_field")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        reasons.add("range")
    if acc is not None and acc < 0 or tst is not None and not 0 < tst <= YEAR_3000:
        reasons.add("bad_field")
    return reasons


def check_decoded(payload: bytes, r: OwnTracksResult) -> None:
    """What `decode_owntracks` promises for any payload, checked against the payload itself."""
    event(f"{r.kind} {r.reason or ''}".strip())
    assert r.kind in KINDS
    if r.kind == "rejected":
        assert r.reason in REASONS and r.fix is None and r.battery is None
    else:
        assert r.reason is None
    if len(payload) > MAX_PAYLOAD:
        assert (r.kind, r.reason) == ("rejected", "too_large")
        return
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        assert (r.kind, r.reason) == ("rejected", "not_json")
        return
    if not isinstance(obj, dict):
        assert (r.kind, r.reason) == ("rejected", "not_owntracks")
        return
    kind = obj.get("_type")
    if kind == "lwt":
        assert r == OwnTracksResult("lwt")
        return
    if kind not in ("location", "transition"):
        assert (r.kind, r.reason) == ("rejected", "unsupported_type" if isinstance(kind, str) else "not_owntracks")
        return
    reasons = _reasons_to_reject(obj)
    if reasons:
        assert r.kind == "rejected" and r.reason in reasons, (r, reasons)
        return
    assert r.kind == kind, (r, obj)
    f = r.fix
    assert f is not None
    n = {k: _num(obj.get(k)) for k in NUMBERS}
    assert (f.lat, f.lon) == (n["lat"], n["lon"]) and -90 <= f.lat <= 90 and -180 <= f.lon <= 180
    assert f.fix_time == datetime.fromtimestamp(n["tst"], UTC) and f.fix_time.tzinfo is UTC  # type: ignore[arg-type]
    assert f.accuracy_m == n["acc"] and f.alt_m == n["alt"] and f.satellites is None
    vel, cog, batt = n["vel"], n["cog"], n["batt"]
    assert f.speed_mps == (vel / 3.6 if vel is not None and vel >= 0 else None)  # km/h in, m/s out
    assert f.course_deg == (cog if cog is not None and 0 <= cog <= 360 else None)
    if kind == "location":
        assert r.battery == (int(batt) if batt is not None and 0 <= batt <= 100 else None)
    else:
        assert r.battery is None
        assert r.event == (obj.get("event") if isinstance(obj.get("event"), str) else None)
        assert r.region == (obj.get("desc") if isinstance(obj.get("desc"), str) else None)


LAT = st.integers(-90, 90) | st.floats(-90, 90)
LON = st.integers(-180, 180) | st.floats(-180, 180)
TST = st.integers(1, YEAR_3000)
OPTIONAL = {
    "acc": st.integers(0, 10_000) | st.floats(0, 10_000), "alt": st.integers(-500, 9000) | st.floats(-500, 9000),
    "vel": st.integers(0, 400), "cog": st.integers(0, 360), "batt": st.integers(0, 100),
    "tid": st.text(max_size=2), "t": st.sampled_from(["p", "c", "u", "t"]), "conn": st.sampled_from(["w", "m", "o"]),
    "created_at": TST, "bs": st.integers(0, 3), "SSID": st.text(max_size=8),
}
VALID_LOCATION = st.fixed_dictionaries({"_type": st.just("location"), "lat": LAT, "lon": LON, "tst": TST}, optional=OPTIONAL)
VALID_TRANSITION = st.fixed_dictionaries(
    {"_type": st.just("transition"), "lat": LAT, "lon": LON, "tst": TST, "event": st.sampled_from(["enter", "leave"])},
    optional={"desc": st.text(max_size=10), "wtst": TST, "acc": st.integers(0, 500), "t": st.sampled_from(["c", "b", "l"])})
# JSON of the right shape with any values (nested, wrong types, NaN, huge numbers...)
WILD_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(["_type", *NUMBERS, "event", "desc", "x"]), c, max_size=6),
    max_leaves=20)


def _encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


@st.composite
def _mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A payload with a few bytes changed, inserted, removed, or cut off (a bad link, a
    buggy app): mostly still JSON-looking, so every branch of the decoder is reached."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if op == "insert" or not data:
            data[i:i] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b'"', b",", b"}", b"-", b"e9", b"null", b"true"]))
        elif op == "set":
            data[min(i, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 4))]
        else:
            del data[i:]
    return bytes(data)


# Values a numeric field should not have, as a whole (wrong type, not finite, too big for
# a float), and edge values per field (just outside its range, or just inside).
BAD_VALUES = [None, True, False, "", "x", "nan", "1e999", [], {}, {"lat": 1}]
ODD_VALUE = st.sampled_from(BAD_VALUES) | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**400), 10**400)
EDGE_VALUE = {
    "lat": st.sampled_from([90, -90, 90.000001, -91, 180]) | st.floats(90, 1e9, exclude_min=True) | st.floats(-1e9, -90, exclude_max=True),
    "lon": st.sampled_from([180, -180, 180.000001, -181]) | st.floats(180, 1e9, exclude_min=True) | st.floats(-1e9, -180, exclude_max=True),
    "tst": st.sampled_from([0, -1, 0.5, YEAR_3000, YEAR_3000 + 1, "1700000000"]) | st.floats(-10, 10) | st.integers(YEAR_3000, 10**15),
    "acc": st.sampled_from([0, -0.001, -5, "12.5"]) | st.floats(-1e6, 0),
    "vel": st.sampled_from([0, -1, 3.6, "36"]) | st.floats(-500, 500),
    "cog": st.sampled_from([0, 360, 360.5, -1]) | st.floats(-720, 720),
    "batt": st.sampled_from([0, 100, 100.5, 101, -1, "88"]) | st.floats(-50, 150),
    "alt": st.sampled_from([0, -420, "48"]) | st.floats(-1e6, 1e6),
}


@st.composite
def _one_field_off(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with one numeric field missing, or given an odd or an edge value."""
    obj = dict(draw(VALID_LOCATION | VALID_TRANSITION))
    k = draw(st.sampled_from(NUMBERS))
    how = draw(st.sampled_from(["missing", "odd", "edge", "edge"]))
    if how == "missing":
        obj.pop(k, None)
    else:
        obj[k] = draw(ODD_VALUE if how == "odd" else EDGE_VALUE[k])
    return obj


VALID_BYTES = (VALID_LOCATION | VALID_TRANSITION).map(_encode)
ANY_BYTES = st.one_of(
    st.binary(max_size=500),
    VALID_BYTES,
    _one_field_off().map(_encode),
    st.builds(lambda o, t: _encode({**o, "_type": t}), VALID_LOCATION, st.sampled_from(["lwt", "card", "encrypted", "waypoint", "Location", "", 5, None]) | WILD_JSON),
    _mutated(VALID_BYTES),
    WILD_JSON.map(lambda o: {"_type": "location", **o} if isinstance(o, dict) and "_type" not in o else o).map(_encode),
    st.builds(lambda b, pad: b + b" " * pad, VALID_BYTES, st.integers(MAX_PAYLOAD - 400, MAX_PAYLOAD + 100)),  # around the size limit
)


@settings(max_examples=300, deadline=None)
@given(WILD_JSON)
def test_property_any_json(obj: object) -> None:
    if isinstance(obj, dict) and "_type" not in obj:
        obj["_type"] = "location"
    payload = _encode(obj)
    check_decoded(payload, decode_owntracks(payload))


@settings(max_examples=600, deadline=None)
@given(ANY_BYTES)
@example(ANDROID)
@example(IOS)
@example(b'{"_type":"location","lat":91,"lon":121,"tst":1700000000}')
@example(b'{"_type":"location","lat":true,"lon":121,"tst":1700000000}')
@example(b'{"_type":"location","lat":31,"lon":121,"tst":1700000000,"acc":-5}')
@example(b'{"_type":"location","lat":31,"lon":121,"tst":1700000000.5,"vel":36,"cog":400,"batt":101}')
@example(b'{"_type":"transition","lat":31,"lon":121,"tst":1,"event":"enter","desc":5}')
@example(b'{"_type":"location","lat":31,"lon":121}')
@example(b'{"_type":"location","lat":31,"lon":121,"tst":32503680001}')
@example(b'{"_type":["location"],"lat":31,"lon":121,"tst":1}')
@example(b'\xff{"_type":"location"}')
@example(b"[" * 5000)
def test_property_any_bytes(payload: bytes) -> None:
    """Never raises; a rejection has a documented reason that applies to the payload; a
    location or transition has a fix with the payload's own lat, lon and tst, in range."""
    check_decoded(payload, decode_owntracks(payload))


@settings(max_examples=300, deadline=None)
@given(VALID_LOCATION | VALID_TRANSITION, st.randoms(use_true_random=False), st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :")]))
def test_property_valid_owntracks_round_trips(obj: dict[str, Any], rnd: random.Random, separators: tuple[str, str]) -> None:
    """What an app publishes (any key order, any JSON spacing) decodes to its own position and time."""
    keys = list(obj)
    rnd.shuffle(keys)
    payload = json.dumps({k: obj[k] for k in keys}, separators=separators, ensure_ascii=rnd.random() < 0.5).encode()
    r = decode_owntracks(payload)
    assert r.kind == obj["_type"] and r.reason is None and r.fix is not None, r
    assert (r.fix.lat, r.fix.lon) == (obj["lat"], obj["lon"])
    assert r.fix.fix_time == datetime.fromtimestamp(obj["tst"], UTC) and r.fix.fix_time.timestamp() == obj["tst"]
    assert r.fix.accuracy_m == obj.get("acc") and r.fix.alt_m == obj.get("alt")
    assert r.fix.speed_mps == (obj["vel"] / 3.6 if "vel" in obj else None) and r.fix.course_deg == obj.get("cog")
    if obj["_type"] == "location":
        assert r.battery == obj.get("batt")
    else:
        assert (r.event, r.region) == (obj["event"], obj.get("desc"))
    check_decoded(payload, r)
