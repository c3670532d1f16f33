"""Alert changes on MQTT topics, for systems that subscribe. Webhooks, group robots and
e-mail go through the durable outbox (gateway/outbox/)."""

from __future__ import annotations

import json
import logging
from typing import Any

from gateway.events import AlertChanged, Event
from gateway.mqtt import MqttLink
from gateway.unit_index import UnitIndex

log = logging.getLogger(__name__)


def topic_level(value: object) -> str:
    """A value as exactly one MQTT topic level: `/`, the wildcards `+` and `#`, `%` itself
    and control characters percent-escaped (an id must not change the topic's shape, nor
    make a subscriber's filter match what it should not); empty is `-`."""
    return "".join(f"%{ord(c):02X}" if c in "/+#%" or ord(c) < 32 or ord(c) == 127 else c for c in str(value or "-"))


def alert_topic(prefix: str, alert: dict[str, Any]) -> str:
    return "/".join([prefix, topic_level(alert["level"]), topic_level(alert["kind"]), topic_level(alert.get("person_id"))])


def alert_message(ev: AlertChanged, public_url: str | None = None) -> dict[str, Any]:
    """What a channel carries: the change and the alert (the API's model), and, when the
    console's public URL is known, a link an officer can open from the message."""
    out = {"change": ev.change, **ev.alert}
    if public_url:
        out["url"] = f"{public_url.rstrip('/')}/console/alerts?id={ev.alert['id']}"
    return out


def unit_topics(prefix: str, paths: list[str], alert: dict[str, Any]) -> list[str]:
    """`<prefix>/<unit path>/alerts/<level>/<kind>/<person>` for each unit the alert belongs
    to (its own, the one it is assigned to): a broker ACL that lets an office's subscribers
    read `<prefix>/root/county/office/#` gives them their subtree and nothing else."""
    tail = "/".join([topic_level(alert["level"]), topic_level(alert["kind"]), topic_level(alert.get("person_id"))])
    return [f"{prefix}/{'/'.join(topic_level(p) for p in path.strip('/').split('/'))}/alerts/{tail}" for path in dict.fromkeys(paths)]


class MqttAlertPublisher:
    def __init__(self, mqtt: MqttLink, prefix: str, public_url: str | None = None, units: UnitIndex | None = None,
                 unit_prefix: str | None = None) -> None:
        self.mqtt = mqtt
        self.prefix = prefix
        self.public_url = public_url
        self.units = units
        self.unit_prefix = unit_prefix

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, AlertChanged)
        body = json.dumps(alert_message(event, self.public_url), ensure_ascii=False)
        self.mqtt.publish(alert_topic(self.prefix, event.alert), body, qos=1)
        if self.units is not None and self.unit_prefix:
            for topic in unit_topics(self.unit_prefix, self.units.paths_of({"alert": event.alert}), event.alert):
                self.mqtt.publish(topic, body, qos=1)
