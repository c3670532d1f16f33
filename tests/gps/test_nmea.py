"""NMEA decoder: real receiver captures, hand-checked sentences, bad input, properties."""

from __future__ import annotations

import functools
import math
import operator
from datetime import UTC, date, datetime
from pathlib import Path

import pynmea2
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pynmea2 import nmea_utils

from drivers.gps import nmea
from drivers.gps.nmea import MAX_PAYLOAD, NmeaState, decode_nmea
from simulators.tracker import nmea_fix, sentence

TODAY = date(2026, 11, 22)


def decode_file(path: Path) -> tuple[list, dict]:
    state, fixes, skipped = NmeaState(), [], {}
    for raw in path.read_bytes().splitlines():
        if raw.startswith(b"#"):
            continue
        d = decode_nmea(raw, state, TODAY)
        fixes.extend(d.fixes)
        for k, v in d.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    return fixes, skipped


def test_every_capture_decodes_without_exception(shared_data: Path) -> None:
    files = sorted((shared_data / "nmea").glob("*.log"))
    assert len(files) >= 9
    for f in files:
        fixes, skipped = decode_file(f)
        assert fixes, f"{f.name}: no fix decoded"
        for x in fixes:
            assert -90 <= x.lat <= 90 and -180 <= x.lon <= 180 and not (x.lat == 0 and x.lon == 0), f.name


@pytest.mark.parametrize(("name", "lat", "lon", "first"), [
    # first valid fix of each capture, read off the sentence by hand
    ("ublox-neo-m9n-nmea.log", 38 + 6.62964 / 60, -(122 + 37.61382 / 60), datetime(2020, 7, 11, 22, 37, 45, tzinfo=UTC)),
    ("nmea-rtk.log", 41 + 34.49795459 / 60, -(93 + 45.03431408 / 60), datetime(2020, 3, 18, 13, 28, 19, 600000, tzinfo=UTC)),
    ("sirfstarv-nmea.log", 44 + 4.1351 / 60, -(121 + 18.8556 / 60), None),
])
def test_positions_match_the_sentences(shared_data: Path, name: str, lat: float, lon: float, first: datetime | None) -> None:
    fixes, _ = decode_file(shared_data / "nmea" / name)
    assert fixes[0].lat == pytest.approx(lat, abs=1e-9) and fixes[0].lon == pytest.approx(lon, abs=1e-9)
    if first is not None:
        # GGA comes first in nmea-rtk: its date is the RMC's of the same second, applied from then on
        dated = [x for x in fixes if x.fix_time.year != TODAY.year]
        assert dated and dated[0].fix_time.date() == first.date()


def test_captures_skip_what_they_should(shared_data: Path) -> None:
    _, telit = decode_file(shared_data / "nmea" / "telit-he910.log")
    assert telit.get("void", 0) > 0  # the receiver starts without a fix
    _, beidou = decode_file(shared_data / "nmea" / "beidou-bd.log")
    assert beidou.get("proprietary", 0) > 0  # $PSRF... sentences
    fixes, _ = decode_file(shared_data / "nmea" / "beidou-bd.log")
    assert all(30 < f.lat < 32 and 121 < f.lon < 122 for f in fixes)  # Shanghai


def test_rmc_gga_merge_into_one_fix() -> None:
    t = datetime(2026, 11, 22, 15, 4, 5, tzinfo=UTC)
    d = decode_nmea(nmea_fix(t, 31.2304, 121.4737, accuracy_m=15, speed_mps=2.0).encode(), NmeaState(), TODAY)
    assert len(d.fixes) == 1
    f = d.fixes[0]
    assert f.fix_time == t and f.lat == pytest.approx(31.2304, abs=1e-6) and f.lon == pytest.approx(121.4737, abs=1e-6)
    assert f.accuracy_m == pytest.approx(15) and f.speed_mps == pytest.approx(2.0, abs=0.01) and f.satellites == 9 and f.alt_m == 30.0


