"""The gateway's one MQTT connection (paho-mqtt), and the one adapter that
hands paho's messages to asyncio.

paho runs its network loop on its own thread. `on_message` only appends to a
deque and wakes one drain task on the event loop; the drain task hands each
subscription its messages in batches, in arrival order. With
`ack="after_handler"` (the default) a QoS 1 message is acknowledged to the
broker only after its handler has returned, so a message whose handler did
not finish (crash, shutdown) is redelivered from the persistent session.
Batches are handed over in order, but the next may start (up to `pipeline`
in flight) while the one before still awaits: a handler whose effects must
stay in order serialises its commit stage (the tracker driver does).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from config.schema import MqttSettings
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

# PUBACK (MQTT 3.1.1 and 5: a 5 reason code may be left out when it is success).
_PUBACK = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    received: float = field(default_factory=time.monotonic)


BatchHandler = Callable[[list[Message]], Awaitable[None]]


@dataclass
class _Subscription:
    filter: str
    handler: BatchHandler
    qos: int
    ack: Literal["after_handler", "immediate"]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_url(url: str) -> BrokerAddress:
    u = urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {u.scheme or 'nothing'}")
    tls = u.scheme in ("mqtts", "ssl")
    if not u.hostname:
        raise ValueError("MQTT URL has no host")
    return BrokerAddress(u.hostname, u.port or (8883 if tls else 1883), tls, unquote(u.username) if u.username else None, unquote(u.password) if u.password else None)


class MqttLink:
    """Connect, reconnect with backoff, publish, subscribe with batched hand-off."""

    def __init__(self, settings: MqttSettings, node_id: str, metrics: Metrics, batch_max: int = 500, pipeline: int = 2,
                 client_id: str | None = None, announce: bool = True) -> None:
        if not settings.url:
            raise ValueError("no MQTT URL configured")
        self.settings = settings
        self.address = parse_url(settings.url)
        self.node_id = node_id
        self.batch_max = batch_max
        self.pipeline = pipeline
        # announce: the node's retained online/offline state (and its will); a helper
        # connection of the same node (the tracker ingest worker) leaves that to the main one
        self.announce = announce
        self.client_id = client_id or settings.client_id or f"gateway-{node_id}"
        self._inflight: set[asyncio.Task[None]] = set()
        self.state_topic = f"gateway/nodes/{node_id}/state"
        self._subs: list[_Subscription] = []
        # topic -> indices of the subscriptions it matches: devices reuse their topics, and
        # matching every message against every filter is a cost per message (docs/trackers.md)
        self._matches: dict[str, tuple[int, ...]] = {}
        self._inbox: deque[Message] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._drainer: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # connected and subscribed
        self._subscribing: tuple[int, list[str]] | None = None  # the SUBSCRIBE sent on connect: mid, filters
        self._v5 = settings.protocol == "5"
        self._received = metrics.counter("gateway_mqtt_received_total", "MQTT messages received")
        self._published = metrics.counter("gateway_mqtt_published_total", "MQTT messages published")
        self._connects = metrics.counter("gateway_mqtt_connects_total", "MQTT (re)connections")
        self._up = metrics.gauge("gateway_mqtt_connected", "1 while connected to the broker")
        self._handler_errors = metrics.counter("gateway_mqtt_handler_errors_total", "Exceptions in MQTT batch handlers", ("filter",))
        self.client = self._make_client()
        self._queue_packet: Callable[..., object] | None = getattr(self.client, "_packet_queue", None)

    def _make_client(self) -> paho.Client:
        s = self.settings
        client_id = self.client_id
        if self._v5:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, manual_ack=True)
        else:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=paho.MQTTv311, manual_ack=True)
        user = s.username or self.address.username
        password = s.password.get_secret_value() if s.password else self.address.password
        if user:
            c.username_pw_set(user, password)
        if self.address.tls:
            ctx = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
            c.tls_set_context(ctx)
        if self.announce:
            c.will_set(self.state_topic, "offline", qos=1, retain=True)
        c.reconnect_delay_set(min_delay=max(1, int(s.reconnect_min_s)), max_delay=max(1, int(s.reconnect_max_s)))
        c.max_queued_messages_set(100_000)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        return c

    # --- lifecycle -------------------------------------------------------

    async def start(self, wait_s: float = 5.0) -> None:
        """Start connecting; returns once connected or after wait_s (paho keeps retrying)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._drainer = self._loop.create_task(self._drain(), name="mqtt-drain")
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 7 * 24 * 3600
            # QoS 1 messages the broker may send before we acknowledge: we acknowledge only
            # after the handlers commit, so the broker's own default (Mosquitto: 20) would
            # hold the next messages back for a whole commit. MQTT 3.1.1 has no such field:
            # there it is the broker's max_inflight_messages (see docs/trackers.md).
            props.ReceiveMaximum = min(65535, self.batch_max * self.pipeline)
        if self._v5:
            self.client.connect_async(self.address.host, self.address.port, keepalive=self.settings.keepalive_s, clean_start=False, properties=props)
        else:
            self.client.connect_async(self.address.host, self.address.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()
        try:
            await asyncio.wait_for(self.connected.wait(), wait_s)
        except TimeoutError:
            log.warning("MQTT broker %s:%s not reachable yet; retrying in the background", self.address.host, self.address.port)

    async def stop(self) -> None:
        if self.client.is_connected() and self.announce:
            info = self.client.publish(self.state_topic, "offline", qos=1, retain=True)
            await asyncio.to_thread(info.wait_for_publish, 2.0)
        if self._drainer:
            # Let messages already handed over finish (they get acked), then stop.
            await self._flush(timeout=2.0)
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=5.0)
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        self._up.set(0)

    # --- publish / subscribe --------------------------------------------

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> paho.MQTTMessageInfo:
        """Thread-safe; queued by paho while disconnected (up to its queue limit)."""
        self._published.inc()
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(self, topic_filter: str, handler: BatchHandler, qos: int = 1, ack: Literal["after_handler", "immediate"] = "after_handler") -> None:
        """Register before or after start; re-subscribed on every reconnect."""
        sub = _Subscription(topic_filter, handler, qos, ack)
        self._subs.append(sub)
        self._matches.clear()
        if self.client.is_connected():
            self.client.subscribe(sub.filter, qos=qos)

    # --- paho thread -----------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.error("MQTT connection refused: %s", reason_code)
            return
        self._connects.inc()
        self._up.set(1)
        log.info("MQTT connected to %s:%s (session present: %s)", self.address.host, self.address.port, getattr(flags, "session_present", None))
        if self.announce:
            client.publish(self.state_topic, "online", qos=1, retain=True)
        # `connected` means subscribed too: set on the SUBACK. Set at CONNACK, a message
        # published right after could reach the broker before our SUBSCRIBE and find no
        # subscriber (a session saved before its subscriptions were has none to restore).
        subs = [(sub.filter, sub.qos) for sub in self._subs]
        result, mid = client.subscribe(subs) if subs else (paho.MQTT_ERR_SUCCESS, None)
        if mid is None or result != paho.MQTT_ERR_SUCCESS:
            self._set_connected()
        else:
            self._subscribing = (mid, [f for f, _ in subs])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # type: ignore[no-untyped-def]
        if self._subscribing is None or mid != self._subscribing[0]:
            return  # a subscription added after start
        filters, self._subscribing = self._subscribing[1], None
        refused = [f"{f}: {rc}" for f, rc in zip(filters, reason_codes, strict=False) if rc.is_failure]
        if refused:
            log.error("MQTT broker refused subscriptions: %s", "; ".join(refused))
        self._set_connected()

    def _set_connected(self) -> None:
        if self._loop:
            self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self._up.set(0)
        if self._loop:
            self._loop.call_soon_threadsafe(self.connected.clear)
        log.warning("MQTT disconnected: %s", reason_code)

    def _on_message(self, client, userdata, msg: paho.MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        # Counted per batch on the event loop: a Counter.inc here takes a lock per message
        # on the thread that competes with the loop for the GIL.
        self._inbox.append(Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid))
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and len(self._inbox) == 1:
            loop.call_soon_threadsafe(wake.set)

    # --- event loop ------------------------------------------------------

    async def _drain(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                batch: list[Message] = []
                while self._inbox and len(batch) < self.batch_max:
                    batch.append(self._inbox.popleft())
                self._received.inc(len(batch))
                # Up to `pipeline` batches in flight: the next one is decoded while the one
                # before waits for its database commit. Each is acked when its own handlers
                # return; handlers that need order keep their commits in order themselves.
                while len(self._inflight) >= self.pipeline:
                    await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.create_task(self._dispatch(batch), name="mqtt-dispatch")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _dispatch(self, batch: list[Message]) -> None:
        acked: set[int] = set()
        per_sub: list[list[Message]] = [[] for _ in self._subs]
        for m in batch:
            for i in self._subs_for(m.topic):
                per_sub[i].append(m)
        for sub, mine in zip(self._subs, per_sub, strict=True):
            if not mine:
                continue
            if sub.ack == "immediate":
                self._ack([m for m in mine if id(m) not in acked])
                acked.update(id(m) for m in mine)
            try:
                await sub.handler(mine)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._handler_errors.labels(sub.filter).inc()
                log.exception("MQTT handler for %s failed on a batch of %d", sub.filter, len(mine))
        # Acked only now, after every handler returned, and even after a handler
        # error: the handler counted and logged what it rejected, and
        # redelivering a poison message forever would block the session. A crash
        # before this line means no ack, so the broker redelivers. Messages no
        # subscription wants (stale persistent subscriptions) are acked too.
        self._ack([m for m in batch if id(m) not in acked])

    def _subs_for(self, topic: str) -> tuple[int, ...]:
        hit = self._matches.get(topic)
        if hit is None:
            if len(self._matches) > 100_000:
                self._matches.clear()  # a flood of one-off topics must not grow memory
            hit = self._matches[topic] = tuple(i for i, sub in enumerate(self._subs) if paho.topic_matches_sub(sub.filter, topic))
        return hit

    def _ack(self, msgs: list[Message]) -> None:
        mids = [m.mid for m in msgs if m.qos == 1]
        if mids and not self._puback_all(mids):
            for mid in mids:
                self.client.ack(mid, 1)
        for m in msgs:
            if m.qos == 2:
                self.client.ack(m.mid, 2)

    def _puback_all(self, mids: list[int]) -> bool:
        """The batch's PUBACKs as one queued buffer: `client.ack` per message costs
        a wake-up write to paho's socketpair and then a socket send, each a syscall.

        Uses paho's private `_packet_queue` (as its `ack` does; pinned to paho 2
        in pyproject); if that is gone or changed, returns False and the caller
        acks one by one.
        """
        if self._queue_packet is None:
            return False
        try:
            self._queue_packet(paho.PUBACK, b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids]), 0, 1)
        except TypeError:
            log.warning("paho's _packet_queue changed: acknowledging MQTT messages one by one")
            self._queue_packet = None
            return False
        return True

    async def _flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._inbox and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
