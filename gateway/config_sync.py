"""Persons, devices and zones of the configuration file, written into the database at
start (by the composition root, before any area starts: areas read what they run from
the database, whichever way it got there).

Config rows are upserted with source=config; rows created through the API are left
alone. A device removed from the file is disabled, never deleted (its history stays); a
zone removed from the file is deleted (alerts keep its id).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from config.devices import COLUMNS as DEVICE_COLUMNS
from config.schema import GatewayConfig
from drivers.gps.zonestore import zone_fields
from gateway.audit import Audit
from gateway.db.models import Device, Person, Unit, Zone, ZonePerson
from gateway.units import ROOT, move_subtree, path_of


async def sync_config(config: GatewayConfig, audit: Audit) -> None:
    await sync_units(config, audit)
    await _persons_and_devices(config, audit)
    await _zones(config, audit)


async def sync_units(cfg: GatewayConfig, audit: Audit) -> None:
    """The file's units, parents first. A unit the file moved takes its subtree along; a
    unit removed from the file stays (its people and records still belong to it)."""
    if not cfg.units:
        return
    parents = {u.id: u.parent for u in cfg.units}

    def depth(uid: str) -> int:
        return 0 if uid == ROOT else 1 + depth(parents.get(uid, ROOT))

    async with audit.tx() as s:
        for u in sorted(cfg.units, key=lambda u: depth(u.id)):
            parent = await s.get(Unit, u.parent)
            assert parent is not None  # parents first; reference_problems checked they exist
            row = await s.get(Unit, u.id)
            path = path_of(parent.path, u.id)
            if row is None:
                s.add(Unit(id=u.id, name=u.name, parent_id=u.parent, path=path, source="config"))
                await audit.add(s, "config", "unit.created", f"unit:{u.id}", {"parent_id": u.parent})
            elif (row.name, row.parent_id, row.path) != (u.name, u.parent, path):
                await move_subtree(s, row, path)
                row.name, row.parent_id = u.name, u.parent
                await audit.add(s, "config", "unit.updated", f"unit:{u.id}", {"parent_id": u.parent})
            await s.flush()


async def _persons_and_devices(cfg: GatewayConfig, audit: Audit) -> None:
    async with audit.tx() as s:
        for p in cfg.persons:
            person = await s.get(Person, p.id)
            unit = p.unit or ROOT
            if person is None:
                s.add(Person(id=p.id, name=p.name, category=p.category, notes=p.notes, source="config", unit_id=unit))
                await audit.add(s, "config", "person.created", f"person:{p.id}")
            elif (person.name, person.category, person.notes, person.unit_id) != (p.name, p.category, p.notes, unit):
                person.name, person.category, person.notes, person.unit_id = p.name, p.category, p.notes, unit
                await audit.add(s, "config", "person.updated", f"person:{p.id}")
        await s.flush()
        seen = set()
        for d in cfg.devices:
            seen.add(d.id)
            settings = d.model_dump(mode="json", exclude=set(DEVICE_COLUMNS))
            person_id = getattr(d, "person_id", None)
            password = getattr(d, "password", None)
            secret = password.get_secret_value() if password is not None else None
            row = await s.get(Device, d.id)
            unit = d.unit or ROOT
            if row is None:
                s.add(Device(id=d.id, kind=d.kind, name=d.name, person_id=person_id, settings=settings, enabled=d.enabled, source="config",
                             secret=secret, unit_id=unit))
                await audit.add(s, "config", "device.created", f"device:{d.id}", {"kind": d.kind})
                continue
            # A password the file (its environment) gives wins; one it does not give leaves
            # what was set through the API alone.
            if (row.kind, row.name, row.person_id, row.settings, row.enabled, row.unit_id) != (d.kind, d.name, person_id, settings, d.enabled, unit) or (
                    secret is not None and row.secret != secret):
                row.kind, row.name, row.person_id, row.settings, row.enabled, row.unit_id = d.kind, d.name, person_id, settings, d.enabled, unit
                if secret is not None:
                    row.secret = secret
                await audit.add(s, "config", "device.updated", f"device:{d.id}")
        stale = (await s.scalars(select(Device).where(Device.source == "config", Device.enabled.is_(True)))).all()
        for gone in stale:
            if gone.id not in seen:
                gone.enabled = False
                await audit.add(s, "config", "device.disabled", f"device:{gone.id}", {"reason": "removed from configuration"})


async def _zones(cfg: GatewayConfig, audit: Audit) -> None:
    zones = cfg.zones
    default_tz = cfg.gateway.timezone
    async with audit.tx() as s:
        wanted = {z.id for z in zones}
        stale = (await s.scalars(select(Zone.id).where(Zone.source == "config"))).all()
        for zid in stale:
            if zid not in wanted:
                await s.execute(delete(ZonePerson).where(ZonePerson.zone_id == zid))
                await s.execute(delete(Zone).where(Zone.id == zid))
                await audit.add(s, "config", "zone.deleted", f"zone:{zid}")
        for z in zones:
            fields = {**zone_fields(z.model_dump(mode="json"), default_tz), "unit_id": z.unit or ROOT}
            row = await s.get(Zone, z.id)
            if row is None:
                row = Zone(id=z.id, source="config", persons=[ZonePerson(zone_id=z.id, person_id=p) for p in z.person_ids], **fields)
                s.add(row)
                await s.flush()
                await audit.add(s, "config", "zone.created", f"zone:{z.id}")
            else:
                changed = any(getattr(row, k) != v for k, v in fields.items()) or {p.person_id for p in row.persons} != set(z.person_ids)
                if not changed:
                    continue
                for k, v in fields.items():
                    setattr(row, k, v)
                row.source = "config"
                row.persons = [ZonePerson(zone_id=z.id, person_id=p) for p in z.person_ids]
                await audit.add(s, "config", "zone.updated", f"zone:{z.id}")
