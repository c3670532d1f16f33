"""On two nodes (PostgreSQL, Mosquitto), the outbox is delivered once: one node holds the
sender; killed (SIGKILL) while an alert waits for an unreachable receiver, the other node
takes the sender over and delivers it, and the receiver gets exactly one message."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from gateway.db.engine import sync_url
from gateway.db.models import Alert, OutboxDelivery
from tests.cluster.test_failover import PASSWORD, SECRET, Node, cluster, owner_of, token, up
from tests.conftest import free_port, port_open, require_peer
from tests.outbox.receivers import Received, Secrets, environment, robots
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(300)


def count(engine: Any, stmt: Any) -> int:
    with Session(engine) as s:
        return int(s.scalar(stmt) or 0)


async def test_the_survivor_delivers_what_the_dead_sender_had_not(tmp_path: Path, mqtt_url: str, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_peer(port_open("127.0.0.1", 1883), "Mosquitto on 127.0.0.1:1883")
    sec, got = Secrets(), Received()
    web_port, suffix = free_port(), uuid.uuid4().hex[:6]
    tracker = f"t-{suffix}"
    nodes: dict[str, Node] = {}
    for name in ("a", "b"):
        port = free_port()
        conf = tmp_path / f"{name}.yaml"
        conf.write_text(yaml.safe_dump({
            "gateway": {"node_id": f"gw{name}-{suffix}", "port": port, "data_dir": str(tmp_path / f"data-{name}"), "secret_key": SECRET},
            "storage": {"database_url": pg_url, "media_dir": str(tmp_path / "media")},
            "mqtt": {"url": mqtt_url},
            "cluster": {"lease_ttl_s": 3, "renew_s": 1, "tracker_partitions": 1},
            "persons": [{"id": "p1", "name": "张三"}],
            "devices": [{"id": tracker, "kind": "tracker", "person_id": "p1", "report_interval_s": 60}],
            "delivery": {"channels": [{"name": "webhook", "kind": "webhook", "url": f"http://127.0.0.1:{web_port}/hook", "secret_env": "T_WEBHOOK_SECRET"}],
                         "rules": [{"levels": ["red"], "channels": ["webhook"]}], "retry": {"base_delay_s": 0.2, "max_delay_s": 1.0}, "poll_s": 0.5},
        }, allow_unicode=True))
        nodes[name] = Node(f"gw{name}-{suffix}", conf, port, tmp_path / f"{name}.log")
    for k, v in environment(sec).items():  # the nodes inherit the channel's secret
        monkeypatch.setenv(k, v)
    subprocess.run([sys.executable, "-m", "gateway.cli", "user", "add", "chief", "--role", "admin", "-c", str(nodes["a"].conf), "--password-stdin"],
                   input=f"{PASSWORD}\n".encode(), check=True, capture_output=True)
    engine = create_engine(sync_url(pg_url))
    try:
        for n in nodes.values():
            n.start()
            await wait_for(lambda n=n: up(n), 90, f"node {n.name} up")
        tok = token(nodes["a"])
        await wait_for(lambda: owner_of(cluster(nodes["a"], tok), "singleton:outbox-sender") is not None, 60, "a node holding the sender")
        sender = owner_of(cluster(nodes["a"], tok), "singleton:outbox-sender")
        pub = paho.Client(CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()

        def tampered() -> bool:
            pub.publish(f"trackers/{tracker}/status", b'{"tamper": true}', qos=1).wait_for_publish(5)
            return count(engine, select(func.count()).select_from(Alert).where(Alert.kind == "tamper")) == 1

        try:
            await wait_for(tampered, 90, "the tamper alert stored", interval=1.0)
        finally:
            pub.loop_stop()
            pub.disconnect()
        await wait_for(lambda: count(engine, select(func.count()).select_from(OutboxDelivery).where(OutboxDelivery.attempts >= 1)) == 1, 60,
                       "the delivery attempted (the receiver is down)")
        dead, survivor = (nodes["a"], nodes["b"]) if sender == nodes["a"].name else (nodes["b"], nodes["a"])
        dead.kill()  # SIGKILL to the node's process group, as a power cut
        async with robots(sec, got, port=web_port):
            await wait_for(lambda: count(engine, select(func.count()).select_from(OutboxDelivery).where(OutboxDelivery.state == "sent")) == 1, 90,
                           "the delivery made by the survivor")
            assert owner_of(cluster(survivor, token(survivor)), "singleton:outbox-sender") == survivor.name
    finally:
        for n in nodes.values():
            n.stop()
        engine.dispose()
    assert got.rejected == [] and list(got.keys("webhook").values()) == [1]
    assert got.by_channel["webhook"][0]["body"]["kind"] == "tamper"
