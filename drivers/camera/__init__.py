"""Driver for cameras: one PyAV RTSP connection per camera, fanned out to the recorder,
the live relay, the sampler and snapshots (streams/).

`build(services)` returns one component that runs every enabled camera of the
configuration and registers itself as `services.extras["cameras"]` so the API, the
proceedings and the faces sampler can reach a camera's fan-out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from config.cameras import CameraDevice
from drivers.camera.session import CameraSession, Watchdog
from drivers.camera.source import RtspSource
from streams.fanout import Fanout

if TYPE_CHECKING:
    from gateway.services import Component, Services

log = logging.getLogger(__name__)


class Camera:
    def __init__(self, cfg: CameraDevice, services: "Services", watchdog: Watchdog) -> None:
        rec = services.config.recording
        self.cfg = cfg
        self.id = cfg.id
        self.fanout = Fanout(cfg.id)
        self.source = RtspSource(cfg.id, cfg.url, cfg.transport, self.fanout, cfg.username,
                                 cfg.password.get_secret_value() if cfg.password else None,
                                 open_timeout_s=rec.open_timeout_s, read_timeout_s=rec.stall_s)
        self.session = CameraSession(cfg.id, self.source, services.bus, services.metrics, stall_s=rec.stall_s,
                                     backoff_max_s=rec.backoff_max_s, auth_backoff_s=rec.auth_backoff_s, watchdog=watchdog)
        self.recorder: Any = None


class CameraArea:
    name = "cameras"

    def __init__(self, services: "Services") -> None:
        self.services = services
        self.cameras: dict[str, Camera] = {}
        self.watchdog = Watchdog()
        for d in services.config.devices:
            if isinstance(d, CameraDevice) and d.enabled:
                self.cameras[d.id] = Camera(d, services, self.watchdog)
        self._tasks: list[asyncio.Task[None]] = []
        self.live: Any = None
        self.proceedings: Any = None
        self.snapshots: Any = None
        self.disk: Any = None  # the recorders' DiskWriter, once started
        services.extras["cameras"] = self

    def fanout(self, camera_id: str) -> Fanout | None:
        cam = self.cameras.get(camera_id)
        return cam.fanout if cam else None

    async def start(self) -> None:
        from streams.live import LiveRelay
        from streams.proceedings import Proceedings
        from streams.recorder import CameraRecorder, DiskWriter, recover
        from streams.snapshots import Snapshots

        svc = self.services
        rec = svc.config.recording
        recovered = await recover(svc)
        if recovered:
            log.info("finished %d segments left open by the last run", recovered)
        loop = asyncio.get_running_loop()
        if any(c.cfg.record for c in self.cameras.values()):  # no idle thread when nothing records
            self.disk = DiskWriter()
            self.disk.start()
        for cam in self.cameras.values():
            if cam.cfg.record:
                cam.recorder = CameraRecorder(cam.id, cam.fanout, svc, loop, rec.segment_s, self.disk)
                cam.recorder.start()
            cam.session.start()
        self.live = LiveRelay(self, svc)
        self.snapshots = Snapshots(self)
        self.proceedings = Proceedings(self, svc)
        self._tasks.append(asyncio.create_task(self._retention(), name="recording-retention"))

    async def _retention(self) -> None:
        from streams.recorder import apply_retention

        rec = self.services.config.recording
        days = {"*": rec.retention_days, **{c.id: c.cfg.retention_days for c in self.cameras.values() if c.cfg.retention_days}}
        while True:
            await asyncio.sleep(rec.retention_check_s)
            try:
                gone = await apply_retention(self.services, days, rec.min_free_bytes)
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


def build(services: "Services") -> "list[Component]":
    return [CameraArea(services)]
