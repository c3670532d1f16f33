"""Alert changes on MQTT topics, for systems that subscribe. Webhooks, group robots and
e-mail go through the durable outbox (gateway/outbox/)."""

from __future__ import annotations

import json
import logging
from typing import Any

from gateway.events import AlertChanged, Event
from gateway.mqtt import MqttLink

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


class MqttAlertPublisher:
    def __init__(self, mqtt: MqttLink, prefix: str, public_url: str | None = None) -> None:
        self.mqtt = mqtt
        self.prefix = prefix
        self.public_url = public_url

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, AlertChanged)
        self.mqtt.publish(alert_topic(self.prefix, event.alert), json.dumps(alert_message(event, self.public_url), ensure_ascii=False), qos=1)
