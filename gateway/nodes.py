"""One live gateway per node id on a broker.

Two gateways started with the same `gateway.node_id` share an MQTT client id: the broker
takes the session from one to give it to the other, each reconnects, and they go on
disconnecting each other every second, for good. So before it connects under its own
client id, a gateway asks the broker whether that node id is alive:

- a probe connection (its own random client id, clean session) reads the node's retained
  state `gateway/nodes/{node}/state`;
- if it says `online`, the probe publishes a ping on `gateway/nodes/{node}/ping` and
  waits a few seconds for the answer on `gateway/nodes/{node}/pong/{nonce}`: every live
  gateway answers its own node's pings (`answer_pings`);
- an answer means the node id is taken: `NodeIdInUse`, and the gateway refuses to start
  with a message naming the other process. No answer means the retained `online` is
  stale (the node died without its last will being sent yet) and the start goes on.

A broker that cannot be reached is not a reason to refuse: the probe is skipped (said in
the log) and the link keeps retrying as it always does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from config.schema import MqttSettings
from gateway.mqtt import Message, MqttLink, parse_url

log = logging.getLogger(__name__)

STARTED = time.time()


class NodeIdInUse(RuntimeError):
    pass


def identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": STARTED}


def answer_pings(link: MqttLink) -> None:
    """Answer the pings of a gateway starting with our node id (see `probe_node_id`)."""

    async def pong(batch: list[Message]) -> None:
        for m in batch:
            nonce = m.payload.decode("ascii", "replace")[:64]
            if nonce.isalnum():
                link.publish(f"gateway/nodes/{link.node_id}/pong/{nonce}", json.dumps(identity()), qos=0)

    link.subscribe(f"gateway/nodes/{link.node_id}/ping", pong, qos=0, ack="immediate")


async def probe_node_id(settings: MqttSettings, node_id: str, answer_s: float = 5.0, connect_s: float = 5.0) -> None:
    """Raise NodeIdInUse when a live gateway answers for `node_id`."""
    assert settings.url
    addr = parse_url(settings.url)
    loop = asyncio.get_running_loop()
    state: asyncio.Future[bytes | None] = loop.create_future()
    answer: asyncio.Future[bytes] = loop.create_future()
    subscribed = asyncio.Event()
    nonce = secrets.token_hex(8)
    base = f"gateway/nodes/{node_id}"

    def settle(fut: asyncio.Future[Any], value: Any) -> None:
        if not fut.done():
            fut.set_result(value)

    def on_connect(c: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            c.subscribe([(f"{base}/state", 1), (f"{base}/pong/{nonce}", 0)])

    def on_subscribe(c: paho.Client, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        loop.call_soon_threadsafe(subscribed.set)

    def on_message(c: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == f"{base}/state":
            loop.call_soon_threadsafe(settle, state, bytes(msg.payload))
        else:
            loop.call_soon_threadsafe(settle, answer, bytes(msg.payload))

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"gateway-{node_id}-probe-{nonce}", clean_session=True)
    user = settings.username or addr.username
    if user:
        c.username_pw_set(user, settings.password.get_secret_value() if settings.password else addr.password)
    if addr.tls:
        import ssl

        c.tls_set_context(ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None))
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    try:
        c.connect_async(addr.host, addr.port, keepalive=30)
        c.loop_start()
        try:
            await asyncio.wait_for(subscribed.wait(), connect_s)
        except TimeoutError:
            log.warning("MQTT broker %s:%s not reachable: node id %s not checked for a second gateway", addr.host, addr.port, node_id)
            return
        # The broker handles a connection's packets in order: a retained state comes right
        # after our SUBSCRIBE, so before the PUBACK of a publish sent after it. (Waited for
        # in a thread: the loop must stay free to run the callbacks paho queues for it,
        # which it then does in the order they came.)
        await asyncio.to_thread(c.publish(f"{base}/probe", b"", qos=1).wait_for_publish, connect_s)
        await asyncio.sleep(0)
        settle(state, None)  # nothing retained
        if await state != b"online":
            return
        c.publish(f"{base}/ping", nonce.encode(), qos=1)
        try:
            raw = await asyncio.wait_for(answer, answer_s)
        except TimeoutError:
            log.info("node %s: retained state says online but nobody answers: a node that died; starting", node_id)
            return
        try:
            other = json.loads(raw)
            who = f"host {other.get('host')}, pid {other.get('pid')}, up since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(other.get('started', 0)))}"
        except (ValueError, TypeError, AttributeError):
            who = "another process"
        raise NodeIdInUse(f"gateway.node_id {node_id!r} is already in use by a running gateway ({who}) on this MQTT broker; "
                          f"give each gateway its own node_id (GATEWAY_GATEWAY__NODE_ID)")
    finally:
        c.disconnect()
        await asyncio.to_thread(c.loop_stop)
