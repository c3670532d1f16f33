"""Tracker devices and GPS thresholds (owned by the trackers area)."""

from typing import Literal

from pydantic import Field

from config.base import Section
from config.device_base import DeviceBase


class FilterOverride(Section):
    """Per-device position filter thresholds; unset keys use thresholds.gps."""

    max_accuracy_m: float | None = Field(None, gt=0, description="Fixes less accurate than this are rejected.")
    max_speed_kmh: float | None = Field(None, gt=0, description="Implausible jumps between fixes are rejected.")
    max_future_s: float | None = Field(None, ge=0, description="Fixes this far ahead of wall time are rejected.")


class TrackerDevice(DeviceBase):
    kind: Literal["tracker"]
    person_id: str | None = None
    report_interval_s: int = Field(60, ge=1, description="Expected time between reports; lost contact after a multiple of it.")
    filter: FilterOverride | None = Field(None, description="Per-device override of the position filter thresholds.")


class GpsSettings(Section):
    max_accuracy_m: float = Field(500.0, gt=0, description="Fixes less accurate than this are rejected.")
    max_speed_kmh: float = Field(300.0, gt=0, description="Implausible jumps between fixes are rejected.")
    max_future_s: float = Field(300.0, ge=0, description="Fixes this far ahead of wall time are rejected.")
    max_age_s: float = Field(7 * 24 * 3600.0, gt=0, description="Fixes older than this (against wall time) are rejected as stale: a receiver that lost its clock reports 1970 or 2000, and a device's stored backlog older than this is history, not news.")
    lost_contact_factor: float = Field(3.0, ge=1.0, description="Lost contact after factor x report_interval_s without a report.")
    speed_reanchor: int = Field(3, ge=1, le=100, description="After this many consecutive speed rejections the filter accepts the new place (the old one was the outlier).")
    alert_update_s: float = Field(30.0, ge=0, description="An ongoing geofence alert is updated with the latest position at most this often (fix time).")
    liveness_check_s: float = Field(5.0, gt=0, le=3600, description="How often lost contact and curfew no-fix are checked (wall time).")
    ingest_worker: bool = Field(True, description="Receive and decode tracker messages in a worker process with its own MQTT connection (client id {mqtt.client_id}-trackers), so they use a core of their own; false: on the gateway's event loop.")
