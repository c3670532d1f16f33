"""Devices as configured: one model per kind, told apart by `kind`.

Each kind's model lives with its area (cameras.py, trackers.py, kiosks.py,
uploads.py); this module joins them into the discriminated union the root uses,
and gives the API and the areas the same typed view of a device stored in the
database (`devices` row: columns plus a `settings` JSON object).
"""

from typing import Annotated, Any, Union

from pydantic import Field

from config.cameras import CameraDevice
from config.device_base import DeviceBase
from config.kiosks import KioskDevice
from config.trackers import TrackerDevice
from config.uploads import BodycamDevice

DeviceConfig = Annotated[
    Union[CameraDevice, TrackerDevice, KioskDevice, BodycamDevice],
    Field(discriminator="kind"),
]
DEVICE_KINDS = ("camera", "tracker", "bodycam", "kiosk")
DEVICE_MODELS: dict[str, type[DeviceBase]] = {"camera": CameraDevice, "tracker": TrackerDevice, "kiosk": KioskDevice, "bodycam": BodycamDevice}
# Fields that are columns of the devices table, not settings
COLUMNS = frozenset({"id", "kind", "name", "enabled", "person_id", "password", "unit"})


def settings_fields(kind: str) -> frozenset[str]:
    """The keys a device of this kind may have in `settings`."""
    return frozenset(DEVICE_MODELS[kind].model_fields) - COLUMNS


def stored_device(kind: str, device_id: str, name: str | None, enabled: bool, person_id: str | None, settings: dict[str, Any] | None) -> DeviceBase:
    """A stored device as its kind's typed model. Keys a device reported about itself
    (a kiosk's software version) live beside the settings and are left out here; the
    settings were validated where they entered (API, configuration). Raises
    pydantic.ValidationError when they no longer validate (an older version stored them)."""
    model = DEVICE_MODELS[kind]
    known = settings_fields(kind)
    data: dict[str, Any] = {k: v for k, v in (settings or {}).items() if k in known}
    data.update(id=device_id, kind=kind, name=name, enabled=enabled)
    if "person_id" in model.model_fields:
        data["person_id"] = person_id
    return model.model_validate(data)
