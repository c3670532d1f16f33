"""Tracker benchmarks, each printed as a ratio against a baseline of the same run.

1. Zone evaluation with 1,000 zones: the vectorised index (STRtree + shapely 2
   array functions) against a per-point loop of shapely `contains` calls.
2. End-to-end positions/s through Mosquitto (publish → decode → filter → rules
   → committed in SQLite) against a raw paho subscriber on the same broker
   receiving the same payloads.
3. Latency publish → alert (AlertChanged on the bus, after the alert row is
   committed) while trackers publish 5,000 positions/s.

Uses the Mosquitto at 127.0.0.1:1883 with unique topics and client ids.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import socket
import struct
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import shapely
from paho.mqtt.enums import CallbackAPIVersion

from drivers.gps.geofence import ZoneIndex, ZoneSpec

BROKER = ("127.0.0.1", 1883)
LAT0, LON0 = 31.2304, 121.4737
M = 111_194.93


def _offset(n: float, e: float) -> tuple[float, float]:
    return LAT0 + n / M, LON0 + e / (M * math.cos(math.radians(LAT0)))


def _square(cn: float, ce: float, half: float) -> dict[str, Any]:
    ring = [list(reversed(_offset(cn + a * half, ce + b * half))) for a, b in ((-1, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))]
    return {"type": "Polygon", "coordinates": [ring]}


def make_zones(n: int, rng: np.random.Generator) -> list[ZoneSpec]:
    """A county's worth of zones: squares and 12-gons and circles within 20 km."""
    zones = []
    for i in range(n):
        cn, ce = rng.uniform(-20_000, 20_000, 2)
        size = float(rng.uniform(50, 800))
        if i % 3 == 0:
            lat, lon = _offset(cn, ce)
            zones.append(ZoneSpec(f"z{i}", "exclusion", {"type": "Point", "coordinates": [lon, lat]}, radius_m=size))
        elif i % 3 == 1:
            zones.append(ZoneSpec(f"z{i}", "inclusion", _square(cn, ce, size)))
        else:
            ring = [list(reversed(_offset(cn + size * math.sin(a), ce + size * math.cos(a)))) for a in np.linspace(0, 2 * math.pi, 13)]
            ring[-1] = ring[0]
            zones.append(ZoneSpec(f"z{i}", "inclusion", {"type": "Polygon", "coordinates": [ring]}))
    return zones


def bench_zones(quick: bool) -> None:
    rng = np.random.default_rng(42)
    zones = make_zones(1000, rng)
    index = ZoneIndex(zones)
    n = 20_000 if quick else 100_000
    lat = LAT0 + rng.uniform(-0.2, 0.2, n)
    lon = LON0 + rng.uniform(-0.22, 0.22, n)
    index.signed_distances(lat[:100], lon[:100], 60.0)  # warm up
    t = time.perf_counter()
    _, _, sd = index.signed_distances(lat, lon, 60.0)
    vec = n * len(zones) / (time.perf_counter() - t)
    geoms = [shapely.geometry.shape(z.geometry) if z.geometry["type"] != "Point" else shapely.Point(z.geometry["coordinates"]).buffer(z.radius_m / M) for z in zones]
    m = 200 if quick else 1000
    t = time.perf_counter()
    for i in range(m):
        p = shapely.Point(lon[i], lat[i])
        for g in geoms:
            g.contains(p)
    loop = m * len(zones) / (time.perf_counter() - t)
    print(f"zone checks, 1,000 zones, {n:,} points: vectorised {vec / 1e6:.1f} M/s vs per-point shapely loop {loop / 1e6:.2f} M/s"
          f" = {vec / loop:.0f}x (goal >= 20x, and >= 5 M/s: {'met' if vec >= 5e6 and vec / loop >= 20 else 'NOT met'})")


