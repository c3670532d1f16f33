"""Fan-out taps: called on the publishing thread, removable by the same callable."""

from __future__ import annotations

from streams.fanout import Fanout, SourceDown


class Tapper:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def feed(self, item: object) -> None:
        self.seen.append(item)


def test_a_bound_method_tap_is_removed_by_untap() -> None:
    fan, t = Fanout("cam"), Tapper()
    fan.tap(t.feed)
    fan.publish(SourceDown(1.0, "first"))
    fan.untap(t.feed)  # a new bound-method object, equal to the tapped one
    fan.publish(SourceDown(2.0, "second"))
    assert [i.reason for i in t.seen] == ["first"]  # type: ignore[attr-defined]
