"""Driver for cameras: one PyAV RTSP connection per camera, fanned out to the recorder,
the live relay, the sampler and snapshots (streams/).

`CameraArea` runs every enabled camera stored in the database (the configuration's are
written there at start) and gives the API, the proceedings and the faces sampler a
camera's fan-out. The composition root builds it. At start it finishes what the last run
left (open rows, segment files without a row) and each camera's recorder begins with the
gap since the camera's last recording (the gateway was down).
"""

from __future__ import annotations

import asyncio
import logging
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
from gateway.db.engine import Database
from gateway.db.models import Device
from gateway.disk import DiskMonitor
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


class Camera:
    def __init__(self, cfg: CameraDevice, rec: RecordingSettings, bus: EventBus, metrics: Metrics, watchdog: Watchdog) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.fanout = Fanout(cfg.id)
        self.source = RtspSource(cfg.id, cfg.url, cfg.transport, self.fanout, cfg.username,
                                 cfg.password.get_secret_value() if cfg.password else None,
                                 open_timeout_s=rec.open_timeout_s, read_timeout_s=rec.stall_s)
        self.session = CameraSession(cfg.id, self.source, bus, metrics, stall_s=rec.stall_s, backoff_max_s=rec.backoff_max_s,
                                     auth_backoff_s=rec.auth_backoff_s, watchdog=watchdog)
        self.recorder: CameraRecorder | None = None


class CameraArea:
    name = "cameras"

    def __init__(self, *, recording: RecordingSettings, bus: EventBus, db: Database, audit: Audit, alerts: AlertService, clock: Clock,
                 metrics: Metrics, media_dir: Path, monitor: DiskMonitor | None = None) -> None:
        self.rec = recording
        self.bus, self.db, self.audit, self.alerts, self.clock, self.metrics, self.media_dir = bus, db, audit, alerts, clock, metrics, media_dir
        self.monitor = monitor
        self.cameras: dict[str, Camera] = {}
        self.watchdog = Watchdog()
        self._tasks: list[asyncio.Task[None]] = []
        self.files_lock = asyncio.Lock()  # retention and the orphan sweep: never both on the same files
        self.live: LiveRelay | None = None
        self.proceedings: Proceedings | None = None
        self.snapshots: Snapshots | None = None
        self.writer: DiskWriter | None = None  # the recorders' disk writer thread, once one records
        self.rows: SegmentRows | None = None
        self.cleanup: asyncio.Task[tuple[int, int]] | None = None  # the start-up sweep of segment files without a row

    def fanout(self, camera_id: str) -> Fanout | None:
        cam = self.cameras.get(camera_id)
        return cam.fanout if cam else None

    async def start(self) -> None:
        async with self.db.session() as s:
            rows = (await s.scalars(select(Device).where(Device.kind == "camera", Device.enabled.is_(True)).order_by(Device.id))).all()
        recovered = await recover(self.db, self.media_dir)
        if recovered:
            log.info("finished %d segments left open by the last run", recovered)
        self.rows = SegmentRows(db=self.db, bus=self.bus, alerts=self.alerts, metrics=self.metrics, monitor=self.monitor)
        self.rows.start()
        self.live = LiveRelay(self, self.metrics, self.rec.live_queue_packets)
        self.snapshots = Snapshots(self)
        self.proceedings = Proceedings(self, db=self.db, audit=self.audit, bus=self.bus, clock=self.clock, pre_roll_s=self.rec.pre_roll_s)
        for row in rows:
            cfg = camera_config(row)
            if cfg is not None:
                cam = self.cameras[cfg.id] = self._camera(cfg)
                await self._start_camera(cam, "gateway down")
        self._tasks.append(asyncio.create_task(self._retention(), name="recording-retention"))
        self.cleanup = asyncio.create_task(self._remove_orphans(), name="recording-orphans")

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self.cleanup] if self.cleanup else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.live is not None:
            await self.live.close_all()
        await asyncio.gather(*(self._stop_camera(c) for c in self.cameras.values()), return_exceptions=True)
        await self.watchdog.stop()
        if self.writer is not None:
            await self.writer.stop()
        if self.rows is not None:
            await self.rows.stop()

    # --- one camera -------------------------------------------------------------------
    def _camera(self, cfg: CameraDevice) -> Camera:
        return Camera(cfg, self.rec, self.bus, self.metrics, self.watchdog)

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
        """Connection ended, open segment closed and its rows written."""
        await asyncio.gather(cam.session.stop(), *([cam.recorder.stop()] if cam.recorder else []))

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
