"""Position filter: every reason, per-device override, out-of-order kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from config.trackers import FilterOverride, GpsSettings
from drivers.gps.filter import ACCEPTED, OUT_OF_ORDER, FilterState, Limits, judge
from drivers.gps.nmea import Fix

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIMITS = Limits.of(GpsSettings(max_accuracy_m=100, max_speed_kmh=200, max_future_s=60, speed_reanchor=3))


def fix(s: float, lat: float = 31.0, lon: float = 121.0, acc: float | None = 10) -> Fix:
    return Fix(fix_time=NOW - timedelta(seconds=1000) + timedelta(seconds=s), lat=lat, lon=lon, accuracy_m=acc)


def run(fixes: list[Fix], limits: Limits = LIMITS) -> list[str]:
    st = FilterState()
    return [judge(f, st, limits, NOW) for f in fixes]


def test_reasons() -> None:
    assert run([fix(0), fix(0)]) == [ACCEPTED, "duplicate"]
    assert run([fix(0, 0.0, 0.0)]) == ["zero"]
    assert run([fix(0, 95.0, 0.0)]) == ["invalid"]
    assert run([fix(0, float("nan"), 1.0)]) == ["invalid"]
    assert run([fix(1000 + 61)]) == ["future"]
    assert run([fix(1000 + 59)]) == [ACCEPTED]
    assert run([fix(0, acc=150)]) == ["accuracy"]
    assert run([fix(0, acc=None)]) == [ACCEPTED]


def test_out_of_order_is_kept_but_not_rule_state() -> None:
    st = FilterState()
    assert judge(fix(10), st, LIMITS, NOW) == ACCEPTED
    assert judge(fix(5, 31.001), st, LIMITS, NOW) == OUT_OF_ORDER
    assert st.last_time == fix(10).fix_time and st.last_lat == 31.0


def test_speed_jump_then_reanchor() -> None:
    far = 31.1  # 11 km in 10 s: 4000 km/h
    got = run([fix(0), fix(10, far), fix(20, far), fix(30, far), fix(40, far)])
    assert got == [ACCEPTED, "speed", "speed", ACCEPTED, ACCEPTED]
    # a single outlier between good fixes is dropped and the track continues
    assert run([fix(0), fix(10, far), fix(20, 31.0001)]) == [ACCEPTED, "speed", ACCEPTED]


def test_per_device_override() -> None:
    loose = Limits.of(GpsSettings(max_accuracy_m=100), FilterOverride(max_accuracy_m=1000))
    assert run([fix(0, acc=500)], loose) == [ACCEPTED]
    assert run([fix(0, acc=500)], Limits.of(GpsSettings(max_accuracy_m=100))) == ["accuracy"]


def test_a_receiver_without_a_clock_is_rejected_as_stale() -> None:
    """A receiver that lost its clock reports 1970 (OwnTracks tst 0 or 1) or 2000-01-01
    (NMEA date 010100): as the first fix of a device it would have been in order."""
    for when in (datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2000, 1, 1, 0, 0, 5, tzinfo=UTC)):
        assert judge(Fix(fix_time=when, lat=31.0, lon=121.0), FilterState(), LIMITS, NOW) == "stale"
    week = timedelta(days=7)
    assert judge(Fix(fix_time=NOW - week - timedelta(seconds=1), lat=31.0, lon=121.0), FilterState(), LIMITS, NOW) == "stale"
    assert judge(Fix(fix_time=NOW - week + timedelta(seconds=1), lat=31.0, lon=121.0), FilterState(), LIMITS, NOW) == ACCEPTED
    short = Limits.of(GpsSettings(max_age_s=3600))
    assert run([fix(0)], short) == [ACCEPTED]  # 1000 s old
    assert judge(Fix(fix_time=NOW - timedelta(hours=2), lat=31.0, lon=121.0), FilterState(), short, NOW) == "stale"