@pytest.mark.parametrize("talker", ["GP", "GN", "GL", "GA", "GB", "BD"])
def test_every_talker(talker: str) -> None:
    t = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)
    d = decode_nmea(nmea_fix(t, -33.5, 151.25, talker=talker).encode(), NmeaState(), TODAY)
    assert [(f.lat, f.lon) for f in d.fixes] == [(pytest.approx(-33.5), pytest.approx(151.25))]


def test_gns_and_gll() -> None:
    gns = sentence("GNGNS,014035.00,4332.69262,S,17235.48549,E,RR,13,0.9,25.63,11.24,,")
    gll = sentence("GPGLL,4916.45,N,12311.12,W,225444,A,A")
    d = decode_nmea(f"{gns}\r\n{gll}\r\n".encode(), NmeaState(), TODAY)
    assert [(round(f.lat, 5), round(f.lon, 5)) for f in d.fixes] == [(-43.54488, 172.59142), (49.27417, -123.18533)]
    assert d.fixes[0].satellites == 13 and d.fixes[0].accuracy_m == pytest.approx(4.5)


def test_gga_takes_date_of_last_rmc_and_rolls_over_midnight() -> None:
    state = NmeaState()
    decode_nmea(nmea_fix(datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC), 10, 20).encode(), state, TODAY)
    gga = sentence("GPGGA,000001.00,1000.000,N,02000.000,E,1,08,1.0,5.0,M,0.0,M,,")
    d = decode_nmea(gga.encode(), state, TODAY)
    assert d.fixes[0].fix_time == datetime(2024, 3, 1, 0, 0, 1, tzinfo=UTC)
    same_day = decode_nmea(sentence("GPGGA,235959.00,1000.000,N,02000.000,E,1,08,1.0,5.0,M,0.0,M,,").encode(), state, TODAY)
    assert same_day.fixes[0].fix_time == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    # no RMC ever: the caller's date
    assert decode_nmea(gga.encode(), NmeaState(), TODAY).fixes[0].fix_time.date() == TODAY


@pytest.mark.parametrize(("payload", "reason"), [
    (b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B", "checksum"),
    (b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", "checksum"),
    (b"$GPRMC,123519,A,4807.0", "checksum"),
    (b"\x00\xff\xfe\x81garbage\x02", "garbage"),
    (b'{"lat": 1}', "garbage"),
    (sentence("PSRF151,01").encode(), "proprietary"),
    (sentence("GPRMC,123519,V,4807.038,N,01131.000,E,0,0,230394,,").encode(), "void"),
    (sentence("GPGGA,123519,4807.038,N,01131.000,E,0,08,0.9,545.4,M,46.9,M,,").encode(), "void"),
    (sentence("GPRMC,,A,,,,,,,,,,A").encode(), "empty"),
    (sentence("GPRMC,123519,A,9507.038,N,01131.000,E,0,0,230394,,").encode(), "range"),
    (sentence("GPGSV,1,1,00").encode(), "other"),
    (b"$" + b"A" * (MAX_PAYLOAD + 1), "too_large"),
])
def test_bad_input_is_counted_never_raised(payload: bytes, reason: str) -> None:
    d = decode_nmea(payload, NmeaState(), TODAY)
    assert d.fixes == [] and d.skipped[reason] == 1, d.skipped


def test_bad_sentence_does_not_lose_good_one_beside_it() -> None:
    good = nmea_fix(datetime(2026, 11, 22, 1, 0, tzinfo=UTC), 31.0, 121.0)
    d = decode_nmea(b"$GPRMC,garbage*00\r\n\xff\xfe\r\n" + good.encode(), NmeaState(), TODAY)
    assert len(d.fixes) == 1 and sum(d.skipped.values()) == 2


REASONS = {"checksum", "malformed", "garbage", "proprietary", "void", "empty", "range", "other", "too_large"}  # the module's docstring


def check_decoded(payload: bytes, d: nmea.Decoded) -> None:
    """What `decode_nmea` promises for any payload: skipped lines are counted under a
    documented reason, each line at most once; fixes are on the earth, in UTC, one per epoch."""
    assert set(d.skipped) <= REASONS, d.skipped
    assert all(n > 0 for n in d.skipped.values())
    if len(payload) > MAX_PAYLOAD:
        assert d.fixes == [] and d.skipped == {"too_large": 1}
        return
    lines = [x for x in payload.decode("ascii", errors="replace").replace("\r", "\n").split("\n") if x.strip()]
    assert sum(d.skipped.values()) <= len(lines) and len(d.fixes) <= len(lines)
    for f in d.fixes:
        assert math.isfinite(f.lat) and math.isfinite(f.lon) and -90 <= f.lat <= 90 and -180 <= f.lon <= 180
        assert f.fix_time.tzinfo is UTC
    assert len({f.fix_time for f in d.fixes}) == len(d.fixes)  # sentences of one epoch merged


def _good_fix(t: datetime, lat: float, lon: float) -> bytes:
    return nmea_fix(t, lat, lon).encode()


GOOD = st.builds(_good_fix, st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2068, 12, 31)).map(lambda t: t.replace(microsecond=0, tzinfo=UTC)),
                 st.floats(-89.9, 89.9), st.floats(-179.9, 179.9))
