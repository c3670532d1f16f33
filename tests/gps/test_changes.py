"""Changes made through the API reach the tracker driver at once, with the real
Mosquitto and the real ingest worker: a tracker registered and sending at once has its
first fix stored; a tracker disabled is refused from its next message; and fixes from a
receiver that lost its clock (1970, 2000) are rejected and counted, never stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from simulators.tracker import nmea_fix
from tests.conftest import running
from tests.gps.helpers import (
    LAT0,
    LON0,
    forget_gateway,
    offset,
    positions,
    publisher,
    uid,
    wait_for,
)


def _rejected(svc: Any, reason: str) -> float:
    return float(svc.metrics.registry.get_sample_value("gateway_gps_rejected_total", {"reason": reason}) or 0)


async def test_tracker_registered_through_the_api_is_heard_from_its_first_fix(make_config: Any, mqtt_url: str) -> None:
    tag = uid()
    marker = f"m-{tag}"  # a tracker registered all along: its fix, sent last, shows what was sent before it is handled
    cfg = make_config(mqtt={"url": mqtt_url, "client_id": f"gw-chg-{tag}"}, persons=[{"id": f"p-{tag}", "name": "P"}],
                      devices=[{"id": marker, "kind": "tracker"}])
    pub = publisher(tag)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        async with running(cfg) as r:
            svc, admin = r.services, await r.login()
            dev = f"t-{tag}"
            res = await r.client.post("/api/devices", json={"id": dev, "kind": "tracker", "person_id": f"p-{tag}",
                                                            "settings": {"report_interval_s": 30}}, headers=admin)
            assert res.status_code == 201, res.text
            # the very first message, sent the moment the API answered
            pub.publish(f"trackers/{dev}/nmea", nmea_fix(now - timedelta(seconds=5), LAT0, LON0), qos=1).wait_for_publish(5)
            pub.publish(f"trackers/{dev}/nmea", nmea_fix(now, *offset(10, 0)), qos=1).wait_for_publish(5)
            rows = await wait_for(lambda: _stored(svc, dev, 2), what="both fixes stored")
            assert rows[0].fix_time == now - timedelta(seconds=5)

            # settings are checked with the tracker's typed model, as in the configuration file
            bad = await r.client.post("/api/devices", json={"id": f"u-{tag}", "kind": "tracker", "settings": {"report_interval_s": 0}}, headers=admin)
            assert bad.status_code == 422 and "report_interval_s" in bad.text
            bad = await r.client.post("/api/devices", json={"id": f"u-{tag}", "kind": "tracker", "settings": {"colour": "red"}}, headers=admin)
            assert bad.status_code == 422 and "colour" in bad.text
            res = await r.client.patch(f"/api/devices/{dev}", json={"settings": {"report_interval_s": 45}}, headers=admin)
            assert res.status_code == 200 and res.json()["settings"] == {"report_interval_s": 45}
            t = r.areas.trackers.registry.get(dev)
            assert t is not None and t.report_interval_s == 45 and t.filter.last_time == now  # its state went on

            # disabled: refused from the next message, not after a reload
            assert (await r.client.delete(f"/api/devices/{dev}", headers=admin)).status_code == 204
            pub.publish(f"trackers/{dev}/nmea", nmea_fix(now + timedelta(seconds=5), *offset(20, 0)), qos=1).wait_for_publish(5)
            pub.publish(f"trackers/{marker}/nmea", nmea_fix(now, LAT0, LON0), qos=1).wait_for_publish(5)
            await wait_for(lambda: _stored(svc, marker, 1), what="the marker's fix, sent after the disabled tracker's")
            assert len(await positions(svc, dev)) == 2
    finally:
        forget_gateway(f"gw-chg-{tag}", pub)


async def test_fixes_from_a_receiver_without_a_clock_are_rejected_and_counted(make_config: Any, mqtt_url: str) -> None:
    tag = uid()
    dev = f"t-{tag}"
    cfg = make_config(mqtt={"url": mqtt_url, "client_id": f"gw-old-{tag}"}, persons=[{"id": f"p-{tag}", "name": "P"}],
                      devices=[{"id": dev, "kind": "tracker", "person_id": f"p-{tag}"}])
    pub = publisher(tag)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        async with running(cfg) as r:
            svc = r.services
            # OwnTracks tst 1 (1970), then NMEA dated 01-01-2000, then a good fix
            pub.publish(f"owntracks/u/{dev}", f'{{"_type":"location","lat":{LAT0},"lon":{LON0},"tst":1}}', qos=1).wait_for_publish(5)
            pub.publish(f"trackers/{dev}/nmea", nmea_fix(datetime(2000, 1, 1, 0, 0, 5, tzinfo=UTC), LAT0, LON0), qos=1).wait_for_publish(5)
            pub.publish(f"trackers/{dev}/nmea", nmea_fix(now, LAT0, LON0), qos=1).wait_for_publish(5)
            rows = await wait_for(lambda: _stored(svc, dev, 1), what="the good fix stored")
            assert [p.fix_time for p in rows] == [now]  # the 1970 and 2000 fixes were not taken as the first in order
            assert _rejected(svc, "stale") == 2
    finally:
        forget_gateway(f"gw-old-{tag}", pub)


async def _stored(svc: Any, dev: str, n: int) -> list[Any] | None:
    rows = await positions(svc, dev)
    return rows if len(rows) >= n else None
