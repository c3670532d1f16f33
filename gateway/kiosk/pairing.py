"""A kiosk terminal trades a one-time pairing code (shown in the console, typed on the
terminal) for its device key.

The code is eight digits, stored hashed, valid `auth.pairing_code_ttl_s`, used once (claimed
by one UPDATE, so two terminals typing it at once cannot both win). Attempts count against
the client address's login budget: guessing codes is guessing passwords."""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import update

from gateway.auth.tokens import hash_device_key, new_device_key
from gateway.core import Core
from gateway.db.models import Device, PairingCode


async def redeem(core: Core, typed: str, client: str) -> dict[str, Any]:
    limiter, key = core.login_limiter, f"addr:{client}"
    if not limiter.hit(key):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many attempts; wait and try again", headers={"Retry-After": str(limiter.retry_after(key))})
    code = re.sub(r"[\s-]", "", typed)
    if not re.fullmatch(r"\d{8}", code):
        raise HTTPException(422, "a pairing code is eight digits")
    now = core.clock.now()
    digest = hash_device_key(code)
    async with core.db.session() as s:
        row = await s.get(PairingCode, digest)
    refusal = (
        (404, "unknown code", "unknown pairing code: check the digits, or ask for a new code in the console") if row is None
        else (409, "used", "this pairing code was used already: ask for a new code in the console") if row.used_at is not None
        else (410, "expired", "this pairing code expired: ask for a new code in the console") if row.expires_at <= now
        else None
    )
    if refusal is None:
        assert row is not None
        async with core.audit.tx() as s:
            claimed = await s.execute(update(PairingCode).where(PairingCode.code_hash == digest, PairingCode.used_at.is_(None)).values(used_at=now))
            won = claimed.rowcount == 1  # type: ignore[attr-defined]
            device = await s.get(Device, row.device_id)
            if won and device is not None and device.kind == "kiosk" and device.enabled:
                key = new_device_key()
                device.key_hash = hash_device_key(key)
                await core.audit.add(s, f"kiosk:{device.id}", "device.paired", f"device:{device.id}", {"client": client, "code_of": row.created_by})
                return {"device_id": device.id, "name": device.name, "location": (device.settings or {}).get("location"), "key": key}
        refusal = (409, "used", "this pairing code was used already: ask for a new code in the console") if not won \
            else (409, "disabled", f"kiosk {row.device_id} is not an enabled kiosk any more")
    await core.audit.log(f"addr:{client}", "kiosk.pairing_refused", f"device:{row.device_id}" if row else None, {"reason": refusal[1]})
    raise HTTPException(refusal[0], refusal[2])
