"""The log stays readable under a flood of bad input: 20,000 malformed messages from 40
trackers write one warning per tracker, then one summary per tracker and minute, while
every rejected message is counted in the metrics (the numbers' place)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.logs import Throttled
from gateway.mqtt import Message
from tests.conftest import running


def test_throttled_writes_the_first_then_a_summary_per_window(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = logging.getLogger("test.throttled")
    t = Throttled(log, every_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.throttled"):
        for i in range(1000):
            t.log(logging.WARNING, "dev-1", "dev-1: bad message %d", i)
        t.log(logging.WARNING, "dev-2", "dev-2: bad message")
        assert [r.getMessage() for r in caplog.records] == ["dev-1: bad message 0", "dev-2: bad message"]
        t.flush()  # the minute is not over: nothing yet
        assert len(caplog.records) == 2
        now[0] = 61
        t.flush()
        assert caplog.records[-1].getMessage() == "dev-1: 999 more like this in the last 60 s, the latest: dev-1: bad message 999"
        assert len(caplog.records) == 3  # dev-2 had nothing more to say
        now[0] = 200
        t.log(logging.WARNING, "dev-1", "dev-1: bad message again")
        assert caplog.records[-1].getMessage() == "dev-1: bad message again"


def test_a_bounded_number_of_keys(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.throttled.keys")
    t = Throttled(log, every_s=60, max_keys=10, clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING, "test.throttled.keys"):
        for i in range(5000):  # a flood of made-up device ids
            t.log(logging.WARNING, f"ghost-{i}", "ghost-%d: unknown", i)
    assert len(caplog.records) == 11  # ten keys, then the rest share one


async def test_twenty_thousand_malformed_messages_log_forty_lines(make_config: Any, caplog: pytest.LogCaptureFixture) -> None:
    devices = [{"id": f"t{i}", "kind": "tracker"} for i in range(40)]
    async with running(make_config(devices=devices)) as r:
        driver = r.areas.trackers
        batch = [Message(f"trackers/t{i % 40}/nmea", b"$GPRMC,1235*00\r\n", 1, False, i) for i in range(20_000)]
        with caplog.at_level(logging.WARNING, "drivers.gps.driver"):
            for k in range(0, len(batch), 500):  # as the MQTT adapter hands them over
                await driver.handle(batch[k: k + 500])
        lines = [rec for rec in caplog.records if rec.name == "drivers.gps.driver" and "rejected" in rec.getMessage()]
        assert len(lines) == 40, [rec.getMessage() for rec in lines[:50]]
        text = r.services.metrics.render().decode()
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("gateway_gps_rejected_total{") and ('reason="checksum"' in line or 'reason="malformed"' in line))
        assert counted == 20_000
