"""Leases in the database: which node owns which piece of work, until when.

Every statement names its owner and checks expiry against one `now` read from the
database in the same transaction (PostgreSQL's `now()`), so the nodes' own clocks never
decide who owns what. SQLite (one node) uses this process's clock.

A lease is taken only when it is free (no row, no owner, or expired) and renewed only by
its owner; `epoch` grows with every new owner, and `fence` checks it inside a writer's
own transaction, so a node that lost a lease (paused past its expiry, cut off from the
database) cannot write as its owner any more.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import utcnow
from gateway.db.models import ClusterNode, Lease


@dataclass(frozen=True)
class Grant:
    """A lease this node holds: `epoch` fences its writes; `progress` is where the previous
    owner had got to (None: nobody recorded any)."""

    name: str
    epoch: int
    progress: datetime | None


async def db_now(s: AsyncSession) -> datetime:
    """The database's time (PostgreSQL: the transaction's); this process's on SQLite."""
    if _dialect(s) == "postgresql":
        now = (await s.execute(select(func.now()))).scalar_one()
        assert isinstance(now, datetime)
        return now
    return utcnow()


def _dialect(s: AsyncSession) -> str:
    return s.get_bind().dialect.name


def _insert(s: AsyncSession):  # type: ignore[no-untyped-def]
    return pg_insert if _dialect(s) == "postgresql" else sqlite_insert


class LeaseStore:
    def __init__(self, node_id: str, ttl_s: float) -> None:
        self.node_id = node_id
        self.ttl = timedelta(seconds=ttl_s)

    # --- nodes ---------------------------------------------------------------------------
    async def live_holder(self, s: AsyncSession, instance: str) -> ClusterNode | None:
        """Another process registered under our node id that beat its heart within the TTL."""
        now = await db_now(s)
        row = await s.get(ClusterNode, self.node_id, populate_existing=True)
        if row is None or row.instance == instance or not self.alive(row, now):
            return None
        return row

    def alive(self, node: ClusterNode, now: datetime) -> bool:
        """Not stopped, and its heart beat within the TTL."""
        return not node.stopped and node.heartbeat_at >= now - self.ttl

    async def register(self, s: AsyncSession, instance: str, url: str | None, pid: int, started_at: datetime) -> None:
        now = await db_now(s)
        values = {"instance": instance, "url": url, "host": socket.gethostname(), "pid": pid, "started_at": started_at,
                  "heartbeat_at": now, "stopped": False}
        stmt = _insert(s)(ClusterNode).values(node_id=self.node_id, **values)
        await s.execute(stmt.on_conflict_do_update(index_elements=[ClusterNode.node_id], set_=values))

    async def heartbeat(self, s: AsyncSession, instance: str, now: datetime) -> bool:
        """False when another process has registered under our node id since."""
        r = await s.execute(update(ClusterNode).where(ClusterNode.node_id == self.node_id, ClusterNode.instance == instance)
                            .values(heartbeat_at=now, stopped=False))
        return bool(r.rowcount)  # type: ignore[attr-defined]

    async def live_nodes(self, s: AsyncSession, now: datetime) -> list[tuple[str, str | None]]:
        """The live nodes (the same test as `alive`, in SQL), by id: (node id, URL)."""
        q = (select(ClusterNode.node_id, ClusterNode.url).where(ClusterNode.stopped.is_(False), ClusterNode.heartbeat_at >= now - self.ttl)
             .order_by(ClusterNode.node_id))
        return [(n, u) for n, u in (await s.execute(q)).all()]

    async def stopped(self, s: AsyncSession, instance: str) -> None:
        await s.execute(update(ClusterNode).where(ClusterNode.node_id == self.node_id, ClusterNode.instance == instance)
                        .values(stopped=True))

    # --- leases --------------------------------------------------------------------------
    async def acquire(self, s: AsyncSession, name: str, now: datetime, force: bool = False) -> Grant | None:
        """Take `name` if it is free or expired (or ours already); with `force`, whoever
        held it (a single node on SQLite)."""
        await s.execute(_insert(s)(Lease).values(name=name, owner=None, epoch=0).on_conflict_do_nothing(index_elements=[Lease.name]))
        q = update(Lease).where(Lease.name == name)
        if not force:
            q = q.where((Lease.owner.is_(None)) | (Lease.expires_at < now) | (Lease.owner == self.node_id))
        r = await s.execute(q
                            .values(owner=self.node_id, epoch=Lease.epoch + 1, acquired_at=now, renewed_at=now, expires_at=now + self.ttl)
                            .returning(Lease.epoch, Lease.progress))
        row = r.first()
        return Grant(name, int(row[0]), row[1]) if row is not None else None

    async def renew(self, s: AsyncSession, grants: dict[str, Grant], now: datetime) -> set[str]:
        """Renew what we hold; the names still ours (the rest was lost)."""
        if not grants:
            return set()
        r = await s.execute(update(Lease).where(Lease.name.in_(list(grants)), Lease.owner == self.node_id)
                            .values(renewed_at=now, expires_at=now + self.ttl).returning(Lease.name, Lease.epoch))
        return {name for name, epoch in r.all() if grants[name].epoch == epoch}

    async def release(self, s: AsyncSession, grant: Grant, now: datetime) -> None:
        await s.execute(update(Lease).where(Lease.name == grant.name, Lease.owner == self.node_id, Lease.epoch == grant.epoch)
                        .values(owner=None, expires_at=now))

    async def free_names(self, s: AsyncSession, names: list[str], now: datetime) -> list[str]:
        """Of `names`, those nobody holds (no row, no owner, or expired)."""
        held = set((await s.scalars(select(Lease.name).where(Lease.name.in_(names), Lease.owner.is_not(None), Lease.expires_at >= now))).all())
        return [n for n in names if n not in held]

    async def holder(self, s: AsyncSession, name: str, now: datetime) -> tuple[str, str | None] | None:
        """The live owner of `name` and its URL; None when nobody holds it."""
        q = (select(Lease.owner, ClusterNode.url).join(ClusterNode, ClusterNode.node_id == Lease.owner)
             .where(Lease.name == name, Lease.expires_at >= now))
        row = (await s.execute(q)).first()
        return (str(row[0]), row[1]) if row is not None else None

    async def fence(self, s: AsyncSession, grants: list[Grant], progress: datetime | None) -> set[str]:
        """Inside a writer's transaction: the names of `grants` still ours at their epoch
        (their progress advanced); a write for the others must not happen."""
        if not grants:
            return set()
        values = {"progress": progress} if progress is not None else {"renewed_at": Lease.renewed_at}
        r = await s.execute(update(Lease).where(Lease.name.in_([g.name for g in grants]), Lease.owner == self.node_id)
                            .values(**values).returning(Lease.name, Lease.epoch))
        epochs = {g.name: g.epoch for g in grants}
        return {name for name, epoch in r.all() if epochs[name] == epoch}
