"""WebSocket push to consoles: one bounded queue per client, newest kept.

A console that cannot keep up loses the oldest messages (counted), never
slows the bus or other consoles.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from gateway.events import Event
from gateway.metrics import Metrics
from gateway.unit_index import UnitIndex
from gateway.units import ROOT_PATH

PUSHED_TOPICS = ("alert", "device.state", "position", "checkin", "face.seen", "camera.health", "upload.completed", "device.status", "kiosk.event", "recording.gap", "proceeding", "upload.progress", "call")


class PushClient:
    def __init__(self, maxsize: int, user_id: int | None = None, reach: str = ROOT_PATH, username: str | None = None) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.topics: set[str] | None = None
        self.user_id = user_id
        # what the user may see: messages about units outside it are not sent (an alert
        # assigned to the user personally is)
        self.reach = reach
        self.username = username
        self.recheck = asyncio.Event()  # set when the user changed: is the session still valid?


class PushHub:
    def __init__(self, metrics: Metrics, per_client: int = 500, units: UnitIndex | None = None) -> None:
        self.clients: set[PushClient] = set()
        self.units = units
        # where the console draws a WGS-84 point on its map tiles, when they are not WGS-84
        # (GCJ-02): positions and alert places carry it as `display`, so the browser holds no
        # datum code. Set by the composition root from the trackers area's formula.
        self.display: Callable[[float, float], tuple[float, float]] | None = None
        self.per_client = per_client
        self._dropped = metrics.counter("gateway_push_dropped_total", "Console messages dropped for slow clients")
        self._gauge = metrics.gauge("gateway_push_clients", "Connected console WebSockets")

    def connect(self, user_id: int | None = None, reach: str = ROOT_PATH, username: str | None = None) -> PushClient:
        c = PushClient(self.per_client, user_id, reach, username)
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
            message = self._display(event.to_dict())
            self._deliver(self._in_reach(wanting, message), message)

    def send(self, topic: str, message: dict[str, Any]) -> None:
        wanting = self._wanting(topic)
        if wanting:
            message = self._display(message)
            self._deliver(self._in_reach(wanting, message), message)

    def _display(self, message: dict[str, Any]) -> dict[str, Any]:
        """Add `display` ([lat, lon] on the console's tiles) to a position and to an alert's
        position, when the tiles are not WGS-84; the message itself is left as it was (MQTT
        and webhooks carry the same dict)."""
        to = self.display
        if to is None:
            return message
        if isinstance(message.get("lat"), float | int) and isinstance(message.get("lon"), float | int):
            return {**message, "display": list(to(message["lat"], message["lon"]))}
        alert = message.get("alert")
        if isinstance(alert, dict) and isinstance(alert.get("position"), dict):
            pos = alert["position"]
            return {**message, "alert": {**alert, "position": {**pos, "display": list(to(pos["lat"], pos["lon"]))}}}
        return message

    def _in_reach(self, wanting: list[PushClient], message: dict[str, Any]) -> list[PushClient]:
        if self.units is None or all(c.reach == ROOT_PATH for c in wanting):
            return wanting  # a single-unit gateway, or only root users connected: no lookups
        paths = self.units.paths_of(message)
        alert = message.get("alert") if isinstance(message.get("alert"), dict) else None
        assignee = alert.get("assignee") if alert else None
        return [c for c in wanting if c.reach == ROOT_PATH or any(p.startswith(c.reach) for p in paths)
                or (assignee is not None and assignee == c.username)]

    def _wanting(self, topic: str) -> list[PushClient]:
        return [c for c in self.clients if c.topics is None or topic in c.topics]

    def _deliver(self, wanting: list[PushClient], message: dict[str, Any]) -> None:
        if not wanting:
            return
        text = json.dumps(message, ensure_ascii=False, default=str)
        for c in wanting:
            if c.queue.full():
                c.queue.get_nowait()
                self._dropped.inc()
            c.queue.put_nowait(text)
