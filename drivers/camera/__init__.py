"""Driver for cameras: one PyAV RTSP connection per camera, fanned out to the recorder,
the live relay, the sampler and snapshots (streams/).

`CameraArea` runs every enabled camera stored in the database (the configuration's are
written there at start) and gives the API, the proceedings and the faces sampler a
camera's fan-out. The composition root builds it.

Cameras change without a restart: `/api/devices` publishes `DeviceChanged` after commit
and `_changed` (an inline subscriber: the API answers once it returns) applies it.

- A new (or re-enabled) camera is started at once: fan-out, connection, recorder.
- An edit of what the connection or the recording depends on (url, credentials,
  transport, record) replaces the camera: the old one is stopped (its open segment
  closed, its live viewers closed) and a new one started with the new settings. Other
  edits (name, room, retention, recognition) are applied in place.
- A removed or disabled camera is stopped, and its offline alert resolved.

On several nodes (docs/cluster.md) each camera is recorded and relayed by one node, the
owner of its `camera:<id>` lease: `configs` holds every enabled camera, `cameras` only
those this node runs. A camera is started when its lease is granted (`acquired`: the
segment its dead owner left open is finished first, and the hole becomes a gap row) and
stopped when the lease goes (`released`). A camera added through this node's API is
claimed at once (`Cluster.claim_now`); changes made on another node arrive as remote
events, and the owner applies them.

`cameras` changes before the handler returns. Starting is
quick; stopping is not always (a stalled connection ends at its read timeout, a closing
segment waits for its row), so it runs in a task of its own, one per camera, and a
camera's next change waits for the one before: its changes apply in order, a replaced
camera is stopped before its successor connects (a camera may allow only so many
sessions), and the API answers at once. The faces sampler follows through `watch`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from config.cameras import CameraDevice, RecordingSettings
from config.devices import stored_device
from drivers.camera.session import CameraSession, Watchdog
from drivers.camera.source import RtspSource
from gateway.alerts.service import AlertService
from gateway.audit import Audit
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.cluster.leases import Grant
from gateway.cluster.membership import Cluster, Singletons
from gateway.db.engine import Database
from gateway.db.models import Device
from gateway.disk import DiskMonitor
from gateway.events import DeviceChanged, DeviceState, Event
from gateway.metrics import Metrics
from streams.fanout import Fanout
from streams.live import LiveRelay
from streams.proceedings import Proceedings
from streams.recorder import CameraRecorder
from streams.recovery import last_recorded, recover, remove_orphans
from streams.retention import apply_retention
from streams.segment_rows import SegmentRows
from streams.segment_writer import DiskWriter
from streams.snapshots import Snapshots

log = logging.getLogger(__name__)

# What the connection or the recorder is built from: a change of these replaces the camera.
RESTART_FIELDS = frozenset({"url", "username", "password", "transport", "record"})


def camera_config(row: Device) -> CameraDevice | None:
    """The row as the typed model the API and the configuration validate it with, its
    password from the row's write-only secret; None (logged) when it does not validate."""
    try:
        cfg = stored_device("camera", row.id, row.name, row.enabled, None, row.settings)
    except ValidationError as e:
        log.error("camera %s: settings not valid, not started: %s", row.id,
                  "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors(include_url=False)))
        return None
    assert isinstance(cfg, CameraDevice)
    if row.secret is not None:
        cfg = cfg.model_copy(update={"password": SecretStr(row.secret)})
    return cfg


def needs_restart(old: CameraDevice, new: CameraDevice) -> bool:
    return old.model_dump(include=set(RESTART_FIELDS)) != new.model_dump(include=set(RESTART_FIELDS))


class Camera:
    def __init__(self, cfg: CameraDevice, rec: RecordingSettings, bus: EventBus, metrics: Metrics, watchdog: Watchdog,
                 alerts: AlertService | None = None) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.fanout = Fanout(cfg.id)
        self.source = RtspSource(cfg.id, cfg.url, cfg.transport, self.fanout, cfg.username,
                                 cfg.password.get_secret_value() if cfg.password else None,
                                 open_timeout_s=rec.open_timeout_s, read_timeout_s=rec.stall_s)
        self.session = CameraSession(cfg.id, self.source, bus, metrics, stall_s=rec.stall_s, backoff_max_s=rec.backoff_max_s,
                                     auth_backoff_s=rec.auth_backoff_s, watchdog=watchdog, alerts=alerts, offline_alert_s=rec.offline_alert_s)
        self.recorder: CameraRecorder | None = None


class CameraArea:
    name = "cameras"
    kind = "camera"  # the cluster's kind of work: `camera:<id>`

    def __init__(self, *, recording: RecordingSettings, bus: EventBus, db: Database, audit: Audit, alerts: AlertService, clock: Clock,
                 metrics: Metrics, media_dir: Path, cluster: Cluster, singletons: Singletons, monitor: DiskMonitor | None = None) -> None:
        self.rec = recording
        self.cluster = cluster
        self.singletons = singletons
        self.configs: dict[str, CameraDevice] = {}  # every enabled camera, whichever node runs it
        self.bus, self.db, self.audit, self.alerts, self.clock, self.metrics, self.media_dir = bus, db, audit, alerts, clock, metrics, media_dir
        self.monitor = monitor
        self.cameras: dict[str, Camera] = {}
        self.watchdog = Watchdog()
        self._tasks: list[asyncio.Task[None]] = []
        self._changes: dict[str, asyncio.Task[None]] = {}  # per camera: its latest change being applied
        self._watchers: list[Callable[[], None]] = []
        self.files_lock = asyncio.Lock()  # retention and the orphan sweep: never both on the same files
        # what the API reaches through the area: made here (they hold only references), so
        # they are never missing
        self.live = LiveRelay(self, metrics, recording.live_queue_packets, recording.live_max_per_camera, recording.live_max_per_user,
                              recording.live_connect_s)
        self.snapshots = Snapshots(self)
        self.proceedings = Proceedings(self, db=db, audit=audit, bus=bus, clock=clock, pre_roll_s=recording.pre_roll_s)
        self.writer: DiskWriter | None = None  # the recorders' disk writer thread, once one records
        self.rows: SegmentRows | None = None
        self.cleanup: asyncio.Task[tuple[int, int]] | None = None  # the start-up sweep of segment files without a row

    def elsewhere(self, camera_id: str) -> bool:
        """An enabled camera this node does not run (another node does, or will)."""
        return camera_id in self.configs and camera_id not in self.cameras

    def fanout(self, camera_id: str) -> Fanout | None:
        cam = self.cameras.get(camera_id)
        return cam.fanout if cam else None

    def watch(self, fn: Callable[[], None]) -> None:
        """Call `fn` whenever the set of cameras or their settings changed (on the loop)."""
        self._watchers.append(fn)

    async def start(self) -> None:
        async with self.db.session() as s:
            rows = (await s.scalars(select(Device).where(Device.kind == "camera", Device.enabled.is_(True)).order_by(Device.id))).all()
        for row in rows:
            cfg = camera_config(row)
            if cfg is not None:
                self.configs[cfg.id] = cfg
        self.rows = SegmentRows(db=self.db, bus=self.bus, alerts=self.alerts, metrics=self.metrics, monitor=self.monitor)
        self.rows.start()
        self.bus.subscribe("camera-changes", self._changed, topics=(DeviceChanged.topic,), inline=True, remote=True)
        # the cameras this node records start when the cluster grants them (`acquired`)
        self.cluster.add(self)
        self.singletons.add("recording-retention", self._retention)
        self.singletons.add("recording-orphans", self._sweep_orphans)

    # --- ownership (the cluster's claimant of kind `camera`) ----------------------------
    def wanted(self) -> list[str]:
        return list(self.configs)

    async def acquired(self, target: str, grant: Grant) -> None:
        cfg = self.configs.get(target)
        if cfg is None or target in self.cameras:
            return
        recovered = await recover(self.db, self.media_dir, target)
        if recovered:
            log.info("camera %s: finished %d segment(s) left open by its last recording", target, recovered)
        if self.configs.get(target) is not cfg or target in self.cameras:
            return  # changed meanwhile: the change applies
        cam = self.cameras[target] = self._camera(cfg)
        self._notify()
        await self._start_camera(cam, "gateway down")

    async def released(self, target: str) -> None:
        prev = self._changes.get(target)
        if prev is not None:
            await asyncio.gather(prev, return_exceptions=True)
        cam = self.cameras.pop(target, None)
        if cam is None:
            return
        self.snapshots.forget(target)
        self._notify()
        log.info("camera %s: handed to another node", target)
        await self._stop_camera(cam)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self.cleanup] if self.cleanup else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._changes.values(), return_exceptions=True)
        await self.live.close_all()
        await asyncio.gather(*(self._stop_camera(c) for c in self.cameras.values()), return_exceptions=True)
        await self.watchdog.stop()
        if self.writer is not None:
            await self.writer.stop()
        if self.rows is not None:
            await self.rows.stop()

    # --- one camera -------------------------------------------------------------------
    def _camera(self, cfg: CameraDevice) -> Camera:
        return Camera(cfg, self.rec, self.bus, self.metrics, self.watchdog, self.alerts)

    def _disk_writer(self) -> DiskWriter:
        if self.writer is None:  # no idle thread while nothing records
            self.writer = DiskWriter()
            self.writer.start()
        return self.writer

    async def _start_camera(self, cam: Camera, gap_reason: str) -> None:
        if cam.cfg.record:
            assert self.rows is not None
            # the hole between this camera's last recording and its first new segment
            last = await last_recorded(self.db, cam.id)
            cam.recorder = CameraRecorder(cam.id, cam.fanout, disk=self._disk_writer(), rows=self.rows, metrics=self.metrics,
                                          media_dir=self.media_dir, segment_s=self.rec.segment_s, monitor=self.monitor,
                                          gap=(last, gap_reason) if last is not None else None)
            cam.recorder.start()
        cam.session.start()

    async def _stop_camera(self, cam: Camera) -> None:
        """Live viewers closed, connection ended, open segment closed and its rows written."""
        await self.live.close_camera(cam.id)
        await asyncio.gather(cam.session.stop(), *([cam.recorder.stop()] if cam.recorder else []))

    # --- changes through the API --------------------------------------------------------
    async def _changed(self, event: Event) -> None:
        if not isinstance(event, DeviceChanged) or event.kind != "camera":
            return
        cam_id = event.device_id
        async with self.db.session() as s:
            row = await s.get(Device, cam_id, populate_existing=True)
        cfg = camera_config(row) if row is not None and row.kind == "camera" and row.enabled else None
        if cfg is not None:
            self.configs[cam_id] = cfg
        else:
            self.configs.pop(cam_id, None)
        if not self.cluster.owns(self.kind, cam_id):
            if cfg is not None and cam_id not in self.cameras:
                await self.cluster.claim_now(self.kind, cam_id)  # starts it here, unless another node runs it
            return
        old = self.cameras.get(cam_id)
        if old is None and cfg is None:
            return
        if old is not None and cfg is not None and not needs_restart(old.cfg, cfg):
            old.cfg = cfg  # name, room, retention, recognition: nothing to reconnect
            self._notify()
            return
        new = self._camera(cfg) if cfg is not None else None
        if new is not None:
            self.cameras[cam_id] = new
        else:
            del self.cameras[cam_id]
        self.snapshots.forget(cam_id)
        self._notify()
        reason = "settings changed" if old is not None else "camera disabled"
        log.info("camera %s: %s", cam_id, "started" if old is None else "restarting with new settings" if new else "stopping")
        prev = self._changes.get(cam_id)
        if old is None and new is not None and (prev is None or prev.done()):
            await self._start_camera(new, reason)  # quick: the connection is made on its own thread
            return
        self._changes[cam_id] = asyncio.create_task(self._switch(cam_id, prev, old, new, reason), name=f"camera-change:{cam_id}")

    async def _switch(self, cam_id: str, prev: asyncio.Task[None] | None, old: Camera | None, new: Camera | None, reason: str) -> None:
        """Stop `old`, then start `new`, after the camera's change before this one."""
        try:
            if prev is not None:
                await asyncio.gather(prev, return_exceptions=True)
            if old is not None:
                was_online = old.session.state == "online"
                await self._stop_camera(old)
                if new is None:
                    await old.session.resolve_offline("camera disabled")
                    if was_online:
                        await self.bus.publish(DeviceState(device_id=cam_id, kind="camera", state="offline", reason="disabled"))
            if new is not None and self.cameras.get(cam_id) is new:  # not replaced again meanwhile
                await self._start_camera(new, reason)
        except Exception:
            log.exception("camera %s: applying a change", cam_id)
        finally:
            if self._changes.get(cam_id) is asyncio.current_task():
                del self._changes[cam_id]

    async def settled(self) -> None:
        """Return once every change published so far is applied (stops included)."""
        while self._changes:
            await asyncio.gather(*list(self._changes.values()), return_exceptions=True)

    def _notify(self) -> None:
        for fn in self._watchers:
            try:
                fn()
            except Exception:
                log.exception("camera watcher")

    # --- housekeeping -----------------------------------------------------------------
    async def _retention_days(self) -> dict[str, int]:
        """Each camera's retention, disabled ones' too (their segments keep their own)."""
        days: dict[str, int] = {"*": self.rec.retention_days}
        async with self.db.session() as s:
            for row in (await s.scalars(select(Device).where(Device.kind == "camera"))).all():
                d = (row.settings or {}).get("retention_days")
                if isinstance(d, int) and d > 0:
                    days[row.id] = d
        return days

    async def _sweep_orphans(self) -> None:
        """Once, on the node that holds its singleton lease (several nodes on one volume
        must not adopt the same file twice)."""
        self.cleanup = asyncio.create_task(self._remove_orphans(), name="recording-orphans")
        await self.cleanup

    async def _retention(self) -> None:
        while True:
            await asyncio.sleep(self.rec.retention_check_s)
            try:
                gone = await apply_retention(self.db, self.media_dir, await self._retention_days(), self.rec.min_free_bytes, lock=self.files_lock)
                if gone:
                    log.info("retention deleted %d segments", len(gone))
            except Exception:
                log.exception("retention")

    async def _remove_orphans(self) -> tuple[int, int]:
        try:
            deleted, adopted = await remove_orphans(self.db, self.media_dir, self.files_lock)
        except Exception:
            log.exception("sweeping segment files without a row")
            return 0, 0
        if deleted or adopted:
            log.warning("segment files without a row: %d deleted (no picture), %d adopted (playable)", deleted, adopted)
        return deleted, adopted
