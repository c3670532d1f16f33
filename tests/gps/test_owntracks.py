"""OwnTracks decoder with payloads as the iOS/Android apps publish them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gps.owntracks import decode_owntracks

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


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(["_type", "lat", "lon", "tst", "acc", "batt", "vel", "cog", "x"]), c, max_size=6), max_leaves=20))
def test_property_any_json(obj: object) -> None:
    if isinstance(obj, dict) and "_type" not in obj:
        obj["_type"] = "location"
    r = decode_owntracks(json.dumps(obj).encode())
    assert r.kind in ("location", "lwt", "transition", "rejected")
    if r.fix is not None:
        assert -90 <= r.fix.lat <= 90 and -180 <= r.fix.lon <= 180


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500))
def test_property_any_bytes(payload: bytes) -> None:
    assert decode_owntracks(payload).kind in ("location", "lwt", "transition", "rejected")
