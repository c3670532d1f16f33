"""The composition root: the one place that knows every area.

`build_gateway(config)` builds the core services (which know nothing of areas), then each
area with the few collaborators it uses, in the order they depend on each other, and
returns a `Gateway`: the core, the typed `Areas` handed to `create_app`, and the
components to start. `gateway run`, `gateway demo`, the CLI commands that need an area
and the tests all build through here, so what runs in a test is what runs in production.

Start order: core (database, bus, MQTT), the configuration's persons, devices and zones
written to the database, then the areas in list order; stop in reverse.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field

from config.schema import GatewayConfig
from drivers.bodycam import ExpirySweeper
from drivers.bodycam.pipeline import Pipeline
from drivers.bodycam.service import UploadSessions
from drivers.camera import CameraArea
from drivers.gps.driver import TrackerDriver
from drivers.gps.geo import wgs84_to_gcj02
from drivers.kiosk.session import KioskDriver
from gateway.clock import Clock
from gateway.config_sync import sync_config
from gateway.core import Component, Core
from recognition.service import Recognition
from streams.calls import Calls
from streams.sampler import FaceSampler

log = logging.getLogger(__name__)


@dataclass
class Areas:
    """The device areas of one gateway, as the web layer sees them (typed, never looked
    up by name). An area that is not running is None, and its routes answer 503."""

    trackers: TrackerDriver | None = None
    cameras: CameraArea | None = None
    recognition: Recognition | None = None
    kiosks: KioskDriver | None = None
    uploads: UploadSessions | None = None
    calls: Calls | None = None
    components: list[Component] = field(default_factory=list)  # in start order


@dataclass
class Gateway:
    core: Core
    areas: Areas

    async def start(self) -> None:
        await self.core.start()
        await sync_config(self.core.config, self.core.audit)
        for c in self.areas.components:
            log.info("starting %s", c.name)
            await c.start()
        # the work this node owns (a single node: all of it) starts here, after every area
        # offered its kind of work to the cluster
        await self.core.cluster.begin()
        # What start-up built (modules, the ORM's mappings, zone indexes, codecs) lives as
        # long as the gateway. Left to the cyclic collector, each full collection walked
        # all of it (docs/trackers.md: tens of ms with the event loop stopped, a few times
        # a minute under tracker load). Frozen, collections only walk what was made since.
        gc.freeze()

    async def stop(self) -> None:
        gc.unfreeze()  # what start-up made may be garbage once stopped (tests start many)
        await self.core.cluster.halt()  # no new work while the areas stop theirs
        for c in reversed(self.areas.components):
            try:
                await c.stop()
            except Exception:
                log.exception("stopping %s failed", c.name)
        await self.core.stop()


def build_gateway(config: GatewayConfig, clock: Clock | None = None) -> Gateway:
    core = Core.create(config, clock)
    # the console's tiles in GCJ-02: pushes carry display coordinates, by the trackers' formula
    core.push.display = wgs84_to_gcj02 if config.console.tile_datum == "gcj02" else None
    return Gateway(core, build_areas(core))


def build_recognition(core: Core) -> Recognition:
    return Recognition(settings=core.config.thresholds.faces, db=core.db, audit=core.audit, bus=core.bus, clock=core.clock,
                       metrics=core.metrics, media_dir=core.media_dir)


def build_areas(core: Core) -> Areas:
    cfg = core.config
    trackers = TrackerDriver(gps=cfg.thresholds.gps, low_battery_pct=cfg.thresholds.low_battery_pct, bus=core.bus, db=core.db,
                             alerts=core.alerts, clock=core.clock, metrics=core.metrics, mqtt=core.mqtt,
                             cluster=core.cluster)
    cameras = CameraArea(recording=cfg.recording, bus=core.bus, db=core.db, audit=core.audit, alerts=core.alerts, clock=core.clock,
                         metrics=core.metrics, media_dir=core.media_dir, cluster=core.cluster, singletons=core.singletons, monitor=core.disk)
    recognition = build_recognition(core)
    kiosks = KioskDriver(bus=core.bus, db=core.db, alerts=core.alerts, clock=core.clock, metrics=core.metrics, default_tz=cfg.gateway.timezone,
                         singletons=core.singletons, shared_heartbeats=not core.cluster.solo)
    sampler = FaceSampler(settings=cfg.thresholds.faces, bus=core.bus, db=core.db, metrics=core.metrics, recognition=recognition, cameras=cameras)
    pipeline = Pipeline(audit=core.audit, bus=core.bus, alerts=core.alerts, clock=core.clock, metrics=core.metrics, media_dir=core.media_dir)
    uploads = UploadSessions(settings=cfg.uploads, db=core.db, audit=core.audit, bus=core.bus, clock=core.clock, metrics=core.metrics,
                             media_dir=core.media_dir, on_complete=pipeline, disk=core.disk)
    calls = Calls(settings=cfg.calls, db=core.db, audit=core.audit, bus=core.bus, alerts=core.alerts, clock=core.clock, metrics=core.metrics,
                  media_dir=core.media_dir, recognition=recognition, proceedings=cameras.proceedings, node_id=core.cluster.node_id,
                  disk=core.disk)
    components: list[Component] = [trackers, cameras, recognition, kiosks, sampler, ExpirySweeper(uploads, core.singletons), calls]
    return Areas(trackers=trackers, cameras=cameras, recognition=recognition, kiosks=kiosks, uploads=uploads, calls=calls, components=components)
