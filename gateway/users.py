"""Offline operations the CLI performs on the database (no server running)."""

from __future__ import annotations

from sqlalchemy import func, select

from config.schema import GatewayConfig
from gateway.audit import Audit
from gateway.auth.passwords import hash_password, verify_password
from gateway.auth.tokens import hash_device_key, new_device_key
from gateway.clock import Clock
from gateway.db.engine import Database, upgrade
from gateway.db.models import AuditEntry, Device, Unit, User
from gateway.evidence import verify_all


async def _open(cfg: GatewayConfig) -> tuple[Database, Audit]:
    import asyncio

    await asyncio.to_thread(upgrade, cfg.database_url)
    db = Database(cfg.database_url)
    return db, Audit(db, Clock())


async def add_user(cfg: GatewayConfig, name: str, role: str, password: str, actor: str, unit: str = "root") -> None:
    from gateway.config_sync import sync_units

    db, audit = await _open(cfg)
    try:
        await sync_units(cfg, audit)  # the file's units, before the gateway first ran
        async with audit.tx() as s:
            if (await s.scalars(select(User).where(User.username == name))).first():
                raise ValueError(f"user {name} already exists")
            if await s.get(Unit, unit) is None:
                raise ValueError(f"no unit {unit} (units come from the configuration's units: or POST /api/units)")
            s.add(User(username=name, password_hash=hash_password(password), role=role, unit_id=unit))
            await audit.add(s, actor, "user.created", f"user:{name}", {"role": role, "unit_id": unit})
    finally:
        await db.close()


async def set_password(cfg: GatewayConfig, name: str, password: str, actor: str) -> None:
    """A new password for an existing user (their tokens are revoked with it)."""
    db, audit = await _open(cfg)
    try:
        async with audit.tx() as s:
            user = (await s.scalars(select(User).where(User.username == name))).first()
            if user is None:
                raise ValueError(f"no user {name}")
            if user.password_hash and verify_password(user.password_hash, password):
                return
            user.password_hash = hash_password(password)
            user.token_version += 1
            await audit.add(s, actor, "user.updated", f"user:{name}", {"password": "changed"})
    finally:
        await db.close()


async def issue_device_key(cfg: GatewayConfig, device_id: str, actor: str) -> str:
    db, audit = await _open(cfg)
    key = new_device_key()
    try:
        async with audit.tx() as s:
            d = await s.get(Device, device_id)
            if d is None:
                raise ValueError(f"no device {device_id} (start the gateway once so configured devices are registered)")
            if d.kind not in ("kiosk", "bodycam"):
                raise ValueError(f"{d.kind} devices do not use keys")
            d.key_hash = hash_device_key(key)
            await audit.add(s, actor, "device.key_issued", f"device:{device_id}")
    finally:
        await db.close()
    return key


async def verify_audit(cfg: GatewayConfig) -> tuple[int, list[str]]:
    db, audit = await _open(cfg)
    try:
        problems = await audit.verify()
        async with db.session() as s:
            count = await s.scalar(select(func.count()).select_from(AuditEntry))
        return int(count or 0), problems
    finally:
        await db.close()


async def verify_evidence(cfg: GatewayConfig) -> tuple[int, list[str]]:
    db, _ = await _open(cfg)
    try:
        return await verify_all(db, cfg.media_dir)
    finally:
        await db.close()