def _fix(i: int, k: int, t0: datetime, outside: bool = False) -> bytes:
    from simulators.tracker import nmea_fix

    lat, lon = _offset((i % 50) * 10, 5000 if outside else (i // 50) * 10)
    return nmea_fix(t0 + timedelta(seconds=k), lat, lon).encode()


def _gateway_config(tmp: Path, tag: str, n_dev: int) -> Any:
    import yaml

    from config import load_config_text

    persons = [{"id": f"bp{i}-{tag}", "name": f"P{i}"} for i in range(n_dev)]
    devices = [{"id": f"bt{i}-{tag}", "kind": "tracker", "person_id": f"bp{i}-{tag}", "report_interval_s": 3600,
                # leaving the zone is a 5 km jump in one second of fix time: let it through the speed filter
                "filter": {"max_speed_kmh": 100_000}} for i in range(n_dev)]
    home = {"id": f"home-{tag}", "kind": "inclusion", "geometry": _square(250, 500, 1500), "buffer_m": 30, "dwell_s": 0}
    extra = [{"id": f"x{i}-{tag}", "kind": "exclusion", "geometry": {"type": "Point", "coordinates": list(reversed(_offset(-3000 - i * 50, 0)))}, "radius_m": 20} for i in range(98)]
    data = {"gateway": {"data_dir": str(tmp)}, "mqtt": {"url": f"mqtt://{BROKER[0]}:{BROKER[1]}", "client_id": f"bench-gw-{tag}"},
            "persons": persons, "devices": devices, "zones": [home, *extra],
            "thresholds": {"gps": {"alert_update_s": 3600, "liveness_check_s": 3600}}}
    return load_config_text(yaml.safe_dump(data), "<bench>", env={})


class Publisher:
    """The tracker fleet's side of the broker, as light as it can be: MQTT 3.1.1 PUBLISH
    packets (QoS 1) encoded up front and written in chunks to one socket, PUBACKs counted
    by a reader thread. Real trackers are other machines; here they share two cores with
    the broker and the gateway, and paho's publish path (tens of microseconds of Python
    per message, and a thread) took that CPU from the gateway being measured."""

    def __init__(self, tag: str) -> None:
        self.sock = socket.create_connection(BROKER)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = f"bench-pub-{tag}".encode()
        # CONNECT: protocol MQTT 3.1.1, clean session, keep-alive off (runs are short)
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(cid)) + cid
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._read(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"broker refused the publisher: {connack!r}")
        self.mid = 0
        self.sent = 0
        self.acked = 0
        self._reader = threading.Thread(target=self._count_acks, daemon=True)
        self._reader.start()

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            more = self.sock.recv(n - len(buf))
            if not more:
                raise ConnectionError("broker closed the connection")
            buf += more
        return buf

    def _count_acks(self) -> None:
        # nothing is subscribed: every packet back is a 4-byte PUBACK
        pending = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            pending += len(data)
            self.acked += pending // 4
            pending %= 4

    def packet(self, topic: str, payload: bytes) -> bytes:
        self.mid = self.mid % 65535 + 1
        t = topic.encode()
        body = struct.pack("!H", len(t)) + t + struct.pack("!H", self.mid) + payload
        return b"\x32" + _varint(len(body)) + body

    def send(self, packets: list[bytes]) -> None:
        self.sock.sendall(b"".join(packets))
        self.sent += len(packets)

    def close(self) -> None:
        end = time.monotonic() + 10
        while self.acked < self.sent and time.monotonic() < end:
            time.sleep(0.01)
        self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        self.sock.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _forget(client_id: str) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    c.connect(*BROKER)
    c.loop_start()
    time.sleep(0.2)
    c.disconnect()
    c.loop_stop()


WINDOW = 400  # well below Mosquitto's default max_queued_messages (1000): beyond it the broker drops QoS 1 messages

# The trackers publish from a process of their own, as devices do: in the measuring
# process their paho client would compete for the GIL with the subscriber measured.
_MP = mp.get_context("spawn")


CHUNK = 50  # packets per write


def _publish_window(tag: str, payloads: list[tuple[str, bytes]], delivered: Any) -> None:
    """Child process: publish as fast as the consumer keeps up, never more than WINDOW ahead."""
    pub = Publisher(tag)
    packets = [pub.packet(t, p) for t, p in payloads]
    for j in range(0, len(packets), CHUNK):
        chunk = packets[j:j + CHUNK]
        while j + len(chunk) - delivered.value > WINDOW:
            time.sleep(0.0005)
        pub.send(chunk)
    while delivered.value < len(packets):
        time.sleep(0.01)
    pub.close()


def _publish_paced(client_tag: str, tag: str, n_dev: int, k0: int, t0: datetime, rate: int, seconds: int, delivered: Any, out: Any) -> None:
    """Child process: `rate` positions/s; about every 100th is a tracker leaving the home zone
    (97: coprime with the number of trackers, so different trackers leave). Reports when
    each leaving fix was published (perf_counter is system-wide monotonic on Linux)."""
    pub = Publisher(client_tag)
    total = rate * seconds
    left: set[str] = set()
    leaving: dict[int, list[str]] = {}  # first message of a chunk -> the trackers that leave in it
    packets = []
    for q in range(total):
        i, k = q % n_dev, k0 + q // n_dev
        dev = f"bt{i}-{tag}"
        outside = q % 97 == 0 and dev not in left
        if outside:
            left.add(dev)
            leaving.setdefault(q - q % CHUNK, []).append(dev)
        packets.append(pub.packet(f"trackers/{dev}/nmea", _fix(i, k, t0, outside=outside)))
    sent_at: dict[str, float] = {}
    begin = time.perf_counter()
    for j in range(0, total, CHUNK):
        chunk = packets[j:j + CHUNK]
        while j + len(chunk) - delivered.value > WINDOW:
            time.sleep(0.0005)  # the gateway is behind: never let the broker drop
        now = time.perf_counter()
        sent_at.update((dev, now) for dev in leaving.get(j, ()))
        pub.send(chunk)
        delay = begin + (j + CHUNK) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    out.put((sent_at, total / (time.perf_counter() - begin)))
    time.sleep(0.5)
    pub.close()


def raw_rate(tag: str, payloads: list[tuple[str, bytes]]) -> float:
    """Baseline: a plain paho subscriber (QoS 1) counting the same payloads."""
    got = threading.Event()
    delivered = _MP.Value("q", 0, lock=False)
    # Same payloads under a topic the gateway does not subscribe to, so it stays idle meanwhile.
    prefix = f"benchraw-{tag}/"
    payloads = [(t.replace("trackers/", prefix, 1), p) for t, p in payloads]
    n = len(payloads)

    def on_message(c, u, m):  # type: ignore[no-untyped-def]
        if m.topic.startswith(prefix):
            delivered.value += 1
            if delivered.value == n:
                got.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{tag}", clean_session=True)
    sub.on_message = on_message
    sub.connect(*BROKER)
    sub.subscribe(f"{prefix}+/nmea", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    proc = _MP.Process(target=_publish_window, args=(tag + "r", payloads, delivered), daemon=True)
    proc.start()
    while delivered.value == 0 and proc.is_alive():
        time.sleep(0.0005)
    t = time.perf_counter()  # from the first delivery: process start-up is not the subscriber's
    got.wait(120)
    rate = (delivered.value - 1) / (time.perf_counter() - t)
    proc.join(10)
    sub.disconnect()
    sub.loop_stop()
    return rate


async def _mirror(counter: Any, base: float, shared: Any, stop: asyncio.Event) -> None:
    """Keep the child's view of how many positions the gateway stored current."""
    while not stop.is_set():
        shared.value = int(counter._value.get() - base)
        await asyncio.sleep(0.001)


async def gateway_runs(quick: bool) -> None:
    from gateway.assembly import build_gateway
    from gateway.events import AlertChanged

    tag = uuid.uuid4().hex[:6]
    n_dev = 200
    per_dev = 25 if quick else 200
    t0 = datetime.now(UTC) - timedelta(hours=3)
    payloads = [(f"trackers/bt{i}-{tag}/nmea", _fix(i, k, t0)) for k in range(per_dev) for i in range(n_dev)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _gateway_config(Path(tmp), tag, n_dev)
        gw = build_gateway(cfg)
        await gw.start()
        svc, driver = gw.core, gw.areas.trackers
        assert driver is not None
        try:
            # --- throughput ---
            stored = driver.m_stored
            base = stored._value.get()
            delivered = _MP.Value("q", 0, lock=False)
            stop = asyncio.Event()
            mirror = asyncio.create_task(_mirror(stored, base, delivered, stop))
            proc = _MP.Process(target=_publish_window, args=(tag, payloads, delivered), daemon=True)
            proc.start()
            while stored._value.get() == base and proc.is_alive():
                await asyncio.sleep(0.0005)
            start, first = time.perf_counter(), stored._value.get()
            last, still = -1.0, time.perf_counter()
            while stored._value.get() - base < len(payloads) and time.perf_counter() - still < 10:
                if stored._value.get() != last:
                    last, still = stored._value.get(), time.perf_counter()
                await asyncio.sleep(0.01)
            done = stored._value.get() - base
            gw_rate = (stored._value.get() - first) / (still - start)  # up to the last stored position, not the stall wait
            stop.set()
            await mirror
            await asyncio.to_thread(proc.join, 10)
            if done < len(payloads):
                print(f"WARNING: only {done:,.0f} of {len(payloads):,} positions stored (see gateway_gps_rejected_total)", flush=True)
                print("\n".join(x for x in svc.metrics.render().decode().splitlines() if x.startswith(("gateway_gps_rejected_total", "gateway_mqtt_received_total"))), flush=True)
            raw = await asyncio.to_thread(raw_rate, tag, payloads)
            print(f"end-to-end through Mosquitto, {len(payloads):,} positions from {n_dev} trackers: gateway {gw_rate:,.0f} positions/s stored"
                  f" vs raw paho subscriber {raw:,.0f} msg/s = {gw_rate / raw:.2f}x (goal >= 0.5x: {'met' if gw_rate / raw >= 0.5 else 'NOT met'})")

            # --- latency at 5,000 positions/s ---
            opened: dict[str, float] = {}

            async def on_alert(ev: Any) -> None:
                if isinstance(ev, AlertChanged) and ev.change == "opened" and ev.alert["kind"] == "inclusion_exit":
                    opened.setdefault(ev.alert["device_id"], time.perf_counter())

            svc.bus.subscribe("bench-latency", on_alert, topics=("alert",), maxsize=100_000)
            rate, seconds = 5000, (3 if quick else 8)
            delivered = _MP.Value("q", 0, lock=False)
            stop = asyncio.Event()
            mirror = asyncio.create_task(_mirror(stored, stored._value.get(), delivered, stop))
            out = _MP.Queue()
            proc = _MP.Process(target=_publish_paced, args=(tag + "l", tag, n_dev, per_dev, t0, rate, seconds, delivered, out), daemon=True)
            proc.start()
            sent_at, achieved = await asyncio.to_thread(out.get, True, seconds + 120)
            end = time.perf_counter() + 30
            while len(opened) < len(sent_at) and time.perf_counter() < end:
                await asyncio.sleep(0.05)
            stop.set()
            await mirror
            await asyncio.to_thread(proc.join, 10)
            lat_ms = sorted((opened[d] - sent_at[d]) * 1000 for d in sent_at if d in opened)
            if lat_ms:
                p50 = lat_ms[len(lat_ms) // 2]
                p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
                print(f"publish → alert at {rate:,} positions/s offered, {achieved:,.0f}/s achieved ({len(lat_ms)}/{len(sent_at)} alerts): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
                      f" = {p99 / 50:.2f}x the 50 ms goal ({'met' if p99 <= 50 else 'NOT met'})")
            else:
                print("publish → alert: no alert observed (FAILED)")
        finally:
            await gw.stop()
            _forget(f"bench-gw-{tag}")
            _forget(f"bench-gw-{tag}-trackers")


def main(quick: bool = False) -> None:
    bench_zones(quick)
    asyncio.run(gateway_runs(quick))


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)
