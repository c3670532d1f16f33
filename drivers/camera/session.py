"""Session: one supervised task per camera: connect, watch, back off, report health.

State is published (CameraHealth + DeviceState) only when it changes; CameraHealth also
carries fps/bitrate every `health_interval_s` while online. A camera that stops producing
packets for `stall_s` is torn down by the watchdog (one `Watchdog` ticks for every camera)
and reconnected. Retries after a failed connection back off exponentially (wrong
credentials start higher and never retry fast). A camera that has not been online for
`offline_alert_s` (offline, unreachable, refusing the credentials) raises an orange
`camera_offline` alert, resolved when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from drivers.camera.source import Outcome, RtspSource
from gateway.alerts.service import AlertService
from gateway.bus import EventBus
from gateway.events import CameraHealth, DeviceState
from gateway.logs import Throttled
from gateway.metrics import Metrics

log = logging.getLogger(__name__)
_alert_failures = Throttled(log, every_s=60)
T = TypeVar("T")


@dataclass
class _Connection:
    """What the watchdog compares against while one connection is up."""

    started: float
    frames: int
    bytes: int
    t: float  # when frames/bytes were read, for fps and bitrate
    next_health: float = 0.0
    aborted: bool = False


class Watchdog:
    """One clock for every camera's stall watchdog, health figures and offline alert.

    A task per camera waking every second cost, with dozens of cameras, more of the event
    loop than everything else the gateway does at rest (a timer, a future and a task step
    each; docs/cameras.md); here one tick looks at every running camera, which is a few
    comparisons each.
    """

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._sessions: dict[CameraSession, None] = {}  # ordered, for a steady publishing order
        self._task: asyncio.Task[None] | None = None

    def add(self, session: "CameraSession") -> None:
        self._sessions[session] = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="camera-watchdog")

    def discard(self, session: "CameraSession") -> None:
        self._sessions.pop(session, None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            now = time.time()
            for session in list(self._sessions):
                try:
                    publish = session.check(now)
                    if publish is not None:
                        await publish
                except Exception:
                    log.exception("camera %s: watchdog", session.camera_id)


class CameraSession:
    def __init__(self, camera_id: str, source: RtspSource, bus: EventBus, metrics: Metrics, *, stall_s: float = 5.0,
                 backoff_min_s: float = 0.5, backoff_max_s: float = 30.0, auth_backoff_s: float = 15.0,
                 health_interval_s: float = 5.0, watchdog: "Watchdog | None" = None, alerts: AlertService | None = None,
                 offline_alert_s: float = 120.0) -> None:
        self.camera_id = camera_id
        self.source = source
        self.bus = bus
        self.alerts = alerts
        self.offline_alert_s = offline_alert_s
        self.offline_since: float | None = None  # epoch s: not online since (None while online)
        self._offline_raised = False  # camera_offline raised for this time offline
        self._stale_alert = False  # the last run may have left one open: resolved when first online
        self.stall_s = stall_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.auth_backoff_s = auth_backoff_s
        self.health_interval_s = health_interval_s
        self.watchdog = watchdog or Watchdog()
        self._conn: _Connection | None = None
        self.state = "offline"
        self.detail: str | None = None
        self.fps = 0.0
        self.bitrate = 0.0
        self.attempts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._online = metrics.gauge("gateway_camera_online", "1 while the camera delivers packets", ("camera",))
        self._fps = metrics.gauge("gateway_camera_fps", "Video frames per second received", ("camera",))
        self._bitrate = metrics.gauge("gateway_camera_bitrate_bps", "Video bits per second received", ("camera",))
        self._kf_age = metrics.gauge("gateway_camera_last_keyframe_age_s", "Seconds since the last keyframe", ("camera",))
        self._connects = metrics.counter("gateway_camera_connects_total", "Connection attempts by outcome", ("camera", "outcome"))
        self._restarts = metrics.counter("gateway_camera_watchdog_restarts_total", "Stalled cameras restarted by the watchdog", ("camera",))
        # children looked up once: dozens of cameras tick every second
        self._online, self._fps, self._bitrate, self._kf_age = (g.labels(camera_id) for g in (self._online, self._fps, self._bitrate, self._kf_age))

    def start(self) -> None:
        self.offline_since = time.time()
        self._stale_alert = self.alerts is not None
        self.watchdog.add(self)
        self._task = asyncio.create_task(self._run(), name=f"camera:{self.camera_id}")

    async def stop(self) -> None:
        """End the connection (the demux thread ends at its next packet or read timeout)."""
        self._stopping = True
        self.source.stop()
        self.watchdog.discard(self)
        if self._task is not None:
            if self._conn is None:
                self._task.cancel()  # waiting to retry: nothing to end
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.source.read_timeout_s + 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        self._online.set(0)
        self._fps.set(0)
        self._bitrate.set(0)

    async def resolve_offline(self, note: str) -> None:
        """The camera is back online, or no longer watched (disabled, edited): its offline
        alert (raised now, or possibly left open by the last run) ends."""
        if self._offline_raised or self._stale_alert:
            self._offline_raised = self._stale_alert = False
            await self.alerts_call(False, note)

    async def _run(self) -> None:
        delay = self.backoff_min_s
        while not self._stopping:
            self.source.abort.clear()
            self.attempts += 1
            st, now = self.source.stats, time.time()
            self._conn = _Connection(started=now, frames=st.frames, bytes=st.bytes, t=now)
            try:
                outcome: Outcome = await in_own_thread(self.source.run_once, f"rtsp:{self.camera_id}")
            finally:
                self._conn = None
            self._connects.labels(self.camera_id, outcome.state).inc()
            if self._stopping:
                break
            if outcome.packets > 0:
                delay = self.backoff_min_s  # it worked: come back fast
            await self._set_state(outcome.state if outcome.state != "stopped" else "offline", outcome.detail)
            wait = max(delay, self.auth_backoff_s) if outcome.state == "auth_failed" else delay
            log.info("camera %s: %s (%s); retry in %.1fs", self.camera_id, outcome.state, outcome.detail, wait)
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                break
            delay = min(delay * 2, self.backoff_max_s)

    def check(self, now: float) -> Coroutine[Any, Any, None] | None:
        """One watchdog tick: online when packets flow, restart when they stop, an alert
        when offline too long. Returns what to publish, if anything."""
        c, st = self._conn, self.source.stats
        if c is None or c.aborted:
            return self._check_offline(now)
        if st.last_packet > c.started and now - st.last_packet < self.stall_s:
            if now - c.t >= 2.0:
                self.fps = (st.frames - c.frames) / (now - c.t)
                self.bitrate = (st.bytes - c.bytes) * 8 / (now - c.t)
                c.frames, c.bytes, c.t = st.frames, st.bytes, now
                self._fps.set(self.fps)
                self._bitrate.set(self.bitrate)
            if st.last_keyframe:
                self._kf_age.set(now - st.last_keyframe)
            due, publish = now >= c.next_health, None
            if due:
                c.next_health = now + self.health_interval_s
            if self.state != "online":
                publish = self._set_state("online", None)
            elif due:
                publish = self._publish_health()
            return publish
        if now - max(st.last_packet, c.started) >= self.stall_s + self.source.open_timeout_s * (st.last_packet <= c.started):
            log.warning("camera %s: no packets for %.1fs, restarting", self.camera_id, self.stall_s)
            self._restarts.labels(self.camera_id).inc()
            c.aborted = True
            self.source.abort.set()
        return self._check_offline(now)

    def _check_offline(self, now: float) -> Coroutine[Any, Any, None] | None:
        since = self.offline_since
        if since is None or self._offline_raised or self.alerts is None or self._stopping or now - since < self.offline_alert_s:
            return None
        self._offline_raised = True
        return self.alerts_call(True, f"camera {self.camera_id} {self.state} for {now - since:.0f} s" + (f": {self.detail}" if self.detail else ""))

    async def alerts_call(self, raise_: bool, text: str) -> None:
        """Raise or resolve camera_offline; a failure (the database cannot write) is logged
        and never ends the session."""
        if self.alerts is None:
            return
        try:
            if raise_:
                await self.alerts.raise_alert("camera_offline", device_id=self.camera_id, message=text,
                                              details={"state": self.state, "detail": self.detail,
                                                       "offline_since": datetime.fromtimestamp(self.offline_since or time.time(), timezone.utc).isoformat()})
            else:
                await self.alerts.clear("camera_offline", device_id=self.camera_id, note=text)
        except Exception as e:  # noqa: BLE001 - a raise is tried again at the next tick
            if raise_:
                self._offline_raised = False
            _alert_failures.log(logging.ERROR, self.camera_id, "camera %s: %s camera_offline failed: %s", self.camera_id,
                                "raising" if raise_ else "resolving", e)

    async def _publish_health(self) -> None:
        kf = self.source.stats.last_keyframe
        await self.bus.publish(CameraHealth(
            camera_id=self.camera_id, state=self.state,  # type: ignore[arg-type]
            fps=round(self.fps, 2) if self.state == "online" else None,
            bitrate_bps=round(self.bitrate) if self.state == "online" else None,
            last_keyframe_at=datetime.fromtimestamp(kf, timezone.utc) if kf else None, detail=self.detail))

    async def _set_state(self, state: str, detail: str | None) -> None:
        if state == self.state and detail == self.detail:
            return
        was_online = self.state == "online"
        self.state, self.detail = state, detail
        self._online.set(1 if state == "online" else 0)
        if state != "online":
            self.fps = self.bitrate = 0.0
            self._fps.set(0)
            self._bitrate.set(0)
            if was_online:
                self.offline_since, self._offline_raised = time.time(), False
        else:
            self.offline_since = None
        await self._publish_health()
        if (state == "online") != was_online or self.attempts == 1:
            await self.bus.publish(DeviceState(device_id=self.camera_id, kind="camera",
                                               state="online" if state == "online" else "offline", reason=detail))
        if state == "online":
            await self.resolve_offline("camera back online")


async def in_own_thread(fn: Callable[[], T], name: str) -> T:
    """Run a blocking call in a thread of its own. A camera connection blocks for as long
    as it lasts (hours): in asyncio's default executor (CPU count + 4 threads) a few
    cameras would starve every other `to_thread` user of the gateway."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)

    def target() -> None:
        value, error = None, None
        try:
            value = fn()
        except BaseException as e:  # handed to the awaiting task
            error = e
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    threading.Thread(target=target, name=name, daemon=True).start()
    return await fut
