"""Event bus: bounded queues, drops counted per subscriber, never blocks a thread."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from gateway.bus import EventBus
from gateway.events import DeviceState, Event, Position
from gateway.metrics import Metrics
from tests.waiting import wait_for


def pos(i: int) -> Position:
    return Position(device_id="t1", person_id=None, fix_time=datetime(2026, 1, 1, tzinfo=UTC), lat=i, lon=0.0)


async def test_topics_order_and_isolation() -> None:
    bus = EventBus(Metrics())
    got: dict[str, list[Event]] = {"pos": [], "all": []}

    async def on_pos(e: Event) -> None:
        got["pos"].append(e)

    async def on_all(e: Event) -> None:
        got["all"].append(e)

    bus.subscribe("pos", on_pos, topics=["position"])
    bus.subscribe("all", on_all)
    await bus.start()
    for i in range(50):
        await bus.publish(pos(i))
    await bus.publish(DeviceState(device_id="t1", kind="tracker", state="online"))
    await bus.stop()
    assert [e.lat for e in got["pos"]] == list(range(50))  # type: ignore[attr-defined]
    assert len(got["all"]) == 51


async def test_slow_subscriber_drops_oldest_and_counts_without_blocking_others() -> None:
    metrics = Metrics()
    bus = EventBus(metrics)
    release = asyncio.Event()
    holding = asyncio.Event()
    slow_seen: list[float] = []
    fast_seen: list[float] = []

    async def slow(e: Event) -> None:
        holding.set()
        await release.wait()
        slow_seen.append(e.lat)  # type: ignore[attr-defined]

    async def fast(e: Event) -> None:
        fast_seen.append(e.lat)  # type: ignore[attr-defined]

    bus.subscribe("slow", slow, maxsize=10, overflow="drop_oldest")
    bus.subscribe("fast", fast, maxsize=1000)
    await bus.start()
    for i in range(100):
        await asyncio.wait_for(bus.publish(pos(i)), 1)  # never waits on the slow one
    await asyncio.wait_for(holding.wait(), 30)  # the slow one holds an event while the others queue up behind it
    release.set()
    await bus.stop()
    assert fast_seen == list(range(100))
    assert slow_seen[-10:] == list(range(90, 100))  # newest kept
    assert bus.dropped("slow") >= 89
    assert b'gateway_bus_dropped_total{subscriber="slow"}' in metrics.render()


async def test_block_overflow_applies_back_pressure_to_async_publishers() -> None:
    bus = EventBus(Metrics())
    release = asyncio.Event()

    async def slow(e: Event) -> None:
        await release.wait()

    bus.subscribe("store", slow, maxsize=2, overflow="block")
    await bus.start()
    for i in range(3):  # one in the handler, two queued
        await bus.publish(pos(i))
    blocked = asyncio.create_task(bus.publish(pos(3)))
    await asyncio.sleep(0.05)  # the thing under test: time passes and the publisher stays blocked (nothing frees room)
    assert not blocked.done()
    release.set()
    await asyncio.wait_for(blocked, 1)
    await bus.stop()


async def test_offer_from_another_thread_never_blocks_it() -> None:
    bus = EventBus(Metrics())
    seen: list[float] = []
    done = asyncio.Event()

    async def handler(e: Event) -> None:
        seen.append(e.lat)  # type: ignore[attr-defined]
        if len(seen) == 1000:
            done.set()

    bus.subscribe("h", handler, maxsize=5000, overflow="block")
    await bus.start()
    finished = threading.Event()

    def producer() -> None:
        for i in range(1000):
            bus.offer(pos(i))
        finished.set()

    t = threading.Thread(target=producer)
    t.start()
    await asyncio.to_thread(finished.wait, 5)
    assert finished.is_set()
    await asyncio.wait_for(done.wait(), 5)
    t.join()
    await bus.stop()
    assert seen == list(range(1000))


async def test_a_failing_handler_is_counted_and_does_not_stop_delivery() -> None:
    metrics = Metrics()
    bus = EventBus(metrics)
    seen: list[float] = []

    async def flaky(e: Event) -> None:
        if e.lat == 1:  # type: ignore[attr-defined]
            raise ValueError("bad event")
        seen.append(e.lat)  # type: ignore[attr-defined]

    bus.subscribe("flaky", flaky)
    await bus.start()
    for i in range(3):
        await bus.publish(pos(i))
    await bus.stop()
    assert seen == [0, 2]
    assert b'gateway_bus_handler_errors_total{subscriber="flaky"} 1.0' in metrics.render()


async def test_batch_subscriber_gets_what_is_queued_in_order() -> None:
    bus = EventBus(Metrics())
    batches: list[list[float]] = []
    release = asyncio.Event()

    async def store(events: list[Event]) -> None:
        batches.append([e.lat for e in events])  # type: ignore[attr-defined]
        await release.wait()

    bus.subscribe("store", store, maxsize=100, overflow="block", batch=True)
    await bus.start()
    await bus.publish(pos(0))
    await wait_for(lambda: batches == [[0]], what="the first event in the handler")  # the next ones queue up behind it
    for i in range(1, 50):
        await bus.publish(pos(i))
    release.set()
    await bus.stop()
    assert batches == [[0], list(range(1, 50))]


async def test_publish_many_delivers_in_order_and_counts() -> None:
    metrics = Metrics()
    bus = EventBus(metrics)
    got: list[float] = []

    async def on_pos(e: Event) -> None:
        got.append(e.lat)  # type: ignore[attr-defined]

    bus.subscribe("pos", on_pos, topics=["position"], overflow="block", maxsize=10)
    await bus.start()
    await bus.publish_many([pos(i) for i in range(25)])  # more than the queue holds: waits, loses nothing
    await bus.stop()
    assert got == list(range(25))
    assert b'gateway_bus_published_total{topic="position"} 25.0' in metrics.render()
