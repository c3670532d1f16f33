"""Driver for cameras: one PyAV RTSP connection per camera, fanned out to the recorder,
the live relay, the sampler and snapshots (streams/).

`CameraArea` runs every enabled camera stored in the database (the configuration's are
written there at start) and gives the API, the proceedings and the faces sampler a
camera's fan-out. The composition root builds it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

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
from gateway.metrics import Metrics
from streams.fanout import Fanout

log = logging.getLogger(__name__)


def camera_config(row: Device) -> CameraDevice | None:
    """The row as the typed model the API and the configuration validate it with, its
    password from the row's write-only secret; None (logged) when it does not validate."""
    try:
        cfg = stored_device("camera", row.id, row.name, row.enabled, None, row.settings)
    except ValidationError as e:
        log.error("camera %s: settings not valid, not started: %s", row.id, e.errors(include_url=False))
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
        self.session = CameraSession(cfg.id, self.source, bus, metrics, stall_s=rec.stall_s,
                                     backoff_max_s=rec.backoff_max_s, auth_backoff_s=rec.auth_backoff_s, watchdog=watchdog)
        self.recorder: Any = None


class CameraArea:
    name = "cameras"

    def __init__(self, *, recording: RecordingSettings, bus: EventBus, db: Database, audit: Audit, alerts: AlertService, clock: Clock,
                 metrics: Metrics, media_dir: Path) -> None:
        self.rec = recording
        self.bus, self.db, self.audit, self.alerts, self.clock, self.metrics, self.media_dir = bus, db, audit, alerts, clock, metrics, media_dir
        self.cameras: dict[str, Camera] = {}
        self.watchdog = Watchdog()
        self._tasks: list[asyncio.Task[None]] = []
        self.live: Any = None
        self.proceedings: Any = None
        self.snapshots: Any = None
        self.disk: Any = None  # the recorders' DiskWriter, once started

    def fanout(self, camera_id: str) -> Fanout | None:
        cam = self.cameras.get(camera_id)
        return cam.fanout if cam else None

    async def start(self) -> None:
        from streams.live import LiveRelay
        from streams.proceedings import Proceedings
        from streams.recorder import CameraRecorder, DiskWriter, recover
        from streams.snapshots import Snapshots

        rec = self.rec
        async with self.db.session() as s:
            rows = (await s.scalars(select(Device).where(Device.kind == "camera", Device.enabled.is_(True)).order_by(Device.id))).all()
        for row in rows:
            cfg = camera_config(row)
            if cfg is not None:
                self.cameras[cfg.id] = Camera(cfg, rec, self.bus, self.metrics, self.watchdog)
        recovered = await recover(self.db, self.media_dir)
        if recovered:
            log.info("finished %d segments left open by the last run", recovered)
        loop = asyncio.get_running_loop()
        if any(c.cfg.record for c in self.cameras.values()):  # no idle thread when nothing records
            self.disk = DiskWriter()
            self.disk.start()
        for cam in self.cameras.values():
            if cam.cfg.record:
                cam.recorder = CameraRecorder(cam.id, cam.fanout, db=self.db, bus=self.bus, alerts=self.alerts, metrics=self.metrics,
                                              media_dir=self.media_dir, loop=loop, segment_s=rec.segment_s, disk=self.disk)
                cam.recorder.start()
            cam.session.start()
        self.live = LiveRelay(self, self.metrics, rec.live_queue_packets)
        self.snapshots = Snapshots(self)
        self.proceedings = Proceedings(self, db=self.db, audit=self.audit, bus=self.bus, clock=self.clock, pre_roll_s=rec.pre_roll_s)
        self._tasks.append(asyncio.create_task(self._retention(), name="recording-retention"))

    async def _retention(self) -> None:
        from streams.recorder import apply_retention

        rec = self.rec
        days = {"*": rec.retention_days, **{c.id: c.cfg.retention_days for c in self.cameras.values() if c.cfg.retention_days}}
        while True:
            await asyncio.sleep(rec.retention_check_s)
            try:
                gone = await apply_retention(self.db, self.media_dir, days, rec.min_free_bytes)
                if gone:
                    log.info("retention deleted %d segments", len(gone))
            except Exception:
                log.exception("retention")

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.live is not None:
            await self.live.close_all()
        await asyncio.gather(*(c.session.stop() for c in self.cameras.values()), return_exceptions=True)
        await self.watchdog.stop()
        await asyncio.gather(*(c.recorder.stop() for c in self.cameras.values() if c.recorder), return_exceptions=True)
        if self.disk is not None:
            await self.disk.stop()
