"""A gateway killed (SIGKILL) between an alert and its delivery delivers it after the restart,
and each receiver gets exactly one message for the alert.

A real `gateway run` with a tracker over Mosquitto: the tracker reports tampering (a red
alert) while every receiver is down, so each delivery is attempted and fails; the process
is killed; the receivers come up; the gateway is started again, and each receiver (checking
its peer's documented format and signature) gets the alert once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import ROOT, free_port, port_open, require_peer
from tests.outbox.receivers import ALL, Received, Secrets, channels, environment, robots, smtp
from tests.waiting import wait_for


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return int(c.execute(sql).fetchone()[0] or 0)
    except sqlite3.OperationalError:  # not migrated yet
        return 0


async def test_a_delivery_interrupted_by_sigkill_happens_once_after_restart(tmp_path: Path) -> None:
    require_peer(port_open("127.0.0.1", 1883), "Mosquitto on 127.0.0.1:1883")
    sec, got = Secrets(), Received()
    web_port, smtp_port = free_port(), free_port()
    tracker, data = f"trk-{uuid.uuid4().hex[:8]}", tmp_path / "data"
    db = data / "gateway.db"
    conf = tmp_path / "gw.yaml"
    conf.write_text(yaml.safe_dump({
        "gateway": {"data_dir": str(data), "port": free_port(), "node_id": f"k{uuid.uuid4().hex[:8]}", "public_url": "https://gw.example.cn"},
        "mqtt": {"url": "mqtt://127.0.0.1:1883"},
        "persons": [{"id": "p-k", "name": "张三"}],
        "devices": [{"id": tracker, "kind": "tracker", "person_id": "p-k"}],
        "delivery": {"channels": channels(f"http://127.0.0.1:{web_port}", smtp_port), "rules": [{"levels": ["red"], "channels": list(ALL)}],
                     "retry": {"base_delay_s": 0.2, "max_delay_s": 1.0}, "poll_s": 0.5},
    }, allow_unicode=True))
    env = {**os.environ, **environment(sec)}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    proc = start()
    try:
        await wait_for(lambda: _count(db, f"SELECT count(*) FROM devices WHERE id = '{tracker}'") == 1, 90, "the gateway up with its tracker")
        pub = paho.Client(CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()

        def tampered() -> bool:
            pub.publish(f"trackers/{tracker}/status", b'{"tamper": true, "battery": 60}', qos=1).wait_for_publish(5)
            return _count(db, "SELECT count(*) FROM alerts WHERE kind = 'tamper'") == 1

        try:
            # published until the gateway's subscription takes it (it may still be starting)
            await wait_for(tampered, 90, "the tamper alert stored", interval=1.0)
        finally:
            pub.loop_stop()
            pub.disconnect()
        await wait_for(lambda: _count(db, "SELECT count(*) FROM outbox_deliveries WHERE attempts >= 1 AND state = 'pending'") == len(ALL),
                       60, "every delivery attempted and failed (the receivers are down)")
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 30)
        async with robots(sec, got, port=web_port), smtp(got, port=smtp_port):
            proc = start()
            await wait_for(lambda: _count(db, "SELECT count(*) FROM outbox_deliveries WHERE state = 'sent'") == len(ALL), 90,
                           "every delivery made after the restart")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert got.rejected == []
    for channel in ALL:
        assert list(got.keys(channel).values()) == [1], (channel, got.by_channel.get(channel))
        assert "张三" in got.texts(channel)[0] and "红色预警" in got.texts(channel)[0]
    assert _count(db, "SELECT count(*) FROM alerts") == 1