NMEA_LIKE = st.text(alphabet="$GPRMCGAN,.*0123456789ABCDEFNSWEV\r\n", max_size=120).map(str.encode)


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    """Good sentences with a few bytes changed, inserted, removed or cut off."""
    data = bytearray(draw(GOOD))
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if op == "set":
            data[i] = draw(st.sampled_from(b",.*$0189AFNSEWV\r\n\x00\xff") | st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 5))]
        else:
            del data[i:]
    return bytes(data)


ANY_BYTES = st.one_of(
    st.binary(max_size=2000), NMEA_LIKE, GOOD, _damaged(),
    st.lists(st.binary(max_size=100) | NMEA_LIKE | GOOD | _damaged(), max_size=8).map(b"\r\n".join),
)


@settings(max_examples=400, deadline=None)
@given(ANY_BYTES)
@example(b"$" + b"A" * (MAX_PAYLOAD + 1))
@example(sentence("GPRMC,123519,A,4807.038,N,01131.000,E,0,0,,,").encode())  # no date
@example(sentence("GPGGA,123519,9507.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,").encode())  # 95° N
@example(_good_fix(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), 31.2, 121.4) + b"$GPGSV,1,1,00*79\r\n\xff\x00\r\n")
def test_property_arbitrary_bytes(payload: bytes) -> None:
    check_decoded(payload, decode_nmea(payload, NmeaState(), TODAY))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="$GPRMCGAN,.*0123456789ABCDEFNSWEV\r\n", max_size=120), max_size=10))
def test_property_nmea_like_text(lines: list[str]) -> None:
    payload = "\r\n".join(lines).encode()
    check_decoded(payload, decode_nmea(payload, NmeaState(), TODAY))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=100) | NMEA_LIKE | _damaged(), max_size=6), st.integers(0, 6), GOOD)
def test_property_a_good_epoch_survives_any_lines_around_it(noise: list[bytes], at: int, good: bytes) -> None:
    """Garbage, damaged or half sentences before and after a good one never lose it."""
    assume(good[7:13] not in b"".join(noise))  # no other sentence of its epoch (they would merge: the last one wins)
    alone = decode_nmea(good, NmeaState(), TODAY)
    assert len(alone.fixes) == 1 and not alone.skipped
    lines = [*noise[:at], good, *noise[at:]]
    payload = b"\r\n".join(lines)
    d = decode_nmea(payload, NmeaState(), TODAY)
    check_decoded(payload, d)
    want = alone.fixes[0]
    assert any(f.fix_time == want.fix_time and (f.lat, f.lon) == (want.lat, want.lon) for f in d.fixes), (d.fixes, want)


