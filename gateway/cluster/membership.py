"""This node in the cluster: its heartbeat, and the work it owns.

Work comes in kinds, each offered by one area (a `Claimant`): `camera:<id>` (recording
and live relay of one camera), `trackers:<k>` (tracker partition k), `singleton:<name>`
(escalation, retention, watchdogs). Every `renew_s` the node, in one transaction, beats
its heart, renews its leases and counts the live nodes; then, per kind, it claims free
work up to its fair share (ceil(work / live nodes)) and hands back one surplus lease per
round, once held for a while (a node that joins gets its share without a stampede). A
dead node's leases expire after `lease_ttl_s`; the survivors then claim them.

A claimant is told `acquired(target, grant)` and `released(target)`; a target's calls
run one after the other, in tasks of their own, so a camera that takes seconds to stop
never delays the renewals. A lease handed back is released in the database only after
`released` returned: its next owner starts after this one stopped.

If the database cannot be reached, nothing can be renewed: once the leases are about to
expire (one renewal before `lease_ttl_s`), the node stops all its work, as the others
will take it over. A single node runs the same code and simply holds every lease.

On SQLite there is only ever one node (the database is a local file): the rounds still
offer and take work, but write nothing when nothing changed (no heartbeat, no renewal,
which would contend with the positions written on the loop) and take leases whoever held
them last (a node id changed between two runs must not leave work without an owner).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from config.schema import ClusterSettings
from gateway.clock import utcnow
from gateway.cluster.leases import Grant, LeaseStore, db_now
from gateway.db.engine import Database
from gateway.logs import Throttled
from gateway.metrics import Metrics
from gateway.nodes import NodeIdInUse

log = logging.getLogger(__name__)


class Claimant(Protocol):
    kind: str

    def wanted(self) -> Collection[str]:
        """The targets of this kind that need an owner now."""
        ...

    async def acquired(self, target: str, grant: Grant) -> None: ...

    async def released(self, target: str) -> None: ...


@dataclass
class Held:
    grant: Grant
    since: float  # monotonic
    releasing: bool = False


class Cluster:
    def __init__(self, settings: ClusterSettings, node_id: str, db: Database, metrics: Metrics, url: str | None) -> None:
        self.settings = settings
        self.node_id = node_id
        self.db = db
        self.url = url
        self.store = LeaseStore(node_id, settings.lease_ttl_s)
        self.solo = db.dialect == "sqlite"
        self.instance = secrets.token_hex(8)
        self.started_at = utcnow()
        self.claimants: dict[str, Claimant] = {}
        self.held: dict[str, Held] = {}
        self.live: list[str] = [node_id]
        self._work: dict[str, asyncio.Task[None]] = {}  # per lease: its latest acquired/released call
        self._task: asyncio.Task[None] | None = None
        self._last_renewed = time.monotonic()
        self._rounds_failed = Throttled(log)
        self._leases = metrics.gauge("gateway_cluster_leases", "Leases this node holds, by kind", ("kind",))
        self._nodes = metrics.gauge("gateway_cluster_live_nodes", "Live nodes of the cluster, as this node sees them")
        self._changes = metrics.counter("gateway_cluster_lease_changes_total", "Leases taken, handed back or lost by this node", ("kind", "change"))
        self._round_errors = metrics.counter("gateway_cluster_round_errors_total", "Lease rounds that failed (database unreachable)")

    # --- lifecycle -------------------------------------------------------------------------
    async def register(self, wait: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Join as `node_id`; NodeIdInUse if a live process already has it. A heartbeat that
        is recent but stops (that node was killed) is waited out, at most one TTL."""
        ttl = self.settings.lease_ttl_s
        async with self.db.session() as s:
            other = None if self.solo else await self.store.live_holder(s, self.instance)
        if other is not None:
            seen = other.heartbeat_at
            log.info("node %s: another process (host %s, pid %s) beat its heart %s; waiting up to %.0f s to see whether it lives",
                     self.node_id, other.host, other.pid, seen.isoformat(), ttl)
            deadline = time.monotonic() + ttl + self.settings.renew_s
            while time.monotonic() < deadline:
                await wait(self.settings.renew_s)
                async with self.db.session() as s:
                    other = await self.store.live_holder(s, self.instance)
                if other is None:
                    break
                if other.heartbeat_at > seen:
                    raise NodeIdInUse(f"gateway.node_id {self.node_id!r} is already in use by a running gateway (host {other.host}, pid {other.pid}, "
                                      f"up since {other.started_at:%Y-%m-%d %H:%M:%S} UTC) on this database; give each gateway its own node_id "
                                      f"(GATEWAY_GATEWAY__NODE_ID)")
        async with self.db.session() as s:
            await self.store.register(s, self.instance, self.url, os.getpid(), self.started_at)
            await s.commit()
        self._last_renewed = time.monotonic()

    def add(self, claimant: Claimant) -> None:
        if claimant.kind in self.claimants:
            raise ValueError(f"two claimants of kind {claimant.kind}")
        self.claimants[claimant.kind] = claimant

    async def begin(self) -> None:
        """The first round, waiting for what it acquired to start (a single node has all its
        work running when the gateway's start returns), then a round every renew_s."""
        try:
            await self.round()
        except Exception:
            log.exception("cluster: first lease round failed; retrying every %.0f s", self.settings.renew_s)
        await self.settled()
        self._task = asyncio.create_task(self._loop(), name="cluster-leases")

    async def halt(self) -> None:
        """Stop claiming (first thing on stop: no new work while the areas stop theirs)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.settled()

    async def stop(self) -> None:
        """After the areas stopped: hand every lease back at once, say we stopped."""
        await self.halt()
        try:
            async with self.db.session() as s:
                now = await db_now(s)
                for h in self.held.values():
                    await self.store.release(s, h.grant, now)
                await self.store.stopped(s, self.instance)
                await s.commit()
        except Exception:
            log.warning("cluster: leases not handed back on stop (they expire in %.0f s)", self.settings.lease_ttl_s, exc_info=True)
        self.held.clear()

    async def settled(self) -> None:
        while self._work:
            await asyncio.gather(*list(self._work.values()), return_exceptions=True)

    # --- queries ---------------------------------------------------------------------------
    def owns(self, kind: str, target: str) -> bool:
        return self.grant(kind, target) is not None

    def grant(self, kind: str, target: str) -> Grant | None:
        h = self.held.get(f"{kind}:{target}")
        return h.grant if h is not None and not h.releasing else None

    async def claim_now(self, kind: str, target: str) -> bool:
        """Take `target` at once if nobody holds it (a camera just added through this node's
        API starts here, without waiting for a round; the rounds even the load later)."""
        name = f"{kind}:{target}"
        if name in self.held:
            return not self.held[name].releasing
        async with self.db.session() as s:
            now = await db_now(s)
            free = self.solo or bool(await self.store.free_names(s, [name], now))
            g = await self.store.acquire(s, name, now, force=self.solo) if free else None
            await s.commit()
        if g is None:
            return False
        self._took(kind, target, g)
        await self.settled_one(name)
        return True

    async def owner(self, kind: str, target: str) -> tuple[str, str | None] | None:
        """(node id, URL) of the node that runs `target` now; None when no node does."""
        if self.owns(kind, target):
            return self.node_id, self.url
        if self.solo:
            return None
        async with self.db.session() as s:
            return await self.store.holder(s, f"{kind}:{target}", await db_now(s))

    async def peers(self) -> list[tuple[str, str | None]]:
        """The other live nodes: (node id, URL)."""
        if self.solo:
            return []
        async with self.db.session() as s:
            return [(n, u) for n, u in await self.store.live_nodes(s, await db_now(s)) if n != self.node_id]

    async def settled_one(self, name: str) -> None:
        t = self._work.get(name)
        if t is not None:
            await asyncio.gather(t, return_exceptions=True)

    # --- rounds ----------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_s)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._round_errors.inc()
                self._rounds_failed.log(logging.WARNING, "round", "cluster: lease round failed (%s: %s)", type(e).__name__, e)
                self._expire_if_due()

    def _expire_if_due(self) -> None:
        """Cut off from the database: stop our work before our leases expire for the others."""
        if not self.held or time.monotonic() - self._last_renewed < self.settings.lease_ttl_s - self.settings.renew_s:
            return
        log.error("cluster: leases not renewed for %.0f s: stopping the work of %d lease(s), the other nodes take it over",
                  time.monotonic() - self._last_renewed, len(self.held))
        for name in list(self.held):
            self._lost(name)

    async def round(self) -> None:
        async with self.db.session() as s:
            now = await db_now(s)
            if self.solo:  # nobody else: nothing to renew, nobody to count
                kept, live = set(self.held), [self.node_id]
            else:
                if not await self.store.heartbeat(s, self.instance, now):
                    log.error("cluster: another process registered as node %s; this one gives up its work", self.node_id)
                    await s.rollback()
                    for name in list(self.held):
                        self._lost(name)
                    raise NodeIdInUse(self.node_id)
                kept = await self.store.renew(s, {n: h.grant for n, h in self.held.items()}, now)
                live = [n for n, _ in await self.store.live_nodes(s, now)]
                await s.commit()
        self._last_renewed = time.monotonic()
        self.live = live or [self.node_id]
        self._nodes.set(len(self.live))
        for name in [n for n in self.held if n not in kept]:
            log.warning("cluster: lease %s lost (taken by another node after it expired)", name)
            self._lost(name)
        for kind, claimant in self.claimants.items():
            await self._balance(kind, claimant, now)
        for kind in self.claimants:
            self._leases.labels(kind).set(sum(1 for n in self.held if n.startswith(kind + ":")))

    async def _balance(self, kind: str, claimant: Claimant, now: datetime) -> None:
        wanted = {f"{kind}:{t}" for t in claimant.wanted()}
        mine = [n for n, h in self.held.items() if n.startswith(kind + ":") and not h.releasing]
        for name in mine:
            if name not in wanted:  # the camera was removed: its work ends here
                self._give_back(name)
        mine = [n for n in mine if n in wanted]
        share = math.ceil(len(wanted) / max(1, len(self.live)))
        if len(mine) < share:
            async with self.db.session() as s:
                free = sorted(wanted - set(self.held))
                if not self.solo:
                    free = await self.store.free_names(s, free, now)
                # each node tries the free work in its own order: fewer collisions
                free.sort(key=lambda n: zlib.crc32(f"{self.node_id}/{n}".encode()))
                for name in free[: share - len(mine)]:
                    g = await self.store.acquire(s, name, now, force=self.solo)
                    if g is not None:
                        self._took(kind, name.split(":", 1)[1], g)
                await s.commit()
        elif len(mine) > share:
            hold_s = 10 * self.settings.renew_s
            old = [n for n in mine if time.monotonic() - self.held[n].since > hold_s]
            if old:
                self._give_back(max(old, key=lambda n: zlib.crc32(f"{self.node_id}/{n}".encode())))

    # --- a lease's work --------------------------------------------------------------------
    def _chain(self, name: str, coro_fn: Callable[[], Awaitable[None]]) -> None:
        prev = self._work.get(name)

        async def run() -> None:
            if prev is not None:
                await asyncio.gather(prev, return_exceptions=True)
            try:
                await coro_fn()
            finally:
                if self._work.get(name) is task:
                    del self._work[name]

        task = asyncio.create_task(run(), name=f"lease:{name}")
        self._work[name] = task

    def _took(self, kind: str, target: str, g: Grant) -> None:
        name = g.name
        self.held[name] = Held(g, time.monotonic())
        self._changes.labels(kind, "acquired").inc()
        log.info("cluster: %s acquired (epoch %d)", name, g.epoch)
        claimant = self.claimants[kind]

        async def start() -> None:
            try:
                await claimant.acquired(target, g)
            except Exception:
                log.exception("cluster: starting the work of %s failed; handing it back", name)
                self._give_back(name)

        self._chain(name, start)

    def _lost(self, name: str) -> None:
        h = self.held.pop(name, None)
        if h is None:
            return
        kind, target = name.split(":", 1)
        self._changes.labels(kind, "lost").inc()
        claimant = self.claimants.get(kind)
        if claimant is not None:
            self._chain(name, lambda: self._call_released(claimant, target, name))

    def _give_back(self, name: str) -> None:
        h = self.held.get(name)
        if h is None or h.releasing:
            return
        h.releasing = True
        kind, target = name.split(":", 1)
        self._changes.labels(kind, "released").inc()
        log.info("cluster: handing %s back", name)
        claimant = self.claimants[kind]

        async def stop() -> None:
            await self._call_released(claimant, target, name)
            if self.held.get(name) is h:
                try:
                    async with self.db.session() as s:
                        await self.store.release(s, h.grant, await db_now(s))
                        await s.commit()
                finally:
                    self.held.pop(name, None)

        self._chain(name, stop)

    async def _call_released(self, claimant: Claimant, target: str, name: str) -> None:
        try:
            await claimant.released(target)
        except Exception:
            log.exception("cluster: stopping the work of %s failed", name)


class Singletons:
    """Claimant of the `singleton` kind: long-running jobs of which one runs in the cluster
    (alert escalation, retention, watchdogs). Each area adds its own by name."""

    kind = "singleton"

    def __init__(self) -> None:
        self.jobs: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        self.running: dict[str, asyncio.Task[None]] = {}

    def add(self, name: str, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.jobs[name] = job

    def wanted(self) -> Collection[str]:
        return list(self.jobs)

    async def acquired(self, target: str, grant: Grant) -> None:
        job = self.jobs.get(target)
        if job is not None and target not in self.running:
            self.running[target] = asyncio.create_task(job(), name=f"singleton:{target}")
            await asyncio.sleep(0)  # the job's first step runs now: what it sets up is there once the gateway started

    async def released(self, target: str) -> None:
        t = self.running.pop(target, None)
        if t is not None:
            t.cancel()
            await asyncio.gather(t, return_exceptions=True)

    async def stop(self) -> None:
        for target in list(self.running):
            await self.released(target)
