"""Hash-chained audit log.

Every state change and every login appends an entry whose hash covers its
contents and the previous entry's hash; `audit_head` holds the newest id and
hash. `verify` recomputes the chain, so an edited row, a deleted row and a
truncated tail are all detected. State changes are written in the same
transaction as their audit entry (`Audit.tx()`), so neither exists without
the other.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.clock import Clock
from gateway.db.engine import Database, InlineBusy
from gateway.db.models import AuditEntry, AuditHead

GENESIS = "0" * 64
_PG_LOCK_ID = 727_001
T = TypeVar("T")


def entry_hash(id_: int, at: datetime, actor: str, action: str, target: str | None, details: dict[str, Any], prev_hash: str) -> str:
    body = json.dumps(
        {"id": id_, "at": at.isoformat(), "actor": actor, "action": action, "target": target, "details": details, "prev": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class Audit:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # SQLite has one writer anyway; the lock keeps our appends in order
        # instead of failing on lock upgrades. PostgreSQL uses an advisory lock.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncSession]:
        """A transaction for a state change and its audit entries; commits on exit."""
        async with self._lock:
            async with self.db.session() as s:
                async with s.begin():
                    if self.db.dialect == "postgresql":
                        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
                    yield s

    async def tx_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(session, *args)` in one audited transaction, `fn` written against a plain
        (synchronous) Session: on SQLite it runs inline on the loop (`Database.inline_tx`)
        when nothing else holds the write lock, else (and on PostgreSQL) inside `tx()`."""
        # No await between this check and the commit: no other append can start meanwhile.
        if self.db.has_inline and not self._lock.locked():
            try:
                with self.db.inline_tx() as s:
                    return fn(s, *args)
            except InlineBusy:
                pass  # another connection is writing: wait for it on the async path
        async with self.tx() as s:
            return await s.run_sync(fn, *args)

    async def add(self, s: AsyncSession, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None) -> AuditEntry:
        """Append inside `tx()`; see `append`."""
        return await s.run_sync(self.append, actor, action, target, details)

    def append(self, s: Session, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None) -> AuditEntry:
        """Append inside `tx()` or `tx_sync`. Nothing is sent to the database until the
        transaction flushes: the entry's id follows the head's (appends are serialised), so
        a batch of changes audits with one INSERT instead of one round trip each."""
        head = s.get(AuditHead, 1)  # from the session's identity map after the first
        if head is not None:
            last_id, prev_hash = head.last_id, head.last_hash
        else:
            # a new log, or a head row someone deleted: number after what is there, so
            # auditing (and with it every state change) goes on; `verify` reports the break
            last_id, prev_hash = s.scalar(select(func.max(AuditEntry.id))) or 0, GENESIS
        details = _jsonable(details or {})
        at = self.clock.now()
        entry = AuditEntry(id=last_id + 1, at=at, actor=actor, action=action, target=target, details=details,
                           prev_hash=prev_hash, hash="")
        # Round-trip the time through the column type so verify sees what we hashed.
        entry.hash = entry_hash(entry.id, _stored_time(at), actor, action, target, details, prev_hash)
        s.add(entry)
        if head is None:
            s.add(AuditHead(id=1, last_id=entry.id, last_hash=entry.hash))
        else:
            head.last_id, head.last_hash = entry.id, entry.hash
        return entry

    async def log(self, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None) -> None:
        async with self.tx() as s:
            await self.add(s, actor, action, target, details)

    async def verify(self) -> list[str]:
        """Problems found in the chain; empty when intact."""
        problems: list[str] = []
        prev_hash, prev_id = GENESIS, 0
        async with self.db.session() as s:
            rows = await s.stream_scalars(select(AuditEntry).order_by(AuditEntry.id))
            async for e in rows:
                if e.prev_hash != prev_hash:
                    gap = f" (entries {prev_id + 1}..{e.id - 1} missing)" if e.id != prev_id + 1 else ""
                    problems.append(f"entry {e.id}: does not follow entry {prev_id}: an entry before it was deleted or changed{gap}")
                if entry_hash(e.id, e.at, e.actor, e.action, e.target, e.details, e.prev_hash) != e.hash:
                    problems.append(f"entry {e.id}: contents do not match their hash: edited")
                prev_hash, prev_id = e.hash, e.id
            head = await s.get(AuditHead, 1)
        if head is not None and (head.last_id != prev_id or head.last_hash != prev_hash):
            problems.append(f"log ends at entry {prev_id} but the head records entry {head.last_id}: newest entries deleted or changed")
        if head is None and prev_id != 0:
            problems.append("audit head missing")
        return problems


def _stored_time(at: datetime) -> datetime:
    # SQLite keeps microseconds; PostgreSQL too. Normalise to UTC as the column does.
    from datetime import UTC

    return at.astimezone(UTC)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=str))
