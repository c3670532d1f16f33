"""Which unit each device and person belongs to, and each unit's path, held in memory for
the console push: every event is checked against every connected user's reach, and a
database query per event and user would cost more than the event (positions come by the
thousand).

Loaded at start and kept current from the change events of every node (a device moved to
another office through any node is pushed to the right consoles from then on). Nothing
here grants access to an API route: those ask the database (gateway/api/scope.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import Device, Person, Unit
from gateway.events import DeviceChanged, Event, PersonChanged, UnitChanged
from gateway.units import ROOT, ROOT_PATH

# keys of a pushed message that name something with a unit
DEVICE_KEYS = ("device_id", "camera_id", "kiosk_id")


class UnitIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.paths: dict[str, str] = {ROOT: ROOT_PATH}
        self.devices: dict[str, str] = {}
        self.persons: dict[str, str] = {}

    async def load(self) -> None:
        async with self.db.session() as s:
            self.paths = {ROOT: ROOT_PATH, **dict((await s.execute(select(Unit.id, Unit.path))).all())}
            self.devices = dict((await s.execute(select(Device.id, Device.unit_id))).all())
            self.persons = dict((await s.execute(select(Person.id, Person.unit_id))).all())

    async def changed(self, event: Event) -> None:
        async with self.db.session() as s:
            if isinstance(event, UnitChanged):  # a move changes the paths of a whole subtree
                self.paths = {ROOT: ROOT_PATH, **dict((await s.execute(select(Unit.id, Unit.path))).all())}
            elif isinstance(event, DeviceChanged):
                self._set(self.devices, event.device_id, await s.scalar(select(Device.unit_id).where(Device.id == event.device_id)))
            elif isinstance(event, PersonChanged):
                self._set(self.persons, event.person_id, await s.scalar(select(Person.unit_id).where(Person.id == event.person_id)))

    @staticmethod
    def _set(index: dict[str, str], key: str, unit: str | None) -> None:
        if unit is None:
            index.pop(key, None)
        else:
            index[key] = unit

    def paths_of(self, message: dict[str, Any]) -> list[str]:
        """The paths of the units a pushed message concerns: an alert's own and assigned
        unit; else its devices' and person's. An event about nothing known is the root's."""
        alert = message.get("alert")
        body: dict[str, Any] = alert if isinstance(alert, dict) else message
        units: list[str] = [u for u in (body.get("unit_id"), body.get("assigned_unit_id")) if u]
        if not units:
            units += [u for k in DEVICE_KEYS if (d := body.get(k)) and (u := self.devices.get(str(d)))]
            cams = body.get("camera_ids")
            if isinstance(cams, Iterable) and not isinstance(cams, str):
                units += [u for c in cams if (u := self.devices.get(str(c)))]
            if (p := body.get("person_id")) and (u := self.persons.get(str(p))):
                units.append(u)
        return [self.paths.get(u, f"/\0{u}/") for u in units] or [ROOT_PATH]
