"""The outbox sender: a cluster singleton (one node sends) that routes staged changes into
deliveries and delivers what is due, at least once.

Each round: route the changes not routed yet (one transaction: the deliveries and the mark),
then send the due deliveries (oldest first, a bounded batch, a few in flight per channel) and
record each outcome. A crash between a send and its mark sends it again after the restart,
with the same idempotency key. A failure waits an exponential backoff with jitter; a refusal
(malformed) or too many attempts dead-letters the delivery with the reason. Nothing here
runs inside alert handling: a dead channel only makes this loop wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import func, select, update

from config.delivery import DeliverySettings
from gateway.clock import Clock
from gateway.db.engine import Database
from gateway.db.models import OutboxChange, OutboxDelivery, Person, Zone
from gateway.logs import Throttled
from gateway.metrics import Metrics
from gateway.outbox import messages
from gateway.outbox.channels import Refused, Retry, Sender
from gateway.outbox.router import Router

log = logging.getLogger(__name__)


class OutboxSender:
    def __init__(self, db: Database, router: Router, senders: dict[str, Sender], settings: DeliverySettings, clock: Clock,
                 metrics: Metrics, *, tz: str, public_url: str | None) -> None:
        self.db, self.router, self.senders, self.settings, self.clock = db, router, senders, settings, clock
        self.tz, self.public_url = tz, public_url
        self._wake = asyncio.Event()
        self._quiet = Throttled(log)
        self._sent = metrics.counter("gateway_outbox_sent_total", "Outbox deliveries confirmed by their channel", ("channel",))
        self._failed = metrics.counter("gateway_outbox_failed_total", "Outbox delivery attempts that failed (retried later)", ("channel",))
        self._dead = metrics.counter("gateway_outbox_dead_total", "Outbox deliveries dead-lettered", ("channel",))
        self._routed = metrics.counter("gateway_outbox_changes_routed_total", "Alert changes routed to their channels")

    def poke(self) -> None:
        """A change was staged (here or on another node): look now, not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.route_pending()
                wait = await self.send_due()
            except Exception:
                log.exception("outbox round failed; trying again")
                wait = self.settings.poll_s
            self._quiet.flush()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(wait, self.settings.poll_s)))
            except TimeoutError:
                pass

    async def route_pending(self) -> int:
        done = 0
        while True:
            async with self.db.session() as s:
                changes = (await s.scalars(select(OutboxChange).where(OutboxChange.routed.is_(False))
                                           .order_by(OutboxChange.id).limit(self.settings.batch))).all()
                if not changes:
                    return done
                now = self.clock.now()
                for c, routes in zip(changes, await self.router.route_all(s, list(changes)), strict=True):
                    for r in routes:
                        key = f"{c.id}:{r.channel}" + (f":{r.address}" if r.address else "")
                        s.add(OutboxDelivery(change_id=c.id, channel=r.channel, address=r.address, key=key, next_at=now))
                    c.routed = True
                await s.commit()
                done += len(changes)
                self._routed.inc(len(changes))

    async def send_due(self) -> float:
        """Send what is due; the seconds until the next delivery is due."""
        now = self.clock.now()
        async with self.db.session() as s:
            rows = (await s.execute(select(OutboxDelivery, OutboxChange).join(OutboxChange, OutboxChange.id == OutboxDelivery.change_id)
                                    .where(OutboxDelivery.state == "pending", OutboxDelivery.next_at <= now)
                                    .order_by(OutboxDelivery.id).limit(self.settings.batch))).all()
            pids = {c.payload.get("person_id") for _, c in rows} - {None}
            zids = {c.payload.get("zone_id") for _, c in rows} - {None}
            persons = dict((await s.execute(select(Person.id, Person.name).where(Person.id.in_(pids)))).all()) if pids else {}
            zones = dict((await s.execute(select(Zone.id, Zone.name).where(Zone.id.in_(zids)))).all()) if zids else {}
        if rows:
            by_channel: dict[str, list[tuple[OutboxDelivery, messages.Message]]] = defaultdict(list)
            for d, c in rows:
                p = c.payload
                msg = messages.build(d.key, c.change, p, person=persons.get(p.get("person_id") or ""), zone=zones.get(p.get("zone_id") or ""),
                                     tz=self.tz, public_url=self.public_url)
                by_channel[d.channel].append((d, msg))
            outcomes = await asyncio.gather(*(self._send_channel(ch, items) for ch, items in by_channel.items()))
            await self._record([o for batch in outcomes for o in batch])
            if len(rows) == self.settings.batch:
                return 0.0
        async with self.db.session() as s:
            nxt = await s.scalar(select(func.min(OutboxDelivery.next_at)).where(OutboxDelivery.state == "pending"))
        return self.settings.poll_s if nxt is None else (nxt - self.clock.now()).total_seconds()

    async def _send_channel(self, channel: str, items: list[tuple[OutboxDelivery, messages.Message]]) -> list[tuple[OutboxDelivery, str | None, bool]]:
        """(delivery, error or None, final) for each item."""
        sender = self.senders.get(channel)
        if sender is None:
            return [(d, f"no channel named {channel!r} is configured", True) for d, _ in items]
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(d: OutboxDelivery, msg: messages.Message) -> tuple[OutboxDelivery, str | None, bool]:
            async with gate:
                try:
                    await sender.send(msg, d.address)
                    return d, None, False
                except Refused as e:
                    return d, str(e), True
                except Retry as e:
                    return d, str(e), False
                except Exception as e:  # a bug in a channel must not stop the others
                    log.exception("outbox channel %s failed unexpectedly", channel)
                    return d, type(e).__name__, False

        return list(await asyncio.gather(*(one(d, m) for d, m in items)))

    async def _record(self, outcomes: list[tuple[OutboxDelivery, str | None, bool]]) -> None:
        r = self.settings.retry
        now = self.clock.now()
        async with self.db.session() as s:
            sent = [d for d, error, _ in outcomes if error is None]
            for d in sent:
                self._sent.labels(d.channel).inc()
            if sent:  # the common case in one statement
                await s.execute(update(OutboxDelivery).where(OutboxDelivery.id.in_([d.id for d in sent]), OutboxDelivery.state == "pending")
                                .values(state="sent", sent_at=now, attempts=OutboxDelivery.attempts + 1, last_error=None))
            for d, error, final in outcomes:
                attempts = d.attempts + 1
                values: dict[str, object] = {"attempts": attempts, "last_error": error}
                if error is None:
                    continue
                elif final or attempts >= r.max_attempts:
                    values["state"] = "dead"
                    self._dead.labels(d.channel).inc()
                    self._quiet.log(logging.ERROR, d.channel, "outbox: delivery %s to channel %s dead-lettered after %d attempt(s): %s",
                                    d.id, d.channel, attempts, error)
                else:
                    delay = min(r.max_delay_s, r.base_delay_s * 2 ** (attempts - 1)) * (0.5 + random.random() / 2)
                    values["next_at"] = now + timedelta(seconds=delay)
                    self._failed.labels(d.channel).inc()
                    self._quiet.log(logging.WARNING, d.channel, "outbox: channel %s attempt %d failed (%s); retrying in %.1f s",
                                    d.channel, attempts, error, delay)
                await s.execute(update(OutboxDelivery).where(OutboxDelivery.id == d.id, OutboxDelivery.state == "pending").values(**values))
            await s.commit()
