"""Where the device areas plug in: one line per area, explicit on purpose, so
the path of an event from wire to console can be read top to bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.services import Component, Services


def build_components(services: "Services") -> "list[Component]":
    from drivers.bodycam import build as bodycam
    from drivers.camera import build as cameras
    from drivers.gps import build as trackers
    from drivers.kiosk import build as kiosks

    components: list[Component] = []
    for build in (trackers, cameras, kiosks, bodycam):
        components.extend(build(services))
    return components
