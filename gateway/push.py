"""WebSocket push to consoles: one bounded queue per client, newest kept.

A console that cannot keep up loses the oldest messages (counted), never
slows the bus or other consoles.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.events import Event
from gateway.metrics import Metrics

PUSHED_TOPICS = ("alert", "device.state", "position", "checkin", "face.seen", "camera.health", "upload.completed", "device.status", "kiosk.event", "recording.gap", "proceeding", "upload.progress")


class PushClient:
    def __init__(self, maxsize: int, user_id: int | None = None) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.topics: set[str] | None = None
        self.user_id = user_id
        self.recheck = asyncio.Event()  # set when the user changed: is the session still valid?


class PushHub:
    def __init__(self, metrics: Metrics, per_client: int = 500) -> None:
        self.clients: set[PushClient] = set()
        self.per_client = per_client
        self._dropped = metrics.counter("gateway_push_dropped_total", "Console messages dropped for slow clients")
        self._gauge = metrics.gauge("gateway_push_clients", "Connected console WebSockets")

    def connect(self, user_id: int | None = None) -> PushClient:
        c = PushClient(self.per_client, user_id)
        self.clients.add(c)
        self._gauge.set(len(self.clients))
        return c

    def disconnect(self, c: PushClient) -> None:
        self.clients.discard(c)
        self._gauge.set(len(self.clients))

    def user_changed(self, user_id: int) -> None:
        """A user's role, password or state changed, or they logged out: their open sockets
        check their token again (and close when it no longer holds)."""
        for c in self.clients:
            if c.user_id == user_id:
                c.recheck.set()

    async def __call__(self, event: Event) -> None:
        # Nothing is serialised for nobody: positions come by the thousand (docs/trackers.md).
        wanting = self._wanting(event.topic)
        if wanting:
            self._deliver(wanting, event.to_dict())

    def send(self, topic: str, message: dict[str, Any]) -> None:
        wanting = self._wanting(topic)
        if wanting:
            self._deliver(wanting, message)

    def _wanting(self, topic: str) -> list[PushClient]:
        return [c for c in self.clients if c.topics is None or topic in c.topics]

    def _deliver(self, wanting: list[PushClient], message: dict[str, Any]) -> None:
        text = json.dumps(message, ensure_ascii=False, default=str)
        for c in wanting:
            if c.queue.full():
                c.queue.get_nowait()
                self._dropped.inc()
            c.queue.put_nowait(text)
