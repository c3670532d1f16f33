"""The tracker ingest worker against the real Mosquitto: positions arrive through the
worker process, and a worker killed mid-stream (SIGKILL: no goodbye, nothing flushed)
is restarted and loses no QoS 1 position; what it had not had acknowledged comes again
from the broker and is not stored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from drivers.gps.inbound import decode_inbound, split_topic
from simulators.tracker import nmea_fix
from tests.conftest import free_port, port_open, running
from tests.gps.helpers import (
    LAT0,
    LON0,
    forget_gateway,
    forget_session,
    offset,
    positions,
    publisher,
    uid,
    wait_for,
)
from tests.waiting import wait_for_blocking

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


async def test_positions_pass_through_the_worker_and_a_killed_worker_loses_none(make_config: Any, mqtt_url: str) -> None:
    tag = uid()
    cfg = make_config(mqtt={"url": mqtt_url, "client_id": f"gw-ingest-{tag}"},
                      persons=[{"id": f"p-{tag}", "name": "P"}],
                      devices=[{"id": f"t-{tag}", "kind": "tracker", "person_id": f"p-{tag}", "report_interval_s": 60}])
    pub = publisher(tag)
    try:
        async with running(cfg) as r:
            svc = r.services
            ingest = r.areas.trackers.ingest
            assert ingest is not None and ingest.up.is_set()  # start() waited for it to subscribe
            first = ingest.proc.pid
            assert first != os.getpid()

            def send(k: int) -> None:
                pub.publish(f"trackers/t-{tag}/nmea", nmea_fix(T0 + timedelta(seconds=k), *offset(k, 0)), qos=1).wait_for_publish(5)

            for k in range(30):
                send(k)
            await wait_for(lambda: _count(svc, f"t-{tag}", 30), what="30 positions through the worker")

            # Kill it while it holds messages: publish a burst and kill at once.
            for k in range(30, 60):
                send(k)
            os.kill(first, signal.SIGKILL)
            for k in range(60, 90):
                send(k)  # the worker is down: the broker keeps these for its session
            stored = await wait_for(lambda: _count(svc, f"t-{tag}", 90), timeout=30, what="all 90 positions after the worker was killed")
            # the new worker says it is up once subscribed, but its persistent session delivers
            # what the broker kept as soon as it connects: those positions may be stored first
            await wait_for(lambda: ingest.proc.pid != first and ingest.up.is_set(), timeout=30, what="the restarted worker up")
            assert sorted(p.fix_time for p in stored) == [T0 + timedelta(seconds=k) for k in range(90)]  # each exactly once
            text = svc.metrics.render().decode()
            # the restart the kill caused
            assert (svc.metrics.registry.get_sample_value("gateway_gps_ingest_restarts_total") or 0) >= 1, text
            assert (svc.metrics.registry.get_sample_value("gateway_gps_ingest_batches_total") or 0) >= 2  # from each worker
    finally:
        forget_gateway(f"gw-ingest-{tag}", pub)


async def test_without_the_worker_the_gateway_link_subscribes(make_config: Any, mqtt_url: str) -> None:
    tag = uid()
    cfg = make_config(mqtt={"url": mqtt_url, "client_id": f"gw-noworker-{tag}"},
                      devices=[{"id": f"t-{tag}", "kind": "tracker", "report_interval_s": 60}],
                      thresholds={"gps": {"ingest_worker": False}})
    pub = publisher(tag)
    try:
        async with running(cfg) as r:
            svc = r.services
            assert r.areas.trackers.ingest is None
            await wait_for(svc.mqtt.connected.is_set, what="gateway connected")
            pub.publish(f"trackers/t-{tag}/nmea", nmea_fix(T0, LAT0, LON0), qos=1).wait_for_publish(5)
            await wait_for(lambda: _count(svc, f"t-{tag}", 1), what="the position through the gateway's own link")
    finally:
        pub.loop_stop()
        pub.disconnect()
        forget_session("127.0.0.1", 1883, f"gw-noworker-{tag}")


async def test_broker_unreachable_the_gateway_still_starts_and_stops_its_worker(make_config: Any) -> None:
    cfg = make_config(mqtt={"url": f"mqtt://127.0.0.1:{free_port()}", "client_id": f"gw-nobroker-{uid()}"},
                      devices=[{"id": "t-x", "kind": "tracker"}])
    async with running(cfg) as r:
        ingest = r.areas.trackers.ingest
        assert ingest is not None and not ingest.up.is_set()  # start() gave up waiting, the worker keeps trying
        worker = ingest.proc.pid
        assert _alive(worker)
        began = time.monotonic()
    assert time.monotonic() - began < 8  # stopping does not wait for a broker that never came
    assert not _alive(worker)


def test_worker_ignores_group_signals_and_exits_with_its_gateway(tmp_path: Any, mqtt_url: str) -> None:
    """A Ctrl+C (SIGINT to the process group) is the gateway's to handle: the worker lives
    on until the gateway closes its stdin. A gateway killed outright leaves no worker behind
    holding its MQTT session."""
    tag = uid()
    conf, port = tmp_path / "gw.yaml", free_port()
    conf.write_text(yaml.safe_dump({
        "gateway": {"data_dir": str(tmp_path / "data"), "port": port},
        "mqtt": {"url": mqtt_url, "client_id": f"gw-orphan-{tag}"},
        "devices": [{"id": f"t-{tag}", "kind": "tracker"}],
    }))
    gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        def serving() -> bool:  # the gateway serves once its worker is up (or gave up waiting for it)
            assert gw.poll() is None, f"the gateway exited with {gw.returncode}"
            return port_open("127.0.0.1", port)

        wait_for_blocking(serving, 60, "the gateway to serve")

        def find_worker() -> int | None:
            kids = subprocess.run(["pgrep", "-P", str(gw.pid), "-f", "drivers.gps.ingest"], capture_output=True, text=True).stdout.split()
            return int(kids[0]) if kids else None

        worker = wait_for_blocking(find_worker, 60, "the ingest worker process")
        # It ignores SIGINT (not: handles it), from early in its start: a signal to the whole
        # group is then dropped by the kernel, whenever it comes.
        wait_for_blocking(lambda: _ignores(worker, signal.SIGINT), 30, "the worker to ignore SIGINT")
        os.kill(worker, signal.SIGINT)
        assert _ignores(worker, signal.SIGINT) and _alive(worker)
        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        wait_for_blocking(lambda: not _alive(worker), 30, "the worker to exit after its gateway")  # stdin closed by the kernel
    finally:
        if gw.poll() is None:
            gw.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)
        forget_session("127.0.0.1", 1883, f"gw-orphan-{tag}")
        forget_session("127.0.0.1", 1883, f"gw-orphan-{tag}-trackers")


def _ignores(pid: int, sig: int) -> bool:
    """Whether the process's disposition for `sig` is SIG_IGN (the SigIgn mask in /proc)."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    return bool(mask >> (sig - 1) & 1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_inbound_decoding_is_pure_and_says_what_is_wrong() -> None:
    today = T0.date()
    states: dict[str, Any] = {}
    assert split_topic("trackers/a/nmea") == ("a", "nmea") and split_topic("owntracks/u/b") == ("b", "owntracks")
    assert split_topic("trackers/a") is None and split_topic("other/a/nmea") is None
    m = decode_inbound("trackers/a/nmea", nmea_fix(T0, LAT0, LON0).encode(), states, today)
    assert m.dev == "a" and m.reject is None and m.fixes and m.fixes[0].fix_time == T0 and "a" in states
    assert decode_inbound("x/y", b"", states, today).dev is None
    assert decode_inbound("trackers/a/colour", b"red", states, today).reject == "bad_topic"
    assert decode_inbound("trackers/a/state", b"sideways", states, today).reject == "bad_state"
    assert decode_inbound("trackers/a/state", b" Offline\n", states, today).state == "offline"
    assert decode_inbound("trackers/a/status", b"[1]", states, today).reject == "bad_status"
    assert decode_inbound("trackers/a/status", b'{"battery": 7, "tamper": true}', states, today).status == {"battery": 7, "tamper": True}
    bad = decode_inbound("trackers/a/nmea", b"$GPRMC,1235", states, today)
    assert bad.fixes == [] and bad.skipped == {"checksum": 1}
    assert decode_inbound("owntracks/u/a", b'{"hello": 1}', states, today).owntracks.reason == "not_owntracks"  # type: ignore[union-attr]


async def _count(svc: Any, device: str, n: int) -> list[Any] | None:
    rows = await positions(svc, device)
    return rows if len(rows) >= n else None
