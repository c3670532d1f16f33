from pydantic import Field

from config.base import Section

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class DeviceBase(Section):
    id: str = Field(pattern=ID_PATTERN, description="Stable device id; trackers use it in their MQTT topics.")
    name: str | None = None
    enabled: bool = True
    unit: str | None = Field(None, max_length=64, description="The organisation unit it belongs to (units:); the root unit when absent.")
