"""Events between the nodes of a cluster, over the MQTT broker they share.

Each node publishes what happened on it (change events: a device, zone, person or user
changed through its API; and what consoles are pushed: alerts, positions, device states,
camera health...) on `gateway/cluster/events/{node_id}`, QoS 1, in batches; every node
subscribes to `gateway/cluster/events/+` through its persistent session and hands the
others' events to its own bus as remote events (`EventBus.publish_remote`: only the
subscribers that asked for them, so a webhook fires on one node, not on each).

MQTT rather than PostgreSQL's LISTEN/NOTIFY: the positions pushed to consoles come by the
thousand per second (NOTIFY's 8 kB payloads and its single queue would be the limit),
the broker is already every node's transport, and a node's persistent session keeps what
it missed while disconnected (docs/cluster.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from datetime import datetime

from gateway import events as ev
from gateway.bus import EventBus
from gateway.events import CHANGE_TOPICS, Event
from gateway.logs import Throttled
from gateway.metrics import Metrics
from gateway.mqtt import Message, MqttLink
from gateway.push import PUSHED_TOPICS

log = logging.getLogger(__name__)

RELAYED_TOPICS = tuple(dict.fromkeys((*CHANGE_TOPICS, *PUSHED_TOPICS)))
PREFIX = "gateway/cluster/events"
CHUNK = 500  # events per MQTT message


def _event_classes() -> dict[str, type[Event]]:
    out: dict[str, type[Event]] = {}
    for obj in vars(ev).values():
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event:
            out[obj.topic] = obj
    return out


def _time_fields(cls: type[Event]) -> frozenset[str]:
    hints = typing.get_type_hints(cls)
    return frozenset(f.name for f in dataclasses.fields(cls) if datetime in (hints[f.name], *typing.get_args(hints[f.name])))


class EventCodec:
    """Events as JSON and back: the dataclass fields, times as ISO 8601."""

    def __init__(self) -> None:
        self.classes = _event_classes()
        self.times = {topic: _time_fields(cls) for topic, cls in self.classes.items()}

    def encode(self, events: list[Event]) -> bytes:
        return json.dumps([e.to_dict() for e in events], ensure_ascii=False, default=str).encode()

    def decode(self, raw: bytes) -> list[Event]:
        out = []
        for d in json.loads(raw):
            topic = d.pop("type", None)
            cls = self.classes.get(topic) if isinstance(topic, str) else None
            if cls is None:
                raise ValueError(f"unknown event type {topic!r}")
            for name in self.times[topic]:
                if isinstance(d.get(name), str):
                    d[name] = datetime.fromisoformat(d[name])
            out.append(cls(**d))
        return out


class EventRelay:
    name = "cluster-relay"

    def __init__(self, *, node_id: str, bus: EventBus, mqtt: MqttLink, metrics: Metrics) -> None:
        self.node_id = node_id
        self.bus = bus
        self.mqtt = mqtt
        self.codec = EventCodec()
        self.bad = Throttled(log)
        self._sent = metrics.counter("gateway_cluster_events_sent_total", "Events sent to the other nodes")
        self._received = metrics.counter("gateway_cluster_events_received_total", "Events received from the other nodes")
        self._rejected = metrics.counter("gateway_cluster_events_rejected_total", "Relayed event messages that could not be read")

    def install(self) -> None:
        """Before the bus and the MQTT link start."""
        self.bus.subscribe("cluster-relay", self._send, topics=RELAYED_TOPICS, maxsize=50_000, overflow="block", batch=True)
        self.mqtt.subscribe(f"{PREFIX}/+", self._receive, qos=1)

    async def _send(self, events: list[Event]) -> None:
        for i in range(0, len(events), CHUNK):
            chunk = events[i:i + CHUNK]
            self.mqtt.publish(f"{PREFIX}/{self.node_id}", self.codec.encode(chunk), qos=1)
            self._sent.inc(len(chunk))

    async def _receive(self, batch: list[Message]) -> None:
        for m in batch:
            sender = m.topic.rsplit("/", 1)[-1]
            if sender == self.node_id:
                continue
            try:
                events = self.codec.decode(m.payload)
            except (ValueError, TypeError, KeyError) as e:
                self._rejected.inc()
                self.bad.log(logging.WARNING, sender, "cluster: events from node %s not readable: %s", sender, e)
                continue
            self._received.inc(len(events))
            await self.bus.publish_remote(events)
