"""Devices as configured: one model per kind, told apart by `kind`.

Each kind's model lives with its area (cameras.py, trackers.py, kiosks.py,
uploads.py); this module joins them into the discriminated union the root uses.
"""

from typing import Annotated, Union

from pydantic import Field

from config.cameras import CameraDevice
from config.kiosks import KioskDevice
from config.trackers import TrackerDevice
from config.uploads import BodycamDevice

DeviceConfig = Annotated[
    Union[CameraDevice, TrackerDevice, KioskDevice, BodycamDevice],
    Field(discriminator="kind"),
]
DEVICE_KINDS = ("camera", "tracker", "bodycam", "kiosk")
