"""Geofence semantics: accuracy, hysteresis, dwell, updates, schedules (fix time only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from drivers.gps.geofence import ZoneIndex, ZoneSpec
from drivers.gps.rules import GeofenceRules, RuleFix, judge_position
from tests.gps.helpers import LAT0, LON0, offset, square

T0 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # 12:00 Shanghai


class Recorder:
    """The alert changes the rules returned, in order, over several batches."""

    def __init__(self, rules: GeofenceRules) -> None:
        self.rules = rules
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def evaluate(self, fixes: list[RuleFix], replay: bool = False) -> None:
        for c in self.rules.evaluate(fixes, replay=replay):
            self.calls.append(("raise" if c.raise_ else "clear", c.kind, c.kw))

    def actions(self) -> list[str]:
        return [f"{a}:{k}" for a, k, _ in self.calls]


def make(zone: ZoneSpec, update_s: float = 0) -> tuple[GeofenceRules, Recorder]:
    rules = GeofenceRules(ZoneIndex([zone]), update_s)
    return rules, Recorder(rules)


def at(s: float, east_m: float, acc: float = 5.0) -> RuleFix:
    lat, lon = offset(0, east_m)
    return RuleFix("d1", "p1", T0 + timedelta(seconds=s), lat, lon, acc)


HOME = ZoneSpec("home", "inclusion", square(300), buffer_m=30, dwell_s=0, person_ids=("p1",))


def test_exit_update_and_return() -> None:
    rules, rec = make(HOME)
    rec.evaluate([at(0, 0), at(10, 400), at(20, 450), at(30, 320), at(40, 100)])
    # 320 m is in the hysteresis band: no update, no clear
    assert rec.actions() == ["raise:inclusion_exit", "raise:inclusion_exit", "clear:inclusion_exit"]


def test_accuracy_circle_overlapping_the_zone_is_not_a_breach() -> None:
    rules, rec = make(HOME)
    # 80 m outside but accuracy 60 m: 80 - 60 = 20 < buffer 30
    rec.evaluate([at(0, 380, acc=60), at(10, 380, acc=40)])
    assert rec.actions() == ["raise:inclusion_exit"]  # only the second, 80 - 40 > 30


def test_hysteresis_band_does_not_flap() -> None:
    rules, rec = make(HOME)
    rec.evaluate([at(0, 400), at(10, 310), at(20, 340), at(30, 310)])  # out, then in the band
    assert rec.actions() == ["raise:inclusion_exit", "raise:inclusion_exit"]
    rec.evaluate([at(40, 299)])
    assert rec.actions()[-1] == "clear:inclusion_exit"


def test_dwell_time_in_fix_time() -> None:
    zone = ZoneSpec("home", "inclusion", square(300), buffer_m=30, dwell_s=60)
    rules, rec = make(zone)
    rec.evaluate([at(0, 400), at(30, 400), at(50, 200), at(60, 400), at(100, 400)])
    assert rec.actions() == []  # the brief return reset the dwell
    rec.evaluate([at(121, 400)])
    assert rec.actions() == ["raise:inclusion_exit"]


def test_updates_are_rate_limited() -> None:
    rules, rec = make(HOME, update_s=30)
    rec.evaluate([at(s, 400) for s in range(0, 100, 10)])
    assert len(rec.calls) == 4  # at 0, 30, 60, 90


def test_exclusion_zone_needs_the_whole_accuracy_circle_inside() -> None:
    school = ZoneSpec("school", "exclusion", {"type": "Point", "coordinates": list(reversed(offset(0, 1000)))}, radius_m=200, buffer_m=20, dwell_s=0, level="red")
    rules, rec = make(school)
    rec.evaluate([at(0, 850, acc=30), at(10, 900, acc=30), at(20, 1000, acc=30), at(30, 1300)])
    # 850: 50 m inside - 30 < 20; 900: 100 - 30 > 20 → breach; 1300: outside → cleared
    assert rec.actions() == ["raise:exclusion_breach", "raise:exclusion_breach", "clear:exclusion_breach"]
    assert rec.calls[0][2]["level"] == "red"


def test_curfew_only_inside_its_window_and_cleared_when_it_ends() -> None:
    night = ZoneSpec("home", "inclusion", square(300), buffer_m=30, dwell_s=0, schedule=[{"days": [1, 2, 3, 4, 5, 6, 7], "start": "22:00", "end": "06:00"}], timezone="Asia/Shanghai")
    rules, rec = make(night)
    noon = T0
    rec.evaluate([RuleFix("d1", "p1", noon, *offset(0, 2000), 5)])
    assert rec.calls == []  # daytime: free to go
    late = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)  # 22:30 Shanghai
    rec.evaluate([RuleFix("d1", "p1", late, *offset(0, 2000), 5)])
    assert rec.actions() == ["raise:curfew"]
    morning = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 06:30 Shanghai
    rec.evaluate([RuleFix("d1", "p1", morning, *offset(0, 2000), 5)])
    assert rec.actions() == ["raise:curfew", "clear:curfew"]


# --- after a restart: state seeded from the alerts, stored fixes replayed ------------------

DWELL = ZoneSpec("home", "inclusion", square(300), buffer_m=30, dwell_s=60, person_ids=("p1",))


def test_replayed_dwell_goes_on_from_its_first_fix() -> None:
    """Killed 30 s into a 60 s dwell: the stored fixes start it again, and the next fix
    after the restart raises the alert at its own fix time (not 60 s after the restart)."""
    rules, rec = make(DWELL)
    rec.evaluate([at(0, 400), at(30, 400)], replay=True)
    assert rec.calls == []
    rec.evaluate([at(60, 400)])
    assert rec.actions() == ["raise:inclusion_exit"] and rec.calls[0][2]["at"] == T0 + timedelta(seconds=60)
    fresh, rec2 = make(DWELL)  # what a restart without the replay did: the dwell starts over
    rec2.evaluate([at(60, 400)])
    assert rec2.calls == []


def test_replay_applies_a_change_whose_alert_was_lost() -> None:
    """The positions were committed, the alert transaction was not: the replay raises it."""
    rules, rec = make(DWELL)
    rec.evaluate([at(0, 400), at(30, 400), at(60, 400)], replay=True)
    assert rec.actions() == ["raise:inclusion_exit"] and rec.calls[0][2]["at"] == T0 + timedelta(seconds=60)


def test_replay_returns_no_update_of_an_ongoing_alert() -> None:
    rules, rec = make(DWELL)
    rules.seed("d1", "home", violating=True, judged_until=T0 + timedelta(seconds=60))
    rec.evaluate([at(0, 400), at(60, 400), at(90, 400), at(120, 450)], replay=True)
    assert rec.calls == []  # before its last update: judged; after: updates only
    rec.evaluate([at(150, 100)])  # back home, live: the ongoing alert is cleared, not opened again
    assert rec.actions() == ["clear:inclusion_exit"]


def test_seeded_state_skips_fixes_judged_before_the_restart() -> None:
    """A fix from before the alert's last update that was back inside must not clear it:
    its effect is already in the alert (judged then, with the state of then)."""
    rules, rec = make(DWELL)
    rules.seed("d1", "home", violating=True, judged_until=T0 + timedelta(seconds=100))
    rec.evaluate([at(0, 100), at(100, 400)], replay=True)
    assert rec.calls == []
    rec.evaluate([at(130, 100)], replay=True)  # after it: the clear that was lost
    assert rec.actions() == ["clear:inclusion_exit"]


def test_a_condition_resolved_before_the_restart_is_not_raised_again() -> None:
    rules, rec = make(DWELL)
    rules.seed("d1", "home", violating=False, judged_until=T0 + timedelta(seconds=100))  # cleared by the rules at 100
    rec.evaluate([at(0, 400), at(30, 400), at(60, 400), at(100, 100)], replay=True)
    assert rec.calls == []


def test_a_zone_that_cannot_be_placed_leaves_the_others_working(caplog: Any) -> None:
    """Found by the fuzzer: a circle of radius 5e-324 m was accepted, and building the
    index then failed for every zone. Such a zone is refused where zones enter, and one
    stored anyway is left out of the index (logged), not everyone's geofences with it."""
    from drivers.gps.geofence import check_zone

    tiny = ZoneSpec("tiny", "inclusion", {"type": "Point", "coordinates": [121.47, 31.23]}, radius_m=5e-324, person_ids=("p1",))
    try:
        check_zone(tiny)
    except ValueError as e:
        assert "tiny" in str(e)
    else:
        raise AssertionError("a zone the index cannot place was accepted")
    index = ZoneIndex([tiny, HOME])
    assert [z.id for z in index.zones] == ["home"] and "tiny" in caplog.text
    rules = GeofenceRules(index, 0)
    rec = Recorder(rules)
    rec.evaluate([at(0, 400)])
    assert rec.actions() == ["raise:inclusion_exit"]


