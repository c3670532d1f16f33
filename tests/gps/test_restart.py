"""A gateway killed (SIGKILL) while a tracker is outside its zone, before the dwell has
passed: after the restart the zone state is rebuilt from the stored positions, and the
alert comes at the right fix time (the first fix past the dwell), not `dwell_s` after
the restart. The real `gateway run` process, the real Mosquitto, the real ingest worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.db.engine import Database
from simulators.tracker import nmea_fix
from tests.conftest import ROOT, free_port
from tests.gps.helpers import alerts, forget_session, offset, positions, square, uid, wait_for

DWELL_S = 60


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(cfg)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


async def _healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            return (await c.get(f"{url}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_sigkill_mid_dwell_the_alert_comes_at_the_right_fix_time(tmp_path: Path, mqtt_url: str) -> None:
    tag = uid()
    port = free_port()
    dev, person = f"t-{tag}", f"p-{tag}"
    cfg = tmp_path / "site.yaml"
    cfg.write_text(yaml.safe_dump({
        "gateway": {"data_dir": str(tmp_path / "data"), "port": port, "node_id": f"kill-{tag}"},
        "mqtt": {"url": mqtt_url, "client_id": f"gw-kill-{tag}"},
        "thresholds": {"gps": {"alert_update_s": 0}},
        "persons": [{"id": person, "name": "P"}],
        "devices": [{"id": dev, "kind": "tracker", "person_id": person}],
        "zones": [{"id": f"home-{tag}", "kind": "inclusion", "geometry": square(300), "buffer_m": 30, "dwell_s": DWELL_S, "person_ids": [person]}],
    }))
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    db = Database(f"sqlite:///{tmp_path / 'data' / 'gateway.db'}")
    store = SimpleNamespace(db=db)
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{tag}", clean_session=True)
    pub.connect("127.0.0.1", 1883)
    pub.loop_start()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=180)
    outside = offset(0, 450)  # 150 m beyond the square's edge, well past the 30 m buffer

    def send(s: int) -> None:
        pub.publish(f"trackers/{dev}/nmea", nmea_fix(t0 + timedelta(seconds=s), *outside), qos=1).wait_for_publish(10)

    proc = _start(cfg, log)
    try:
        await wait_for(lambda: _healthy(url), 60, "the gateway up")
        for s in (0, 20, 40):  # outside for 40 s of a 60 s dwell
            send(s)
        await wait_for(lambda: _count(store, dev, 3), 60, "the three fixes stored")
        assert await alerts(store, kind="inclusion_exit") == []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)

        proc = _start(cfg, log)
        await wait_for(lambda: _healthy(url), 60, "the gateway up again")
        send(60)  # the dwell has passed at this fix
        exits = await wait_for(lambda: alerts(store, kind="inclusion_exit"), 60, "the inclusion_exit alert")
        assert len(exits) == 1
        assert exits[0].opened_at == t0 + timedelta(seconds=60), (exits[0].opened_at, log.read_text()[-3000:])
        assert exits[0].device_id == dev and exits[0].state == "open"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        pub.disconnect()
        pub.loop_stop()
        await db.close()
        for client in (f"gw-kill-{tag}", f"gw-kill-{tag}-trackers"):
            forget_session("127.0.0.1", 1883, client)


async def _count(store: Any, dev: str, n: int) -> bool:
    return len(await positions(store, dev)) >= n
