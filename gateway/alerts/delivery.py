"""Alert delivery beyond the console: MQTT topics and webhooks.

Each webhook has its own bounded queue and worker, so a slow or dead
receiver delays only itself; failed posts are retried with exponential
backoff and jitter up to max_attempts, then counted as given up.

The queues live in memory: a clean stop gives what is queued `drain_s` to be
delivered (and logs what is left); a crash loses what was queued. A durable
outbox comes with the jurisdictions work (issue 18).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from typing import Any
from urllib.parse import urlsplit

import httpx

from config.schema import Webhook
from gateway.events import AlertChanged, Event
from gateway.metrics import Metrics
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


class WebhookSender:
    def __init__(self, hook: Webhook, metrics: Metrics, client: httpx.AsyncClient, base_delay_s: float = 1.0, max_delay_s: float = 300.0,
                 public_url: str | None = None, index: int = 0) -> None:
        self.hook = hook
        # How logs and metrics name the hook: its place in the configuration and its host.
        # Never the URL: robot channels carry their secret in it (WeCom ?key=, DingTalk
        # ?access_token=, Feishu /hook/<token>), and /metrics is readable by every user.
        self.name = f"{index}:{urlsplit(hook.url).hostname or '?'}"
        self.client = client
        self.public_url = public_url
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self._busy = False  # a message is being delivered (taken off the queue)
        self._sent = metrics.counter("gateway_webhook_sent_total", "Webhook deliveries", ("webhook",))
        self._failed = metrics.counter("gateway_webhook_failed_total", "Webhook attempts that failed", ("webhook",))
        self._gave_up = metrics.counter("gateway_webhook_gave_up_total", "Webhook messages dropped after max_attempts", ("webhook",))
        self._dropped = metrics.counter("gateway_webhook_queue_full_total", "Webhook messages dropped because the queue was full", ("webhook",))

    def wants(self, alert: dict[str, Any]) -> bool:
        return alert["level"] in self.hook.levels and (self.hook.kinds is None or alert["kind"] in self.hook.kinds)

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, AlertChanged)
        if not self.wants(event.alert):
            return
        try:
            self.queue.put_nowait(alert_message(event, self.public_url))
        except asyncio.QueueFull:
            self._dropped.labels(self.name).inc()

    async def run(self) -> None:
        while True:
            body = await self.queue.get()
            self._busy = True
            try:
                await self._deliver(body)
            finally:
                self._busy = False
                self.queue.task_done()

    async def drain(self) -> int:
        """On a clean stop: wait up to the hook's `drain_s` for the queue to be delivered;
        the number of messages left undelivered."""
        try:
            await asyncio.wait_for(self.queue.join(), self.hook.drain_s)
        except TimeoutError:
            pass
        left = self.queue.qsize() + self._busy
        if left:
            log.error("webhook %s: stopping with %d alert message(s) undelivered", self.name, left)
        return left

    async def _deliver(self, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "supervision-gateway"}
        if self.hook.secret:
            sig = hmac.new(self.hook.secret.get_secret_value().encode(), data, hashlib.sha256).hexdigest()
            headers["X-Gateway-Signature"] = f"sha256={sig}"
        for attempt in range(1, self.hook.max_attempts + 1):
            try:
                r = await self.client.post(self.hook.url, content=data, headers=headers, timeout=self.hook.timeout_s)
                if r.status_code < 300:
                    self._sent.labels(self.name).inc()
                    return
                # 4xx other than 408/429 will not get better by retrying.
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    log.warning("webhook %s refused alert %s: HTTP %s", self.name, body.get("id"), r.status_code)
                    self._gave_up.labels(self.name).inc()
                    return
                reason = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                reason = type(e).__name__
            self._failed.labels(self.name).inc()
            if attempt == self.hook.max_attempts:
                break
            delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.info("webhook %s attempt %d failed (%s); retrying in %.1f s", self.name, attempt, reason, delay)
            await asyncio.sleep(delay)
        log.error("webhook %s: gave up on alert %s after %d attempts", self.name, body.get("id"), self.hook.max_attempts)
        self._gave_up.labels(self.name).inc()