def test_one_position_judged_against_the_persons_zones() -> None:
    """A remote check-in's position (judge_position): the same accuracy and buffer as the
    rules, no dwell; exclusion zones by their inside; scheduled zones only in their windows;
    other persons' zones left out."""
    la, lo = offset(0, 200)
    bar = ZoneSpec("bar", "exclusion", square(50, la, lo), buffer_m=10, person_ids=("p1",), level="orange")
    night = ZoneSpec("night", "inclusion", square(100), buffer_m=30, person_ids=("p1",),
                     schedule=[{"days": [1, 2, 3, 4, 5, 6, 7], "start": "22:00", "end": "06:00"}], timezone="Asia/Shanghai")
    theirs = ZoneSpec("theirs", "inclusion", square(10), person_ids=("p2",))
    index = ZoneIndex([HOME, bar, night, theirs])

    def judged(east_m: float, acc: float = 5, t: datetime = T0) -> dict[str, str]:
        la, lo = offset(0, east_m)
        return {c.zone_id: c.state for c in judge_position(index, "p1", la, lo, acc, t)}

    assert judged(0) == {"home": "ok", "bar": "ok"}  # noon: the night zone is not in force
    assert judged(200) == {"home": "ok", "bar": "breach"}  # in the bar, by more than accuracy and buffer
    assert judged(245, acc=5) == {"home": "ok", "bar": "border"}  # 5 m inside the bar: within the buffer
    assert judged(330, acc=5) == {"home": "border", "bar": "ok"}  # 30 m out: within the buffer
    assert judged(400, acc=5) == {"home": "breach", "bar": "ok"}
    assert judged(400, acc=80) == {"home": "border", "bar": "ok"}  # the accuracy circle still reaches home
    at_night = T0 + timedelta(hours=11)  # 23:00 Shanghai
    assert judged(0, t=at_night) == {"home": "ok", "bar": "ok", "night": "ok"}
    assert judged(200, t=at_night)["night"] == "breach"
    [c] = [c for c in judge_position(index, "p1", *offset(0, 200), 5, T0) if c.zone_id == "bar"]
    assert (c.alert_kind, c.level, c.depth_m) == ("exclusion_breach", "orange", 50.0)
    assert judge_position(index, "p3", LAT0, LON0, 5, T0) == []
