"""The dashboard's alerts per day are counted by the database per local day of the gateway's
time zone (Asia/Shanghai here, UTC+8): an alert at 00:30 local time is today's although it is
yesterday in UTC, one at 23:30 local yesterday's, and one older than 30 days is not counted.
On SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import running

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.postgres
async def test_alerts_per_day_by_local_day(any_db_url: str, make_config: Any) -> None:
    async with running(make_config(storage={"database_url": any_db_url}, gateway={"timezone": "Asia/Shanghai"})) as gw:
        today = datetime.now(UTC).astimezone(TZ).date()
        yesterday = today - timedelta(days=1)
        at = {  # local times, as the office lives them
            "today early": datetime.combine(today, time(0, 30), TZ),
            "yesterday late": datetime.combine(yesterday, time(23, 30), TZ),
            "five days ago": datetime.combine(today - timedelta(days=5), time(12, 0), TZ),
            "too old": datetime.combine(today - timedelta(days=40), time(12, 0), TZ),
        }
        alerts = gw.services.alerts
        await alerts.raise_alert("tamper", device_id="d1", level="red", at=at["today early"], key="a")
        await alerts.raise_alert("tamper", device_id="d2", level="orange", at=at["yesterday late"], key="b")
        await alerts.raise_alert("tamper", device_id="d3", level="orange", at=at["yesterday late"] - timedelta(hours=1), key="c")
        await alerts.raise_alert("sos", device_id="d4", level="blue", at=at["five days ago"], key="d")
        await alerts.raise_alert("sos", device_id="d5", level="red", at=at["too old"], key="e")
        r = await gw.client.get("/api/dashboard", headers=await gw.login())
        assert r.status_code == 200, r.text
        days = {d["day"]: d for d in r.json()["alerts_per_day"]}
        assert len(days) == 30 and max(days) == today.isoformat()
        assert (days[today.isoformat()]["red"], days[today.isoformat()]["orange"]) == (1, 0)
        assert (days[yesterday.isoformat()]["red"], days[yesterday.isoformat()]["orange"]) == (0, 2)
        assert days[(today - timedelta(days=5)).isoformat()]["blue"] == 1
        assert sum(d["red"] + d["orange"] + d["yellow"] + d["blue"] for d in days.values()) == 4  # not the 40-day-old one
