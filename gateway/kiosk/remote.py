"""Remote check-in from a phone, by a one-time link an officer sends the person.

The link is `/remote#<token>`: the token (256 bits from `secrets`) is in the URL's fragment,
which browsers never send, so it reaches no server or proxy log; the phone's page sends it in
the `X-Checkin-Token` header. Stored only hashed (SHA-256), valid a few minutes, used once.

A check-in through a link is a kiosk check-in in all but the terminal: the same challenge
(`Recognition.issue_challenge`, for the "kiosk" `remote:<link id>`), the same 1:1 verification
with passive and active liveness (`Recognition.verify`), the same `checkins` row and `checkin`
event (so a rejected face raises `checkin_failed` as at a kiosk). The phone's position is
judged against the person's zones by the geofence's own rules (drivers/gps/rules.py
`judge_position`: accuracy-aware, with each zone's buffer and schedule) and stored with the
check-in; a breach raises `checkin_out_of_zone`.

A decision (accepted, rejected) uses the link up; a `retry` (frames not good enough) or bad
input does not, but every submission counts against MAX_ATTEMPTS. A submission being decided
holds the link (`busy_since`), so two phones with the same link cannot both check in. Every
request with a token counts against the client address's login budget, as pairing codes do.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import or_, select, update

from drivers.gps.geofence import ZoneIndex
from drivers.gps.rules import judge_position
from drivers.gps.zonestore import load_zones
from gateway.alerts.service import DEFAULT_LEVELS, LEVELS
from gateway.auth.tokens import hash_device_key
from gateway.core import Core
from gateway.db.models import CheckinLink, Person

HEADER = "X-Checkin-Token"
DEFAULT_MINUTES = 15
MAX_MINUTES = 120
MAX_ATTEMPTS = 5
BUSY_STALE_S = 120  # a check whose process died gives the link back after this
MAX_ACCURACY_M = 500.0  # a coarser position (cell towers, IP) cannot say where the person is
MAX_POSITION_AGE_S = 600  # a position taken longer ago than this (or in the future) is not now's
ALERT_KIND = "checkin_out_of_zone"

REFUSALS = {
    "unknown": (404, "unknown link: ask your officer for a new check-in link"),
    "used": (409, "this check-in link was used already: ask your officer for a new one"),
    "exhausted": (409, "no attempts left on this check-in link: ask your officer for a new one"),
    "expired": (410, "this check-in link expired: ask your officer for a new one"),
    "revoked": (410, "this check-in link was withdrawn by your officer"),
}


def state_of(link: CheckinLink, now: datetime) -> str:
    """unused | used | revoked | expired | exhausted (every attempt spent without a decision)."""
    if link.used_at is not None:
        return "used"
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    if link.attempts >= MAX_ATTEMPTS:
        return "exhausted"
    return "unused"


def source_of(link_id: int) -> str:
    """The check-in's `kiosk_id` (its source) and the challenge's device."""
    return f"remote:{link_id}"


def public(link: CheckinLink, now: datetime) -> dict[str, Any]:
    return {"id": link.id, "person_id": link.person_id, "note": link.note, "created_by": link.created_by, "created_at": link.created_at,
            "expires_at": link.expires_at, "state": state_of(link, now), "attempts": link.attempts, "max_attempts": MAX_ATTEMPTS,
            "used_at": link.used_at, "result": link.result, "checkin_id": link.checkin_id, "revoked_at": link.revoked_at, "revoked_by": link.revoked_by}


# -- the officer's side ------------------------------------------------------
async def create(core: Core, person: Person, actor: str, minutes: int, note: str | None) -> tuple[CheckinLink, str]:
    """A new link for the person: (the row, the token). The token is returned once, never stored."""
    token = secrets.token_urlsafe(32)
    now = core.clock.now()
    async with core.audit.tx() as s:
        link = CheckinLink(token_hash=hash_device_key(token), person_id=person.id, unit_id=person.unit_id, note=note, created_by=actor,
                           created_at=now, expires_at=now + timedelta(minutes=minutes), attempts=0)
        s.add(link)
        await s.flush()
        await core.audit.add(s, actor, "checkin_link.created", f"person:{person.id}",
                             {"link_id": link.id, "expires_at": link.expires_at.isoformat(), "minutes": minutes, "note": note})
    return link, token


async def revoke(core: Core, person_id: str, link_id: int, actor: str) -> CheckinLink:
    now = core.clock.now()
    async with core.audit.tx() as s:
        link = await s.get(CheckinLink, link_id)
        if link is None or link.person_id != person_id:
            raise HTTPException(404, f"no check-in link {link_id} for person {person_id}")
        state = state_of(link, now)
        if state == "used":
            raise HTTPException(409, f"check-in link {link_id} was used already (check-in {link.checkin_id})")
        if state != "revoked":
            link.revoked_at, link.revoked_by = now, actor
            await core.audit.add(s, actor, "checkin_link.revoked", f"person:{person_id}", {"link_id": link_id, "was": state})
    return link


# -- the phone's side --------------------------------------------------------
async def open_link(core: Core, token: str | None, client: str) -> CheckinLink:
    """The link the token names, when it can still be used; a refusal (404/409/410) otherwise,
    audited. Every call counts against the address's login budget (429 when spent)."""
    limiter, key = core.login_limiter, f"addr:{client}"
    if not limiter.hit(key):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many attempts; wait and try again", headers={"Retry-After": str(limiter.retry_after(key))})
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"a check-in link's token is required ({HEADER})")
    async with core.db.session() as s:
        link = (await s.scalars(select(CheckinLink).where(CheckinLink.token_hash == hash_device_key(token.strip())))).first()
    state = "unknown" if link is None else state_of(link, core.clock.now())
    if link is None or state != "unused":
        await refuse(core, client, link, state)
    assert link is not None
    return link


