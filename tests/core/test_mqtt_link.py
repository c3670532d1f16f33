"""The gateway's MQTT link against the real Mosquitto: batches in order, acks
after the handler (so an unfinished message is redelivered from the
persistent session), LWT and online state."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from config.schema import MqttSettings
from gateway.metrics import Metrics
from gateway.mqtt import Message, MqttLink, parse_url
from tests.waiting import wait_for


def publisher() -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    return c


def test_parse_url() -> None:
    a = parse_url("mqtts://gw%40site:p%3Ass@broker.example:8884")
    assert (a.host, a.port, a.tls, a.username, a.password) == ("broker.example", 8884, True, "gw@site", "p:ss")
    assert parse_url("mqtt://h").port == 1883 and parse_url("mqtts://h").port == 8883


async def test_batches_arrive_in_order(mqtt_url) -> None:
    tag = uuid.uuid4().hex[:8]
    link = MqttLink(MqttSettings(url=mqtt_url, client_id=f"gw-{tag}"), f"n{tag}", Metrics())
    got: list[Message] = []
    batches: list[int] = []
    done = asyncio.Event()

    async def handler(batch: list[Message]) -> None:
        batches.append(len(batch))
        got.extend(batch)
        if len(got) >= 500:
            done.set()

    link.subscribe(f"t-{tag}/+/nmea", handler)
    await link.start()
    assert link.connected.is_set()
    pub = publisher()
    try:
        for i in range(500):
            pub.publish(f"t-{tag}/dev{i % 3}/nmea", str(i), qos=1)
        await asyncio.wait_for(done.wait(), 20)
        per_device = {d: [int(m.payload) for m in got if m.topic == f"t-{tag}/dev{d}/nmea"] for d in range(3)}
        for d, values in per_device.items():
            assert values == sorted(values) and len(values) == len(range(d, 500, 3))
        assert max(batches) > 1  # handed over in batches, not one by one
    finally:
        pub.loop_stop()
        pub.disconnect()
        await link.stop()


async def test_unacked_message_is_redelivered_after_restart(mqtt_url) -> None:
    """A handler that never finishes (gateway dies) leaves the message unacked;
    the persistent session redelivers it to the next connection."""
    tag = uuid.uuid4().hex[:8]
    settings = MqttSettings(url=mqtt_url, client_id=f"gw-{tag}")
    topic = f"t-{tag}/dev/nmea"
    stuck = asyncio.Event()

    async def hang(batch: list[Message]) -> None:
        stuck.set()
        await asyncio.Event().wait()

    first = MqttLink(settings, f"n{tag}", Metrics())
    first.subscribe(topic, hang)
    await first.start()
    pub = publisher()
    pub.publish(topic, "precious", qos=1).wait_for_publish(5)
    await asyncio.wait_for(stuck.wait(), 10)
    # Simulate a crash: drop the connection without acking or a clean disconnect.
    first._drainer.cancel()  # type: ignore[union-attr]
    first.client.loop_stop()
    first.client.socket().close()  # type: ignore[union-attr]

    got: list[bytes] = []
    received = asyncio.Event()

    async def keep(batch: list[Message]) -> None:
        got.extend(m.payload for m in batch)
        received.set()

    second = MqttLink(settings, f"n{tag}", Metrics())
    second.subscribe(topic, keep)
    await second.start()
    try:
        await asyncio.wait_for(received.wait(), 20)
        assert got == [b"precious"]
    finally:
        pub.loop_stop()
        pub.disconnect()
        await second.stop()


@pytest.mark.parametrize("batched", [True, False])
async def test_a_batch_is_acked_together_and_only_after_its_handler(mqtt_url, batched: bool) -> None:
    """Batched PUBACKs (one buffer per batch) or, when paho's private API does
    not fit, one ack per message: what was handled is not redelivered, a
    message whose handler did not finish is."""
    tag = uuid.uuid4().hex[:8]
    settings = MqttSettings(url=mqtt_url, client_id=f"gw-{tag}")
    topic = f"t-{tag}/dev/nmea"
    handled: list[bytes] = []
    sizes: list[int] = []
    stuck = asyncio.Event()

    async def handle(batch: list[Message]) -> None:
        sizes.append(len(batch))
        if any(m.payload == b"last" for m in batch):
            stuck.set()
            await asyncio.Event().wait()
        handled.extend(m.payload for m in batch)

    first = MqttLink(settings, f"n{tag}", Metrics())
    if not batched:
        def changed(*args: object) -> None:
            raise TypeError("paho's private signature changed")

        first._queue_packet = changed
    first.subscribe(topic, handle)
    await first.start()
    pub = publisher()
    try:
        infos = [pub.publish(topic, f"m{i}", qos=1) for i in range(300)]
        for info in infos:
            info.wait_for_publish(5)
        await wait_for(lambda: len(handled) == 300, what="300 messages handled")
        assert len(handled) == 300 and max(sizes) > 1
        assert (first._queue_packet is not None) is batched
        # Each batch's acks were queued to paho as its handler returned. A QoS 1 publish queued
        # after them is answered by the broker only once it has read them (one connection, in
        # order): after that answer, none of the 300 can be redelivered.
        barrier = first.publish(f"t-{tag}/barrier", b"", qos=1)
        await wait_for(barrier.is_published, what="the broker's PUBACK of a publish sent after the acks")
        pub.publish(topic, "last", qos=1).wait_for_publish(5)
        await asyncio.wait_for(stuck.wait(), 10)
        first._drainer.cancel()  # type: ignore[union-attr]
        first.client.loop_stop()
        first.client.socket().close()  # type: ignore[union-attr]

        again: list[bytes] = []

        async def keep(batch: list[Message]) -> None:
            again.extend(m.payload for m in batch)

        second = MqttLink(settings, f"n{tag}", Metrics())
        second.subscribe(topic, keep)
        await second.start()
        try:
            await wait_for(lambda: again, what="the unacknowledged message redelivered")
            # What the session redelivers comes first; a message published now comes after all of it.
            pub.publish(topic, "end", qos=1).wait_for_publish(10)
            await wait_for(lambda: b"end" in again, what="a message published after the reconnection")
            assert again == [b"last", b"end"]
        finally:
            await second.stop()
    finally:
        pub.loop_stop()
        pub.disconnect()


async def test_state_topic_online_and_last_will(mqtt_url) -> None:
    tag = uuid.uuid4().hex[:8]
    states: asyncio.Queue[bytes] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    watcher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"w-{tag}")
    watcher.on_message = lambda c, u, m: loop.call_soon_threadsafe(states.put_nowait, m.payload)
    watcher.connect("127.0.0.1", 1883)
    watcher.subscribe(f"gateway/nodes/n{tag}/state", qos=1)
    watcher.loop_start()
    link = MqttLink(MqttSettings(url=mqtt_url, client_id=f"gw-{tag}", keepalive_s=5), f"n{tag}", Metrics())
    try:
        await link.start()
        assert await asyncio.wait_for(states.get(), 10) == b"online"
        # Vanish without DISCONNECT: the broker publishes the will.
        link.client.loop_stop()
        link.client.socket().close()  # type: ignore[union-attr]
        assert await asyncio.wait_for(states.get(), 20) == b"offline"
    finally:
        watcher.loop_stop()
        watcher.disconnect()


async def test_embedded_broker_round_trip() -> None:
    """The demo's embedded broker (amqtt) carries the gateway's QoS 1 traffic."""
    from gateway.broker import EmbeddedBroker

    broker = EmbeddedBroker(1883)  # taken by Mosquitto here: falls back to a free port
    await broker.start()
    tag = uuid.uuid4().hex[:8]
    link = MqttLink(MqttSettings(url=broker.url, client_id=f"gw-{tag}"), f"n{tag}", Metrics())
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def handler(batch: list[Message]) -> None:
        got.extend(m.payload for m in batch)
        arrived.set()

    link.subscribe("trackers/+/nmea", handler)
    try:
        await link.start()
        assert link.connected.is_set()  # set on the SUBACK: the subscription is in place
        link.publish("trackers/t1/nmea", b"$GPRMC", qos=1)
        await asyncio.wait_for(arrived.wait(), 10)
        assert got == [b"$GPRMC"]
    finally:
        await link.stop()
        await broker.stop()


@pytest.mark.parametrize("persistence", [True, False])
async def test_reconnects_after_broker_restart(tmp_path, persistence: bool) -> None:
    """A private Mosquitto (the machine's shared one is never restarted) goes
    away and comes back; the link reconnects on its own and receives again. Without
    persistence the broker comes back knowing no subscription: a message published as
    soon as the link says it is connected arrives all the same (`connected` waits for
    the SUBACK)."""
    import shutil
    import subprocess

    from tests.conftest import free_port, port_open, require_peer

    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    require_peer(Path(exe).exists(), "mosquitto binary")
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence {str(persistence).lower()}\npersistence_location {tmp_path}/\n")

    async def start() -> subprocess.Popen:
        p = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_for(lambda: p.poll() is not None or port_open("127.0.0.1", port), what="the private mosquitto to listen")
        assert p.poll() is None, f"private mosquitto exited with {p.returncode}"
        return p

    broker = await start()
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", client_id="gw-reconnect", reconnect_min_s=1, reconnect_max_s=2)
    link = MqttLink(settings, "reconnect", Metrics())
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def handler(batch: list[Message]) -> None:
        got.extend(m.payload for m in batch)
        arrived.set()

    link.subscribe("trackers/+/nmea", handler)
    try:
        await link.start()
        broker.terminate()
        broker.wait(10)
        await wait_for(lambda: not link.connected.is_set(), what="the link to notice the broker is gone")
        broker = await start()
        await asyncio.wait_for(link.connected.wait(), 20)
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="pub-reconnect")
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        pub.publish("trackers/t1/nmea", b"after-restart", qos=1).wait_for_publish(5)
        await asyncio.wait_for(arrived.wait(), 10)
        assert got == [b"after-restart"]
        pub.loop_stop()
        pub.disconnect()
    finally:
        await link.stop()
        broker.terminate()
        broker.wait(10)


async def test_mqtt5_link_asks_for_as_many_unacknowledged_messages_as_it_pipelines(mqtt_url) -> None:
    """Messages are acknowledged only once committed; the broker's default window (20 on
    Mosquitto) would hold the next batches back for a whole commit. Over MQTT 5 the link
    sets Receive Maximum to what it holds in flight (batch size × pipeline depth)."""
    tag = uuid.uuid4().hex[:8]
    settings = MqttSettings(url=mqtt_url, client_id=f"gw5-{tag}", protocol="5")
    link = MqttLink(settings, f"n{tag}", Metrics(), batch_max=10, pipeline=4)
    handed: list[Message] = []
    release = asyncio.Event()

    async def handler(batch: list[Message]) -> None:
        handed.extend(batch)
        await release.wait()  # a slow commit: nothing is acknowledged meanwhile

    received = 0
    on_message = link.client.on_message

    def count(client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        nonlocal received
        received += 1
        on_message(client, userdata, msg)

    link.client.on_message = count
    link.subscribe(f"t5-{tag}/+/nmea", handler)
    await link.start()
    pub = publisher()
    try:
        infos = [pub.publish(f"t5-{tag}/dev/nmea", str(i), qos=1) for i in range(100)]
        await asyncio.to_thread(lambda: [info.wait_for_publish(30) for info in infos])  # all 100 at the broker
        await wait_for(lambda: received >= 40, what="40 messages at the link")
        # Once the broker has answered a later packet of the link's own, whatever it would send
        # the link before that answer has arrived: it holds the rest back for want of a PUBACK.
        barrier = link.publish(f"t5-{tag}/barrier", b"", qos=1)
        await wait_for(barrier.is_published, what="the broker's PUBACK of a publish of the link's own")
        assert received == 40  # sent by the broker without a single PUBACK (Mosquitto's own default: 20)
        release.set()
        await wait_for(lambda: len(handed) == 100, what="all 100 handled once acknowledged")
        assert [int(m.payload) for m in handed] == list(range(100))
    finally:
        pub.loop_stop()
        pub.disconnect()
        await link.stop()
        forget = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"gw5-{tag}", protocol=paho.MQTTv5)
        forget.connect("127.0.0.1", 1883, clean_start=True)
        forget.disconnect()