@settings(max_examples=200, deadline=None)
@given(st.floats(-89.9999, 89.9999), st.floats(-179.9999, 179.9999), st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2068, 12, 31)))  # RMC has a 2-digit year
def test_property_roundtrip(lat: float, lon: float, t: datetime) -> None:
    t = t.replace(microsecond=(t.microsecond // 10000) * 10000, tzinfo=UTC)
    d = decode_nmea(nmea_fix(t, lat, lon).encode(), NmeaState(), TODAY)
    if lat == 0 and lon == 0:
        return
    assert len(d.fixes) == 1
    f = d.fixes[0]
    assert f.fix_time == t
    assert f.lat == pytest.approx(lat, abs=2e-7) and f.lon == pytest.approx(lon, abs=2e-7)


def _decode_all(path: Path) -> list:
    state, out = NmeaState(), []
    for raw in path.read_bytes().splitlines():
        d = decode_nmea(raw, state, TODAY)
        out.append((d.fixes, dict(d.skipped)))
    return out


def test_fast_path_decodes_every_capture_exactly_as_pynmea2(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((shared_data / "nmea").glob("*.log"))
    split = nmea._fields
    positions: list[bool] = []  # for each RMC/GGA/GNS/GLL sentence: split by _fields?

    def watched(line: str) -> tuple[str, list[str]] | None:
        r = split(line)
        if line[3:6] in nmea.FIELDS:
            positions.append(r is not None)
        return r

    monkeypatch.setattr(nmea, "_fields", watched)
    fast = {f.name: _decode_all(f) for f in files}
    # the comparison below means something only if the captures' position sentences went
    # through the fast path (all of them do: plain, with right checksums)
    assert len(positions) > 1000 and sum(positions) > 0.9 * len(positions), f"{sum(positions)} of {len(positions)} split by _fields"
    monkeypatch.setattr(nmea, "_fields", lambda line: None)
    monkeypatch.setattr(nmea, "_dm_to_sd", lambda dm: float(nmea_utils.dm_to_sd(dm)))
    monkeypatch.setattr(nmea, "_timestamp", nmea_utils.timestamp)
    for f in files:
        assert fast[f.name] == _decode_all(f), f.name


def _pynmea2_fields(line: str) -> tuple[str, list[str]] | None:
    try:
        msg = pynmea2.parse(line, check=True)
    except (pynmea2.ParseError, ValueError):
        return None
    return getattr(msg, "sentence_type", None), msg.data


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["GP", "GN", "BD", "gp", "G_", "G1"]), st.sampled_from(["RMC", "GGA", "GNS", "GLL", "rmc", "GSV"]),
       st.lists(st.text(alphabet="0123456789.,ANSEW-+ *\u00e9", max_size=12), max_size=14), st.booleans(), st.booleans())
@example("G1", "RMC", ["123519", "A", "4807.038", "N", "01131.000", "E"], True, False)  # a talker with a digit (pynmea2: \w{2})
@example("BD", "GLL", [], True, False)
def test_property_fast_fields_agree_with_pynmea2(talker: str, kind: str, fields: list[str], good_sum: bool, lower: bool) -> None:
    body = f"{talker}{kind}," + ",".join(fields)
    cs = functools.reduce(operator.xor, map(ord, body), 0) ^ (0 if good_sum else 1)
    line = f"${body}*{cs:02X}"
    line = line.lower() if lower else line
    fast = nmea._fields(line)
    plain = talker.isalnum() and kind in nmea.FIELDS and good_sum and not lower and not any("*" in f or not f.isascii() for f in fields)
    if plain:  # the common case never goes through pynmea2
        assert fast is not None, line
    if fast is not None:
        assert fast == _pynmea2_fields(line)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.from_regex(r"\A[0-9]{1,5}\.[0-9]{1,8}\Z"), st.text(alphabet="0123456789.-+ e\u0663", max_size=12)))
def test_property_fast_dm_to_sd_is_pynmea2s(dm: str) -> None:
    try:
        want: float | type = nmea_utils.dm_to_sd(dm)
    except ValueError:
        want = ValueError
    try:
        got: float | type = nmea._dm_to_sd(dm)
    except ValueError:
        got = ValueError
    assert got == want
