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
from gateway.db.models import Device, Person, Zone, ZonePerson


async def sync_config(config: GatewayConfig, audit: Audit) -> None:
    await _persons_and_devices(config, audit)
    await _zones(config, audit)


async def _persons_and_devices(cfg: GatewayConfig, audit: Audit) -> None:
    async with audit.tx() as s:
        for p in cfg.persons:
            person = await s.get(Person, p.id)
            if person is None:
                s.add(Person(id=p.id, name=p.name, category=p.category, notes=p.notes, source="config"))
                await audit.add(s, "config", "person.created", f"person:{p.id}")
            elif (person.name, person.category, person.notes) != (p.name, p.category, p.notes):
                person.name, person.category, person.notes = p.name, p.category, p.notes
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
            if row is None:
                s.add(Device(id=d.id, kind=d.kind, name=d.name, person_id=person_id, settings=settings, enabled=d.enabled, source="config",
                             secret=secret))
                await audit.add(s, "config", "device.created", f"device:{d.id}", {"kind": d.kind})
                continue
            # A password the file (its environment) gives wins; one it does not give leaves
            # what was set through the API alone.
            if (row.kind, row.name, row.person_id, row.settings, row.enabled) != (d.kind, d.name, person_id, settings, d.enabled) or (
                    secret is not None and row.secret != secret):
                row.kind, row.name, row.person_id, row.settings, row.enabled = d.kind, d.name, person_id, settings, d.enabled
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
            fields = zone_fields(z.model_dump(mode="json"), default_tz)
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
