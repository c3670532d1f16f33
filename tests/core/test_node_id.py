"""Two gateways with the same node id on one broker: the second refuses to start, with a
message naming the node id and the running process (before, they took the MQTT session
from each other every second, for good). A node that died leaving a retained `online`
does not block its own restart. The real Mosquitto."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.assembly import build_gateway
from gateway.nodes import NodeIdInUse
from tests.conftest import ROOT, running
from tests.gps.helpers import forget_session, uid


def _retain(topic: str, payload: bytes) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"retain-{uid()}", clean_session=True)
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


async def test_a_second_gateway_with_the_same_node_id_refuses_to_start(make_config: Any, mqtt_url: str, tmp_path: Path) -> None:
    node = f"n-{uid()}"
    first = make_config(gateway={"node_id": node}, mqtt={"url": mqtt_url}, thresholds={"gps": {"ingest_worker": False}})
    try:
        async with running(first):
            second = build_gateway(make_config(gateway={"node_id": node, "data_dir": str(tmp_path / "second")}, mqtt={"url": mqtt_url}))
            with pytest.raises(NodeIdInUse, match=node) as err:
                await second.start()
            assert "pid" in str(err.value)
            await second.stop()

            # `gateway run` says so and exits 2, before it takes anything from the first
            cfg = tmp_path / "site.yaml"
            cfg.write_text(yaml.safe_dump({"gateway": {"node_id": node, "data_dir": str(tmp_path / "third")}, "mqtt": {"url": mqtt_url}}))
            # (as a child process of this loop's, which must stay free: the first gateway answers the ping on it)
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "run", "-c", str(cfg), cwd=ROOT,
                                                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                _, stderr = await asyncio.wait_for(proc.communicate(), 120)
            finally:
                if proc.returncode is None:
                    proc.kill()
            assert proc.returncode == 2, stderr.decode()[-2000:]
            assert f"gateway.node_id '{node}' is already in use" in stderr.decode()
    finally:
        forget_session("127.0.0.1", 1883, f"gateway-{node}")


async def test_a_stale_online_state_does_not_block_a_restart(make_config: Any, mqtt_url: str) -> None:
    node = f"n-{uid()}"
    _retain(f"gateway/nodes/{node}/state", b"online")  # a node that died before its last will was sent
    try:
        async with running(make_config(gateway={"node_id": node}, mqtt={"url": mqtt_url}, thresholds={"gps": {"ingest_worker": False}})) as r:
            assert r.services.mqtt.connected.is_set()
    finally:
        _retain(f"gateway/nodes/{node}/state", b"")
        forget_session("127.0.0.1", 1883, f"gateway-{node}")
