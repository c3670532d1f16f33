"""In-process event bus with bounded queues.

Each subscriber gets its own bounded queue and task, so a slow subscriber
delays only itself. `publish` (async) waits for room in queues of subscribers
that must not lose events (`overflow="block"`); `offer` never waits and is
what code on another thread (paho's network thread, a decoder thread) uses:
when a queue is full the event is counted as dropped for that subscriber
instead of blocking the caller.

A subscriber registered with `batch=True` gets a list: whatever is queued
when it is ready, in order. Subscribers that write to the database use it to
pay for one transaction per burst instead of one per event.

A subscriber registered with `inline=True` has no queue: `publish` awaits its
handler before returning. Change events use it (a device registered through the
API, a zone edited): when the API answers, every driver has applied the change,
so a tracker that sends its first fix the moment it is registered is heard.
Inline handlers must be quick, and `offer` (another thread) does not call them.

Events from other nodes of a cluster (gateway/cluster/relay.py) come in through
`publish_remote` and reach only subscribers registered with `remote=True`: the console
push and the areas' change handlers want them; the webhook and MQTT alert senders, the
device-state writer and the relay itself must not act twice on what another node did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from gateway.events import Event
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], Awaitable[None]]
Overflow = Literal["block", "drop_oldest", "drop_new"]


@dataclass(eq=False)
class Subscription:
    name: str
    topics: frozenset[str] | None
    handler: Handler | BatchHandler
    queue: asyncio.Queue[Event]
    overflow: Overflow
    batch: bool = False
    inline: bool = False
    remote: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def wants(self, topic: str) -> bool:
        return self.topics is None or topic in self.topics


class EventBus:
    def __init__(self, metrics: Metrics) -> None:
        self._subs: list[Subscription] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._depth = metrics.gauge("gateway_bus_queue_depth", "Events waiting per subscriber", ("subscriber",))
        self._dropped = metrics.counter("gateway_bus_dropped_total", "Events dropped because a subscriber queue was full", ("subscriber",))
        self._published = metrics.counter("gateway_bus_published_total", "Events published", ("topic",))
        self._failed = metrics.counter("gateway_bus_handler_errors_total", "Subscriber handler exceptions", ("subscriber",))
        self._running = False

    def subscribe(
        self,
        name: str,
        handler: Handler | BatchHandler,
        topics: Iterable[str] | None = None,
        maxsize: int = 1000,
        overflow: Overflow = "drop_oldest",
        batch: bool = False,
        inline: bool = False,
        remote: bool = False,
    ) -> Subscription:
        """`remote`: also receive the events of other nodes (see the module docstring)."""
        if inline and batch:
            raise ValueError("an inline subscriber is called once per event")
        sub = Subscription(name, frozenset(topics) if topics is not None else None, handler, asyncio.Queue(maxsize), overflow, batch, inline,
                           remote)
        self._subs.append(sub)
        if self._running and not inline:
            sub.task = asyncio.get_running_loop().create_task(self._consume(sub), name=f"bus:{name}")
        return sub

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._running = True
        for sub in self._subs:
            if sub.task is None and not sub.inline:
                sub.task = self._loop.create_task(self._consume(sub), name=f"bus:{sub.name}")

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Let queued events drain for a moment, then cancel subscribers."""
        self._running = False
        try:
            await asyncio.wait_for(asyncio.gather(*(s.queue.join() for s in self._subs)), drain_timeout)
        except TimeoutError:
            log.warning("bus: stopping with undelivered events")
        for sub in self._subs:
            if sub.task:
                sub.task.cancel()
        await asyncio.gather(*(s.task for s in self._subs if s.task), return_exceptions=True)
        for sub in self._subs:
            sub.task = None

    async def publish(self, event: Event) -> None:
        await self.publish_many((event,))

    async def publish_many(self, events: Sequence[Event], remote: bool = False) -> None:
        """Each event to every subscriber that wants it, in order, with the metrics updated
        once per call: per event, their label lookups and locks cost more than the
        queueing itself."""
        if not events:
            return
        subs = [s for s in self._subs if s.remote] if remote else self._subs
        counts: dict[str, int] = {}
        touched: set[Subscription] = set()
        for event in events:
            topic = event.topic
            counts[topic] = counts.get(topic, 0) + 1
            for sub in subs:
                if not sub.wants(topic):
                    continue
                if sub.inline:
                    await self._call_inline(sub, event)
                    continue
                if sub.overflow == "block":
                    await sub.queue.put(event)
                else:
                    self._put_nowait(sub, event)
                touched.add(sub)
        for topic, n in counts.items():
            self._published.labels(topic).inc(n)
        for sub in touched:
            self._depth.labels(sub.name).set(sub.queue.qsize())

    async def publish_remote(self, events: Sequence[Event]) -> None:
        """Events another node published (only `remote=True` subscribers get them)."""
        await self.publish_many(events, remote=True)

    async def _call_inline(self, sub: Subscription, event: Event) -> None:
        try:
            await sub.handler(event)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            raise
        except Exception:
            self._failed.labels(sub.name).inc()
            log.exception("bus subscriber %s failed on %s", sub.name, event.topic)

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to `sub` (its queued events are dropped)."""
        if sub in self._subs:
            self._subs.remove(sub)
        if sub.task is not None:
            sub.task.cancel()
            sub.task = None

    def offer(self, event: Event) -> None:
        """Publish without waiting; safe from any thread."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("bus not started")
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._offer_now(event)
        else:
            loop.call_soon_threadsafe(self._offer_now, event)

    def _offer_now(self, event: Event) -> None:
        self._published.labels(event.topic).inc()
        for sub in self._subs:
            if sub.wants(event.topic) and not sub.inline:
                self._put_nowait(sub, event)
                self._depth.labels(sub.name).set(sub.queue.qsize())

    def _put_nowait(self, sub: Subscription, event: Event) -> None:
        try:
            sub.queue.put_nowait(event)
            return
        except asyncio.QueueFull:
            pass
        self._dropped.labels(sub.name).inc()
        if sub.overflow == "drop_oldest" or sub.overflow == "block":
            try:
                sub.queue.get_nowait()
                sub.queue.task_done()
            except asyncio.QueueEmpty:  # pragma: no cover - raced with the consumer
                pass
            sub.queue.put_nowait(event)

    async def _consume(self, sub: Subscription) -> None:
        while True:
            events = [await sub.queue.get()]
            if sub.batch:
                while not sub.queue.empty():
                    events.append(sub.queue.get_nowait())
            try:
                await sub.handler(events if sub.batch else events[0])  # type: ignore[arg-type]
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failed.labels(sub.name).inc()
                log.exception("bus subscriber %s failed on %d event(s), the first on %s", sub.name, len(events), events[0].topic)
            finally:
                for _ in events:
                    sub.queue.task_done()
                self._depth.labels(sub.name).set(sub.queue.qsize())

    def dropped(self, name: str) -> float:
        return self._dropped.labels(name)._value.get()
