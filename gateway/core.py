"""The core services of one gateway process: storage, audit, alerts, the event bus,
push, MQTT, auth. They know nothing of the device areas: `gateway/assembly.py` builds
the core, then each area with the few collaborators it uses, then the app.

Nothing here runs at import time; `Core.create` builds, `start` starts, `stop` stops
in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import select

from config.schema import GatewayConfig
from gateway.alerts.delivery import MqttAlertPublisher
from gateway.alerts.service import AlertService
from gateway.audit import Audit
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.tokens import TokenSigner
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.cluster.membership import Cluster, Singletons
from gateway.cluster.relay import EventRelay
from gateway.db.engine import Database
from gateway.db.models import Device
from gateway.disk import DiskMonitor
from gateway.events import (
    AlertChanged,
    DeviceChanged,
    DeviceState,
    Event,
    PersonChanged,
    UnitChanged,
    UserChanged,
)
from gateway.metrics import Metrics
from gateway.mqtt import MqttLink
from gateway.nodes import answer_pings, probe_node_id
from gateway.outbox.channels import Webhook, build_senders
from gateway.outbox.router import Router, webhook_name
from gateway.outbox.sender import OutboxSender
from gateway.outbox.store import OutboxStore
from gateway.push import PUSHED_TOPICS, PushHub
from gateway.unit_index import UnitIndex

log = logging.getLogger(__name__)


class Component(Protocol):
    """What an area contributes: something to start and stop with the gateway (after the
    core, before the HTTP server; stopped in reverse order, before the core)."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Core:
    config: GatewayConfig
    clock: Clock
    metrics: Metrics
    bus: EventBus
    db: Database
    audit: Audit
    alerts: AlertService
    push: PushHub
    signer: TokenSigner
    login_limiter: RateLimiter
    disk: DiskMonitor
    cluster: Cluster
    singletons: Singletons
    outbox: OutboxSender
    mqtt: MqttLink | None = None
    relay: EventRelay | None = None
    http: httpx.AsyncClient | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def create(cls, config: GatewayConfig, clock: Clock | None = None) -> "Core":
        clock = clock or Clock()
        metrics = Metrics()
        bus = EventBus(metrics)
        db = Database(config.database_url, echo=config.storage.echo_sql)
        audit = Audit(db, clock)
        # every alert change is staged in its own transaction, delivered by the outbox sender
        alerts = AlertService(config.alerts, audit, bus, clock, metrics, outbox=OutboxStore())
        http = httpx.AsyncClient()
        senders = build_senders(config.delivery.channels, http)
        for i, hook in enumerate(config.alerts.webhooks):  # the generic webhooks of alerts.webhooks
            senders[webhook_name(i)] = Webhook(webhook_name(i), hook.url, hook.secret.get_secret_value() if hook.secret else None, http, hook.timeout_s)
        outbox = OutboxSender(db, Router(config.delivery, config.alerts.webhooks), senders, config.delivery, clock, metrics,
                              tz=config.gateway.timezone, public_url=config.gateway.public_url)
        secret = load_secret_key(config)
        st = config.storage
        watched = {"data_dir": config.gateway.data_dir, "media_dir": config.media_dir}
        if db.sqlite_path is not None:
            watched["database"] = Path(db.sqlite_path).parent
        svc = cls(
            config=config, clock=clock, metrics=metrics, bus=bus, db=db, audit=audit, alerts=alerts,
            push=PushHub(metrics, units=UnitIndex(db)), signer=TokenSigner(secret, config.auth.token_ttl_s),
            login_limiter=RateLimiter(config.auth.login_attempts_per_minute, clock),
            disk=DiskMonitor(watched, alerts, clock, metrics, full_below_bytes=st.disk_full_below_bytes, check_s=st.disk_check_s,
                             clear_after_s=st.disk_clear_after_s),
            cluster=Cluster(config.cluster, config.gateway.node_id, db, metrics, advertise_url(config)),
            singletons=Singletons(), outbox=outbox, http=http,
        )
        svc.cluster.add(svc.singletons)
        svc.singletons.add("alert-escalation", alerts.run_escalation)
        svc.singletons.add("outbox-sender", outbox.run)
        if config.mqtt.url:
            svc.mqtt = MqttLink(config.mqtt, config.gateway.node_id, metrics)
            answer_pings(svc.mqtt)
            svc.relay = EventRelay(node_id=config.gateway.node_id, bus=bus, mqtt=svc.mqtt, metrics=metrics)
        return svc

    @property
    def media_dir(self) -> Path:
        return self.config.media_dir

    async def start(self) -> None:
        await self.db.upgrade()
        await self.cluster.register()
        self.media_dir.mkdir(parents=True, exist_ok=True)
        assert self.push.units is not None
        await self.push.units.load()
        self.bus.subscribe("unit-index", self.push.units.changed, topics=(DeviceChanged.topic, PersonChanged.topic, UnitChanged.topic),
                           maxsize=10_000, overflow="block", remote=True)
        # remote: a console on any node is pushed what happened on every node
        self.bus.subscribe("push", self.push, topics=PUSHED_TOPICS, maxsize=5000, remote=True)
        self.bus.subscribe("push-sessions", self._user_changed, topics=(UserChanged.topic,), inline=True, remote=True)
        self.bus.subscribe("alerts-elsewhere", self._alert_elsewhere, topics=(AlertChanged.topic,), maxsize=1000, remote=True)
        if self.relay is not None:
            self.relay.install()
        self.bus.subscribe("device-state", self._device_states_changed, topics=("device.state",), maxsize=5000, overflow="block", batch=True)
        if self.mqtt is not None:
            self.bus.subscribe("mqtt-alerts", MqttAlertPublisher(self.mqtt, self.config.alerts.mqtt_topic_prefix, self.config.gateway.public_url,
                                                                 units=self.push.units, unit_prefix=self.config.alerts.mqtt_unit_topic_prefix),
                               topics=("alert",), maxsize=10_000)
        await self.bus.start()
        if self.mqtt is not None:
            await probe_node_id(self.mqtt.settings, self.mqtt.node_id)
            await self.mqtt.start()
        await self.disk.start()

    async def stop(self) -> None:
        await self.singletons.stop()
        await self.cluster.stop()
        await self.disk.stop()
        await self.bus.stop()  # what the areas published reaches its subscribers
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.http is not None:
            await self.http.aclose()
        await self.db.close()

    async def _alert_elsewhere(self, event: Event) -> None:
        """An alert opened or was handled (here or on another node): the escalation check
        and the outbox sender, wherever they run, look at the database again."""
        self.alerts.changed_elsewhere()
        self.outbox.poke()

    async def _user_changed(self, event: Event) -> None:
        if isinstance(event, UserChanged):
            self.push.user_changed(event.user_id)

    async def _device_states_changed(self, events: list[Event]) -> None:
        """Keep devices.state current and publish gateway/devices/{id}/state (retained).

        A burst (every tracker coming online after a restart) is one transaction, not one
        per event (docs/trackers.md has what that cost).
        """
        states = [e for e in events if isinstance(e, DeviceState)]
        async with self.db.session() as s:
            ids = {e.device_id for e in states}
            rows = {r.id: r for r in (await s.scalars(select(Device).where(Device.id.in_(ids)))).all()}
            for e in states:  # in order: the last event of a device wins, as one by one
                row = rows.get(e.device_id)
                if row is not None:
                    row.state, row.state_reason = e.state, e.reason
                    if e.state == "online":
                        row.last_seen_at = e.at
            await s.commit()
        if self.mqtt is not None:
            for e in states:
                self.mqtt.publish(f"gateway/devices/{e.device_id}/state", e.state, qos=1, retain=True)


def advertise_url(config: GatewayConfig) -> str:
    """How the other nodes reach this one's HTTP server."""
    g = config.gateway
    return config.cluster.advertise_url or f"http://{g.host}:{g.port}"


def load_secret_key(config: GatewayConfig) -> str:
    """From config/environment, else a file in data_dir created once (0600)."""
    if config.gateway.secret_key is not None:
        value = config.gateway.secret_key.get_secret_value()
        if len(value) < 32:
            raise ValueError("gateway.secret_key must be at least 32 characters")
        return value
    path = config.gateway.data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value
