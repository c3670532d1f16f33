"""Schedule windows ("22:00-06:00 on days 1..7") in a zone's own time zone.

`days` are ISO weekdays of the window's start: a 22:00-06:00 window on day 5
(Friday) runs Friday 22:00 to Saturday 06:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo


@lru_cache(maxsize=256)
def _tz(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def window_start(windows: list[dict[str, Any]] | None, tz: str, at: datetime) -> datetime | None:
    """Start (aware) of the window containing `at`, or None when none does."""
    if not windows:
        return None
    local = at.astimezone(_tz(tz))
    m = local.hour * 60 + local.minute + local.second / 60
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for w in windows:
        days = set(w.get("days") or range(1, 8))
        s, e = _minutes(w["start"]), _minutes(w["end"])
        if s < e:
            if local.isoweekday() in days and s <= m < e:
                return today + timedelta(minutes=s)
        else:  # crosses midnight (or spans the whole day when s == e)
            if local.isoweekday() in days and m >= s:
                return today + timedelta(minutes=s)
            yesterday = local - timedelta(days=1)
            if yesterday.isoweekday() in days and m < e:
                return today - timedelta(days=1) + timedelta(minutes=s)
    return None
