"""Trackers: GPS devices over MQTT (NMEA 0183 and OwnTracks), the position
filter, geofences, curfews, liveness and status alerts. See docs/trackers.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.services import Component, Services


def build(services: "Services") -> "list[Component]":
    from drivers.gps.driver import TrackerDriver

    return [TrackerDriver(services)]
