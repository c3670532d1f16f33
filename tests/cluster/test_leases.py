"""Leases, node ids and the event relay on the real peers (PostgreSQL, Mosquitto)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from config.schema import ClusterSettings, MqttSettings
from gateway.bus import EventBus
from gateway.cluster.leases import Grant, db_now
from gateway.cluster.membership import Cluster
from gateway.cluster.relay import EventCodec, EventRelay
from gateway.db.engine import Database
from gateway.events import AlertChanged, DeviceChanged, Event, Position, ZoneChanged
from gateway.metrics import Metrics
from gateway.mqtt import MqttLink
from gateway.nodes import NodeIdInUse
from tests.waiting import wait_for

FAST = ClusterSettings(lease_ttl_s=2, renew_s=0.5)


class Work:
    """A claimant that records what it was given and taken."""

    kind = "camera"

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.running: set[str] = set()
        self.grants: dict[str, Grant] = {}

    def wanted(self) -> list[str]:
        return self.targets

    async def acquired(self, target: str, grant: Grant) -> None:
        self.running.add(target)
        self.grants[target] = grant

    async def released(self, target: str) -> None:
        self.running.discard(target)


async def node(db: Database, node_id: str, work: Work, settings: ClusterSettings = FAST) -> Cluster:
    c = Cluster(settings, node_id, db, Metrics(), f"http://{node_id}.invalid")
    await c.register()
    c.add(work)
    await c.begin()
    return c


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database of its own, closed after the test."""
    database = Database(pg_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()


async def test_work_is_shared_and_a_dead_nodes_work_taken_over(db: Database) -> None:
    wa, wb = Work([f"cam{i}" for i in range(6)]), Work([f"cam{i}" for i in range(6)])
    a = await node(db, "a", wa)
    assert wa.running == set(wa.targets)  # alone, it runs everything from its first round
    b = await node(db, "b", wb)
    # b joins: a hands back its surplus, one lease per round, until each runs half
    await wait_for(lambda: len(wa.running) == 3 and len(wb.running) == 3, 60, lambda: f"a {wa.running}, b {wb.running}")
    assert not (wa.running & wb.running), "never two owners"
    # a dies (stops renewing, hands nothing back): b takes everything after the TTL
    assert a._task is not None
    a._task.cancel()
    await wait_for(lambda: wb.running == set(wb.targets), 30, lambda: f"b {wb.running}")
    taken = next(t for t in wb.running if t in wa.running)
    assert wb.grants[taken].epoch >= 2  # a new owner, a new epoch
    await b.halt()


async def test_a_node_that_lost_its_lease_is_fenced(db: Database) -> None:
    wa, wb = Work(["cam1"]), Work(["cam1"])
    a = await node(db, "a", wa)
    old = a.grant("camera", "cam1")
    assert old is not None
    async with db.session() as s:
        assert await a.store.fence(s, [old], datetime.now(UTC)) == {"camera:cam1"}
        await s.commit()
    await a.halt()  # a pauses (no renewals) past its expiry
    b = await node(db, "b", wb)
    await wait_for(lambda: "cam1" in wb.running, 30, "b taking the expired lease")
    async with db.session() as s:
        # a wakes up and tries to write as the owner: refused, at the epoch it had
        assert await a.store.fence(s, [old], datetime.now(UTC)) == set()
        progress = await s.scalar(text("SELECT progress FROM leases WHERE name = 'camera:cam1'"))
    assert progress is not None  # a's last fenced write recorded how far it got; b's grant says so
    assert wb.grants["cam1"].progress == progress
    await b.halt()


async def test_a_second_process_with_a_live_node_id_refuses_to_start(db: Database) -> None:
    first = await node(db, "gw1", Work([]))
    second = Cluster(FAST, "gw1", db, Metrics(), None)
    with pytest.raises(NodeIdInUse, match="already in use by a running gateway"):
        await second.register()
    # killed (no more heartbeats, no clean stop): its id can be taken after one TTL
    assert first._task is not None
    first._task.cancel()
    began = asyncio.get_running_loop().time()
    await Cluster(FAST, "gw1", db, Metrics(), None).register()
    assert asyncio.get_running_loop().time() - began <= FAST.lease_ttl_s + 2 * FAST.renew_s + 1


async def test_database_time_decides_expiry(db: Database) -> None:
    async with db.session() as s:
        first = await db_now(s)
        second = await db_now(s)
    assert first == second  # PostgreSQL's transaction time: one `now` per round


def test_events_cross_the_wire_as_they_were() -> None:
    codec = EventCodec()
    at = datetime(2026, 12, 5, 1, 2, 3, 456000, tzinfo=UTC)
    events: list[Event] = [
        Position(device_id="t1", person_id="p1", fix_time=at, lat=31.2, lon=121.4, accuracy_m=4.0, at=at),
        DeviceChanged(device_id="cam1", kind="camera", change="updated", at=at),
        ZoneChanged(zone_id="z1", change="deleted", at=at),
        AlertChanged(change="opened", alert={"id": 7, "kind": "sos", "level": "red"}, at=at),
    ]
    assert codec.decode(codec.encode(events)) == events
    with pytest.raises(ValueError, match="unknown event type"):
        codec.decode(b'[{"type": "no.such", "at": "2026-12-05T00:00:00+00:00"}]')


async def test_events_of_one_node_reach_the_other_nodes_remote_subscribers_only(mqtt_url: str) -> None:
    import uuid

    suffix = uuid.uuid4().hex[:6]
    links, buses, relays = [], [], []
    for name in ("a", "b"):
        metrics = Metrics()
        bus = EventBus(metrics)
        link = MqttLink(MqttSettings(url=mqtt_url), f"relay-{name}-{suffix}", metrics)
        relay = EventRelay(node_id=f"relay-{name}-{suffix}", bus=bus, mqtt=link, metrics=metrics)
        relay.install()
        links.append(link)
        buses.append(bus)
        relays.append(relay)
    got: dict[str, list[Any]] = {"push": [], "webhook": []}

    async def push(e: Event) -> None:
        got["push"].append(e)

    async def webhook(e: Event) -> None:
        got["webhook"].append(e)

    buses[1].subscribe("push", push, topics=("alert",), remote=True)
    buses[1].subscribe("webhook", webhook, topics=("alert",))
    try:
        for bus, link in zip(buses, links, strict=True):
            await bus.start()
            await link.start()
        event = AlertChanged(change="opened", alert={"id": 1, "kind": "sos"})
        await buses[0].publish(event)
        await wait_for(lambda: got["push"], 20, "the alert on node b's console push")
        assert got["push"] == [event] and got["webhook"] == [], "a webhook fires on the node where the alert changed, only"
        await buses[1].publish(AlertChanged(change="resolved", alert={"id": 1, "kind": "sos"}))
        await wait_for(lambda: len(got["webhook"]) == 1, 20, "b's own alert on b's webhook")
    finally:
        for bus, link in zip(buses, links, strict=True):
            await link.stop()
            await bus.stop()
