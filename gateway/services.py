"""The services one gateway process runs, created from config and passed
explicitly to the app and to every area (drivers, streams, recognition).

Nothing here runs at import time; `Services.create` builds, `start` starts,
`stop` stops in reverse order.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import select

from config.schema import GatewayConfig
from gateway.alerts.delivery import MqttAlertPublisher, WebhookSender
from gateway.alerts.service import AlertService
from gateway.audit import Audit
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.tokens import TokenSigner
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.db.engine import Database
from gateway.db.models import Device, Person
from gateway.events import DeviceState, Event
from gateway.metrics import Metrics
from gateway.mqtt import MqttLink
from gateway.push import PUSHED_TOPICS, PushHub

log = logging.getLogger(__name__)


class Component(Protocol):
    """What an area contributes: something to start and stop with the gateway."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
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
    mqtt: MqttLink | None = None
    http: httpx.AsyncClient | None = None
    components: list[Component] = field(default_factory=list)
    extras: dict[str, object] = field(default_factory=dict)  # area services by name, e.g. "recognition"
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _webhooks: list[WebhookSender] = field(default_factory=list)

    @classmethod
    def create(cls, config: GatewayConfig, clock: Clock | None = None, with_components: bool = True) -> "Services":
        clock = clock or Clock()
        metrics = Metrics()
        bus = EventBus(metrics)
        db = Database(config.database_url, echo=config.storage.echo_sql)
        audit = Audit(db, clock)
        alerts = AlertService(config.alerts, audit, bus, clock, metrics)
        secret = load_secret_key(config)
        svc = cls(
            config=config, clock=clock, metrics=metrics, bus=bus, db=db, audit=audit, alerts=alerts,
            push=PushHub(metrics), signer=TokenSigner(secret, config.auth.token_ttl_s),
            login_limiter=RateLimiter(config.auth.login_attempts_per_minute, clock),
        )
        if config.mqtt.url:
            svc.mqtt = MqttLink(config.mqtt, config.gateway.node_id, metrics)
        if with_components:
            from gateway.areas import build_components

            svc.components = build_components(svc)
        return svc

    @property
    def media_dir(self) -> Path:
        return self.config.media_dir

    async def start(self) -> None:
        await self.db.upgrade()
        self.media_dir.mkdir(parents=True, exist_ok=True)
        await self.sync_config()
        self.http = httpx.AsyncClient()
        self.bus.subscribe("push", self.push, topics=PUSHED_TOPICS, maxsize=5000)
        self.bus.subscribe("device-state", self._device_states_changed, topics=("device.state",), maxsize=5000, overflow="block", batch=True)
        if self.mqtt is not None:
            self.bus.subscribe("mqtt-alerts", MqttAlertPublisher(self.mqtt, self.config.alerts.mqtt_topic_prefix), topics=("alert",), maxsize=10_000)
        for hook in self.config.alerts.webhooks:
            sender = WebhookSender(hook, self.metrics, self.http)
            self._webhooks.append(sender)
            self.bus.subscribe(f"webhook:{hook.url}", sender, topics=("alert",), maxsize=10_000)
            self._tasks.append(asyncio.create_task(sender.run(), name=f"webhook:{hook.url}"))
        await self.bus.start()
        if self.mqtt is not None:
            await self.mqtt.start()
        self._tasks.append(asyncio.create_task(self.alerts.run_escalation(), name="alert-escalation"))
        for c in self.components:
            log.info("starting %s", c.name)
            await c.start()
        # What start-up built (modules, the ORM's mappings, zone indexes, codecs) lives as
        # long as the gateway. Left to the cyclic collector, each full collection walked
        # all of it: 50-80 ms with the event loop stopped, a few times a minute under
        # tracker load. Frozen, collections only walk what was made since.
        gc.freeze()

    async def stop(self) -> None:
        gc.unfreeze()  # what start-up made may be garbage once stopped (tests start many)
        for c in reversed(self.components):
            try:
                await c.stop()
            except Exception:
                log.exception("stopping %s failed", c.name)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.bus.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.http is not None:
            await self.http.aclose()
        await self.db.close()

    async def sync_config(self) -> None:
        """Persons and devices from the config file appear in the database.

        Config rows are upserted; rows created through the API are left alone,
        and a device removed from the file is disabled, never deleted (its
        history stays).
        """
        cfg = self.config
        async with self.audit.tx() as s:
            for p in cfg.persons:
                row = await s.get(Person, p.id)
                if row is None:
                    s.add(Person(id=p.id, name=p.name, category=p.category, notes=p.notes, source="config"))
                    await self.audit.add(s, "config", "person.created", f"person:{p.id}")
                elif (row.name, row.category, row.notes) != (p.name, p.category, p.notes):
                    row.name, row.category, row.notes = p.name, p.category, p.notes
                    await self.audit.add(s, "config", "person.updated", f"person:{p.id}")
            await s.flush()
            seen = set()
            for d in cfg.devices:
                seen.add(d.id)
                settings = d.model_dump(mode="json", exclude={"id", "kind", "name", "enabled", "person_id", "password"})
                person_id = getattr(d, "person_id", None)
                row = await s.get(Device, d.id)
                if row is None:
                    s.add(Device(id=d.id, kind=d.kind, name=d.name, person_id=person_id, settings=settings, enabled=d.enabled, source="config"))
                    await self.audit.add(s, "config", "device.created", f"device:{d.id}", {"kind": d.kind})
                elif (row.kind, row.name, row.person_id, row.settings, row.enabled) != (d.kind, d.name, person_id, settings, d.enabled):
                    row.kind, row.name, row.person_id, row.settings, row.enabled = d.kind, d.name, person_id, settings, d.enabled
                    await self.audit.add(s, "config", "device.updated", f"device:{d.id}")
            stale = (await s.scalars(select(Device).where(Device.source == "config", Device.enabled.is_(True)))).all()
            for row in stale:
                if row.id not in seen:
                    row.enabled = False
                    await self.audit.add(s, "config", "device.disabled", f"device:{row.id}", {"reason": "removed from configuration"})

    async def _device_states_changed(self, events: list[Event]) -> None:
        """Keep devices.state current and publish gateway/devices/{id}/state (retained).

        A burst (every tracker coming online after a restart) is one transaction:
        one per event was a sixth of the gateway's time while it lasted.
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