async def refuse(core: Core, client: str, link: CheckinLink | None, state: str) -> None:
    await core.audit.log(f"addr:{client}", "checkin_link.refused", f"person:{link.person_id}" if link else None,
                         {"reason": state, "link_id": link.id if link else None})
    code, message = REFUSALS[state]
    raise HTTPException(code, message)


async def claim(core: Core, link: CheckinLink, client: str) -> None:
    """Take the link for one submission: counts an attempt and holds it while the check is
    made. One conditional UPDATE, so two submissions (on any node) cannot both hold it."""
    now = core.clock.now()
    stale = now - timedelta(seconds=BUSY_STALE_S)
    async with core.db.session() as s:
        done = await s.execute(update(CheckinLink).where(
            CheckinLink.id == link.id, CheckinLink.used_at.is_(None), CheckinLink.revoked_at.is_(None), CheckinLink.expires_at > now,
            CheckinLink.attempts < MAX_ATTEMPTS, or_(CheckinLink.busy_since.is_(None), CheckinLink.busy_since < stale),
        ).values(attempts=CheckinLink.attempts + 1, busy_since=now))
        await s.commit()
        if getattr(done, "rowcount", 1) == 1:
            return
        fresh = await s.get(CheckinLink, link.id, populate_existing=True)
    assert fresh is not None
    state = state_of(fresh, now)
    if state == "unused":  # held by a submission being decided now
        raise HTTPException(409, "a check-in with this link is being decided now; try again in a moment", headers={"Retry-After": "2"})
    await refuse(core, client, fresh, state)


async def settle(core: Core, link_id: int, result: str | None, checkin_id: int | None) -> None:
    """Give the link back after a submission: used up by a decision (accepted, rejected), free
    for another attempt after a retry or a refused input (result None)."""
    final = result in ("accepted", "rejected")
    values: dict[str, Any] = {"busy_since": None}
    if final:
        values.update(used_at=core.clock.now(), result=result, checkin_id=checkin_id)
    elif result is not None:
        values.update(result=result, checkin_id=checkin_id)
    async with core.db.session() as s:
        await s.execute(update(CheckinLink).where(CheckinLink.id == link_id).values(**values))
        await s.commit()


async def person_name(core: Core, person_id: str) -> str | None:
    async with core.db.session() as s:
        return await s.scalar(select(Person.name).where(Person.id == person_id))


# -- where the phone was -----------------------------------------------------
async def judge(core: Core, person_id: str, lat: float, lon: float, accuracy_m: float, taken_at: datetime) -> dict[str, Any]:
    """The position against the person's zones in force now, as stored with the check-in:
    `verdict` ok (on the right side of every zone), breach (beyond a zone's border by more than
    accuracy and buffer), uncertain (near a border within accuracy and buffer, too coarse, or
    not recent) or no_zones; `zones` each zone's judgement."""
    now = core.clock.now()
    async with core.db.session() as s:
        specs = [z for z in await load_zones(s) if not z.person_ids or person_id in z.person_ids]
    checks = judge_position(ZoneIndex(specs), person_id, lat, lon, accuracy_m, now)
    zones = [asdict(c) for c in checks]
    age_s = (now - taken_at).total_seconds()
    notes = []
    if accuracy_m > MAX_ACCURACY_M:
        notes.append(f"accuracy {accuracy_m:.0f} m is coarser than {MAX_ACCURACY_M:.0f} m")
    if not -60 <= age_s <= MAX_POSITION_AGE_S:
        notes.append(f"the position was taken {age_s:.0f} s before the check-in")
    if any(c.state == "breach" for c in checks):
        verdict = "breach"
    elif not checks:
        verdict = "no_zones"
    elif notes or any(c.state == "border" for c in checks):
        verdict = "uncertain"
    else:
        verdict = "ok"
    return {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "taken_at": taken_at.isoformat(), "verdict": verdict, "zones": zones, "notes": notes}


def alert_level(position: dict[str, Any]) -> str:
    """The most severe level the geofence would give the breached zones."""
    levels = [z["level"] or DEFAULT_LEVELS.get(z["alert_kind"], DEFAULT_LEVELS[ALERT_KIND]) for z in position["zones"] if z["state"] == "breach"]
    return max(levels or [DEFAULT_LEVELS[ALERT_KIND]], key=LEVELS.index)


async def raise_breach(core: Core, link: CheckinLink, checkin_id: int, position: dict[str, Any]) -> None:
    breached = [z for z in position["zones"] if z["state"] == "breach"]
    names = ", ".join(z["name"] or z["zone_id"] for z in breached)
    await core.alerts.raise_alert(
        ALERT_KIND, person_id=link.person_id, device_id=source_of(link.id), zone_id=breached[0]["zone_id"], level=alert_level(position),
        key=f"{ALERT_KIND}:{checkin_id}", lat=position["lat"], lon=position["lon"],
        message=f"remote check-in {checkin_id} of {link.person_id} made outside the allowed area: {names} (accuracy {position['accuracy_m']:.0f} m)",
        details={"checkin_id": checkin_id, "link_id": link.id, "zones": breached, "accuracy_m": position["accuracy_m"], "taken_at": position["taken_at"]},
    )

