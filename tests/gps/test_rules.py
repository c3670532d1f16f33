"""Geofence semantics: accuracy, hysteresis, dwell, updates, schedules (fix time only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from drivers.gps.geofence import ZoneIndex, ZoneSpec
from drivers.gps.rules import GeofenceRules, RuleFix
from tests.gps.helpers import offset, square

T0 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # 12:00 Shanghai


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def raise_alert(self, kind: str, **kw: Any) -> None:
        self.calls.append(("raise", kind, kw))

    async def clear(self, kind: str, **kw: Any) -> None:
        self.calls.append(("clear", kind, kw))

    def actions(self) -> list[str]:
        return [f"{a}:{k}" for a, k, _ in self.calls]


def make(zone: ZoneSpec, update_s: float = 0) -> tuple[GeofenceRules, Recorder]:
    rec = Recorder()
    return GeofenceRules(ZoneIndex([zone]), rec.raise_alert, rec.clear, update_s), rec


def at(s: float, east_m: float, acc: float = 5.0) -> RuleFix:
    lat, lon = offset(0, east_m)
    return RuleFix("d1", "p1", T0 + timedelta(seconds=s), lat, lon, acc)


HOME = ZoneSpec("home", "inclusion", square(300), buffer_m=30, dwell_s=0, person_ids=("p1",))


async def test_exit_update_and_return() -> None:
    rules, rec = make(HOME)
    await rules.evaluate([at(0, 0), at(10, 400), at(20, 450), at(30, 320), at(40, 100)])
    # 320 m is in the hysteresis band: no update, no clear
    assert rec.actions() == ["raise:inclusion_exit", "raise:inclusion_exit", "clear:inclusion_exit"]


async def test_accuracy_circle_overlapping_the_zone_is_not_a_breach() -> None:
    rules, rec = make(HOME)
    # 80 m outside but accuracy 60 m: 80 - 60 = 20 < buffer 30
    await rules.evaluate([at(0, 380, acc=60), at(10, 380, acc=40)])
    assert rec.actions() == ["raise:inclusion_exit"]  # only the second, 80 - 40 > 30


async def test_hysteresis_band_does_not_flap() -> None:
    rules, rec = make(HOME)
    await rules.evaluate([at(0, 400), at(10, 310), at(20, 340), at(30, 310)])  # out, then in the band
    assert rec.actions() == ["raise:inclusion_exit", "raise:inclusion_exit"]
    await rules.evaluate([at(40, 299)])
    assert rec.actions()[-1] == "clear:inclusion_exit"


async def test_dwell_time_in_fix_time() -> None:
    zone = ZoneSpec("home", "inclusion", square(300), buffer_m=30, dwell_s=60)
    rules, rec = make(zone)
    await rules.evaluate([at(0, 400), at(30, 400), at(50, 200), at(60, 400), at(100, 400)])
    assert rec.actions() == []  # the brief return reset the dwell
    await rules.evaluate([at(121, 400)])
    assert rec.actions() == ["raise:inclusion_exit"]


async def test_updates_are_rate_limited() -> None:
    rules, rec = make(HOME, update_s=30)
    await rules.evaluate([at(s, 400) for s in range(0, 100, 10)])
    assert len(rec.calls) == 4  # at 0, 30, 60, 90


async def test_exclusion_zone_needs_the_whole_accuracy_circle_inside() -> None:
    school = ZoneSpec("school", "exclusion", {"type": "Point", "coordinates": list(reversed(offset(0, 1000)))}, radius_m=200, buffer_m=20, dwell_s=0, level="red")
    rules, rec = make(school)
    await rules.evaluate([at(0, 850, acc=30), at(10, 900, acc=30), at(20, 1000, acc=30), at(30, 1300)])
    # 850: 50 m inside - 30 < 20; 900: 100 - 30 > 20 → breach; 1300: outside → cleared
    assert rec.actions() == ["raise:exclusion_breach", "raise:exclusion_breach", "clear:exclusion_breach"]
    assert rec.calls[0][2]["level"] == "red"


async def test_curfew_only_inside_its_window_and_cleared_when_it_ends() -> None:
    night = ZoneSpec("home", "inclusion", square(300), buffer_m=30, dwell_s=0, schedule=[{"days": [1, 2, 3, 4, 5, 6, 7], "start": "22:00", "end": "06:00"}], timezone="Asia/Shanghai")
    rules, rec = make(night)
    noon = T0
    await rules.evaluate([RuleFix("d1", "p1", noon, *offset(0, 2000), 5)])
    assert rec.calls == []  # daytime: free to go
    late = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)  # 22:30 Shanghai
    await rules.evaluate([RuleFix("d1", "p1", late, *offset(0, 2000), 5)])
    assert rec.actions() == ["raise:curfew"]
    morning = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 06:30 Shanghai
    await rules.evaluate([RuleFix("d1", "p1", morning, *offset(0, 2000), 5)])
    assert rec.actions() == ["raise:curfew", "clear:curfew"]
