"""The cluster as the nodes see it: nodes, what each owns, lease ages (docs/cluster.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import CoreDep, Principal, Require, SessionDep
from gateway.cluster.leases import db_now
from gateway.db.models import ClusterNode, Lease

router = APIRouter(prefix="/api/cluster", tags=["cluster"])
Reader = Annotated[Principal, Require("read")]


class LeasePublic(BaseModel):
    name: str = Field(description="kind:target, e.g. camera:cam1, trackers:3, singleton:alert-escalation")
    kind: str
    target: str
    owner: str | None = Field(description="The node that holds it; None: free (its last owner handed it back or nobody took it yet).")
    epoch: int = Field(description="Grows with every change of owner.")
    held_s: float | None = Field(description="Seconds since its owner took it.")
    renewed_s_ago: float | None
    expires_in_s: float | None = Field(description="Negative: expired, a survivor takes it over at its next round.")


class NodePublic(BaseModel):
    node_id: str
    url: str | None
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_s_ago: float
    alive: bool
    this_node: bool = Field(description="The node that answered.")
    leases: list[LeasePublic]


class ClusterPublic(BaseModel):
    node_id: str = Field(description="The node that answered.")
    lease_ttl_s: float
    nodes: list[NodePublic]
    unowned: list[LeasePublic] = Field(description="Work no live node holds right now.")


def _secs(a: datetime | None, b: datetime | None) -> float | None:
    """Seconds from a to b."""
    return round((b - a).total_seconds(), 2) if a is not None and b is not None else None


@router.get("", response_model=ClusterPublic)
async def cluster(core: CoreDep, s: SessionDep, user: Reader) -> ClusterPublic:
    c = core.cluster
    now = await db_now(s)
    ttl = c.settings.lease_ttl_s
    alive: dict[str, bool] = {}
    nodes = (await s.scalars(select(ClusterNode).order_by(ClusterNode.node_id))).all()
    for n in nodes:
        # one node on SQLite writes no heartbeats: it is alive as long as it answers
        alive[n.node_id] = (not n.stopped and n.node_id == c.node_id) if c.solo else c.store.alive(n, now)
    by_owner: dict[str, list[LeasePublic]] = {}
    unowned: list[LeasePublic] = []
    for lease in (await s.scalars(select(Lease).order_by(Lease.name))).all():
        kind, _, target = lease.name.partition(":")
        live_owner = lease.owner is not None and alive.get(lease.owner, False) and (c.solo or (lease.expires_at is not None and lease.expires_at >= now))
        p = LeasePublic(name=lease.name, kind=kind, target=target, owner=lease.owner, epoch=lease.epoch,
                        held_s=_secs(lease.acquired_at, now) if lease.owner else None,
                        renewed_s_ago=_secs(lease.renewed_at, now) if lease.owner else None,
                        expires_in_s=_secs(now, lease.expires_at) if lease.owner and lease.expires_at and not c.solo else None)
        if live_owner and lease.owner is not None:
            by_owner.setdefault(lease.owner, []).append(p)
        else:
            unowned.append(p)
    out = [NodePublic(node_id=n.node_id, url=n.url, host=n.host, pid=n.pid, started_at=n.started_at,
                      heartbeat_at=now if c.solo and n.node_id == c.node_id else n.heartbeat_at,
                      heartbeat_s_ago=0.0 if c.solo and n.node_id == c.node_id else round((now - n.heartbeat_at).total_seconds(), 2),
                      alive=alive[n.node_id], this_node=n.node_id == c.node_id, leases=by_owner.get(n.node_id, []))
           for n in nodes if alive[n.node_id] or n.node_id in by_owner or (now - n.heartbeat_at).total_seconds() < 24 * 3600]
    return ClusterPublic(node_id=c.node_id, lease_ttl_s=ttl, nodes=out, unowned=unowned)
