"""`gateway-sim tracker`: a GPS tracker that speaks MQTT like a real one.

It connects with a persistent session and QoS 1, sets `trackers/{id}/state`
= `offline` as its retained Last Will (and publishes `online` on connect),
reconnects on its own (paho), and publishes either

- a GeoJSON route walked at `speed_mps` (RMC + GGA per report, HDOP derived
  from `accuracy_m`, jitter of `jitter_m` metres), or
- a real NMEA capture replayed epoch by epoch (`nmea: path`),

every `interval_s`, in NMEA (`trackers/{id}/nmea`) or OwnTracks
(`owntracks/sim/{id}`) format, plus `trackers/{id}/status` with a draining
battery and `tamper: true` from `tamper_at_s` on.

Python API (used by the scenario runner and the tests)::

    await run_tracker(params, mqtt_url, speed=20.0, device_id="trk-1", seed=7, stop=event)

`params` (all optional except a route or nmea source):
    route: GeoJSON LineString / Feature / FeatureCollection dict, or a path to one
    nmea: path to an NMEA capture (lines starting with # are skipped)
    format: nmea | owntracks                 (default nmea)
    speed_mps: 1.4       walking speed along the route
    interval_s: 10       seconds of scenario time between reports
    jitter_m: 0          random offset of each fix, uniform in a disc of this radius
    accuracy_m: 5        reported accuracy (HDOP = accuracy_m / 5, OwnTracks acc)
    dropouts: [[start_s, end_s], ...]   scenario-time spans with no reports at all
    void_spans: [[start_s, end_s], ...] spans reporting void fixes (no position)
    battery: 100, drain_per_h: 0         battery level and drain per scenario hour
    tamper_at_s: null                    tamper switch opens at this scenario time
    duration_s: null     stop after this much scenario time (default: end of route)
    loop: false          start the route over at its end
    start_time: ISO 8601 fix time of scenario t=0 (default: now - duration_s when
                time is compressed, so fixes never run ahead of wall time)

Time compression: scenario time runs `speed` times faster than wall time; fix
times follow scenario time, so runs are deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)
M_PER_DEG = 111_194.93


def _checksum(body: str) -> str:
    c = 0
    for ch in body:
        c ^= ord(ch)
    return f"{c:02X}"


def sentence(body: str) -> str:
    return f"${body}*{_checksum(body)}"


def _dm(value: float, is_lat: bool) -> tuple[str, str]:
    hemi = ("N" if value >= 0 else "S") if is_lat else ("E" if value >= 0 else "W")
    v = abs(value)
    deg = int(v)
    minutes = (v - deg) * 60
    return (f"{deg:02d}{minutes:08.5f}" if is_lat else f"{deg:03d}{minutes:08.5f}"), hemi


def nmea_fix(t: datetime, lat: float, lon: float, accuracy_m: float = 5.0, speed_mps: float = 0.0, course: float = 0.0, valid: bool = True, talker: str = "GN") -> str:
    """An RMC + GGA pair for one epoch, as a receiver prints it."""
    hms = t.strftime("%H%M%S") + f".{t.microsecond // 10000:02d}"
    if not valid:
        return "\r\n".join([sentence(f"{talker}RMC,{hms},V,,,,,,,{t.strftime('%d%m%y')},,,N"), sentence(f"{talker}GGA,{hms},,,,,0,00,99.9,,M,,M,,")]) + "\r\n"
    la, ns = _dm(lat, True)
    lo, ew = _dm(lon, False)
    hdop = max(accuracy_m / 5.0, 0.5)
    rmc = sentence(f"{talker}RMC,{hms},A,{la},{ns},{lo},{ew},{speed_mps / 0.514444:.2f},{course:.1f},{t.strftime('%d%m%y')},,,A")
    gga = sentence(f"{talker}GGA,{hms},{la},{ns},{lo},{ew},1,09,{hdop:.1f},30.0,M,0.0,M,,")
    return rmc + "\r\n" + gga + "\r\n"


def load_route(route: Any) -> list[tuple[float, float]]:
    """[(lat, lon), ...] from a GeoJSON LineString/Feature/FeatureCollection or a path to one."""
    if isinstance(route, (str, Path)):
        route = json.loads(Path(route).read_text(encoding="utf-8"))
    if route.get("type") == "FeatureCollection":
        route = next(f for f in route["features"] if f["geometry"]["type"] == "LineString")
    if route.get("type") == "Feature":
        route = route["geometry"]
    if route.get("type") != "LineString":
        raise ValueError("a route is a GeoJSON LineString")
    return [(float(c[1]), float(c[0])) for c in route["coordinates"]]


class RouteWalker:
    """Position after walking `dist` metres along the route (local flat frame per leg)."""

    def __init__(self, points: list[tuple[float, float]], loop: bool = False) -> None:
        if len(points) < 2:
            points = points * 2
        self.points = points
        self.loop = loop
        self.legs = [self._leg_len(a, b) for a, b in zip(points, points[1:], strict=False)]
        self.length = sum(self.legs)

    @staticmethod
    def _leg_len(a: tuple[float, float], b: tuple[float, float]) -> float:
        kx = M_PER_DEG * math.cos(math.radians((a[0] + b[0]) / 2))
        return math.hypot((b[1] - a[1]) * kx, (b[0] - a[0]) * M_PER_DEG)

    def at(self, dist: float) -> tuple[float, float, float, bool]:
        """(lat, lon, course, finished)."""
        if self.length == 0:
            return self.points[0][0], self.points[0][1], 0.0, True
        finished = dist >= self.length and not self.loop
        dist = dist % self.length if self.loop else min(dist, self.length)
        for (a, b), leg in zip(zip(self.points, self.points[1:], strict=False), self.legs, strict=True):
            if dist <= leg or leg == 0 and dist == 0:
                f = dist / leg if leg else 0.0
                course = math.degrees(math.atan2((b[1] - a[1]) * math.cos(math.radians(a[0])), b[0] - a[0])) % 360
                return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, course, finished
            dist -= leg
        last = self.points[-1]
        return last[0], last[1], 0.0, finished


def jitter(lat: float, lon: float, radius_m: float, rng: random.Random) -> tuple[float, float]:
    if radius_m <= 0:
        return lat, lon
    r = radius_m * math.sqrt(rng.random())
    a = rng.random() * 2 * math.pi
    return lat + r * math.cos(a) / M_PER_DEG, lon + r * math.sin(a) / (M_PER_DEG * math.cos(math.radians(lat)))


def nmea_epochs(path: str | Path) -> list[str]:
    """A capture cut into epochs (a new epoch at each RMC), comments dropped."""
    epochs: list[list[str]] = [[]]
    for line in Path(path).read_text(encoding="ascii", errors="replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[3:6] == "RMC" and epochs[-1]:
            epochs.append([])
        epochs[-1].append(line.strip())
    return ["\r\n".join(e) + "\r\n" for e in epochs if e]


class TrackerClient:
    """The MQTT side: persistent session, QoS 1, retained LWT, automatic reconnect."""

    def __init__(self, mqtt_url: str, device_id: str) -> None:
        from gateway.mqtt import parse_url

        addr = parse_url(mqtt_url)
        self.device_id = device_id
        self.connected = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-tracker-{device_id}", clean_session=False, protocol=paho.MQTTv311)
        if addr.username:
            c.username_pw_set(addr.username, addr.password)
        if addr.tls:
            c.tls_set()
        c.will_set(f"trackers/{device_id}/state", "offline", qos=1, retain=True)
        c.reconnect_delay_set(1, 5)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: self.connected.clear()
        self.client = c
        c.connect_async(addr.host, addr.port, keepalive=30)
        c.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if not reason_code.is_failure:
            client.publish(f"trackers/{self.device_id}/state", "online", qos=1, retain=True)
            self.connected.set()

    def publish(self, topic: str, payload: str | bytes) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def pending(self) -> int:
        return len(self.client._out_messages)  # noqa: SLF001 - paho exposes no public count of unacked QoS 1 messages

    def close(self, graceful: bool = True) -> None:
        if graceful:
            self.client.publish(f"trackers/{self.device_id}/state", "offline", qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()


async def run_tracker(params: dict[str, Any], mqtt_url: str, speed: float = 1.0, device_id: str | None = None, seed: int | str = 0,
                      stop: asyncio.Event | None = None, client: TrackerClient | None = None) -> int:
    """Play one tracker until its route/capture/duration ends or `stop` is set; returns the number of reports sent."""
    device_id = device_id or params.get("id") or "trk-sim"
    rng = random.Random(f"{seed}:{device_id}")
    stop = stop or asyncio.Event()
    own = client is None
    client = client or TrackerClient(mqtt_url, device_id)
    await asyncio.to_thread(client.connected.wait, 10)
    fmt = params.get("format", "nmea")
    interval = float(params.get("interval_s", 10))
    accuracy = float(params.get("accuracy_m", 5))
    jit = float(params.get("jitter_m", 0))
    dropouts = [tuple(map(float, d)) for d in params.get("dropouts") or []]
    voids = [tuple(map(float, d)) for d in params.get("void_spans") or []]
    battery = float(params.get("battery", 100))
    drain = float(params.get("drain_per_h", 0))
    tamper_at = params.get("tamper_at_s")
    walker = RouteWalker(load_route(params["route"]), bool(params.get("loop"))) if params.get("route") else None
    epochs = nmea_epochs(params["nmea"]) if params.get("nmea") else None
    if walker is None and epochs is None:
        raise ValueError("a tracker needs params.route or params.nmea")
    walk_speed = float(params.get("speed_mps", 1.4))
    duration = params.get("duration_s")
    if duration is None:
        duration = walker.length / walk_speed if walker and not walker.loop else (len(epochs) * interval if epochs else 3600)
    duration = float(duration)
    t0 = datetime.fromisoformat(params["start_time"]) if params.get("start_time") else datetime.now(UTC) - timedelta(seconds=duration if speed > 1 else 0)
    loop = asyncio.get_running_loop()
    wall0 = loop.time()
    sent = 0
    step = 0
    while not stop.is_set():
        t = step * interval
        if t > duration + 1e-9:
            break
        if not any(a <= t < b for a, b in dropouts):
            fix_time = t0 + timedelta(seconds=t)
            valid = not any(a <= t < b for a, b in voids)
            if epochs is not None:
                if step >= len(epochs):
                    break
                payload, topic = epochs[step], f"trackers/{device_id}/nmea"
            else:
                assert walker is not None
                lat, lon, course, _ = walker.at(t * walk_speed)
                lat, lon = jitter(lat, lon, jit, rng)
                if fmt == "owntracks":
                    topic = f"owntracks/sim/{device_id}"
                    payload = json.dumps({"_type": "location", "lat": round(lat, 7), "lon": round(lon, 7), "tst": int(fix_time.timestamp()), "acc": round(accuracy), "vel": round(walk_speed * 3.6), "batt": round(battery), "tid": device_id[-2:]}) if valid else json.dumps({"_type": "lwt", "tst": int(fix_time.timestamp())})
                else:
                    topic, payload = f"trackers/{device_id}/nmea", nmea_fix(fix_time, lat, lon, accuracy, walk_speed, course, valid)
            client.publish(topic, payload)
            status: dict[str, Any] = {"ts": round(fix_time.timestamp(), 3), "battery": max(0, round(battery))}
            if tamper_at is not None:
                status["tamper"] = t >= float(tamper_at)
            if drain or tamper_at is not None or step == 0:
                client.publish(f"trackers/{device_id}/status", json.dumps(status))
            sent += 1
        battery = max(0.0, battery - drain * interval / 3600)
        step += 1
        delay = wall0 + step * interval / speed - loop.time()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
    if own:
        await asyncio.to_thread(_drain, client, 10.0)
        client.close()
    return sent


def _drain(client: TrackerClient, timeout: float) -> None:
    import time

    end = time.monotonic() + timeout
    while client.pending() and time.monotonic() < end:
        time.sleep(0.02)


async def play(spec: dict[str, Any], ctx: Any) -> None:
    """Scenario runner entry point (simulators/scenario.py)."""
    if not ctx.mqtt_url:
        raise ValueError("tracker simulation needs an MQTT broker (mqtt_url)")
    await run_tracker(dict(spec.get("params") or {}), ctx.mqtt_url, speed=ctx.speed, device_id=spec["id"], seed=ctx.seed, stop=ctx.stop)


def register(sub: Any) -> None:
    p = sub.add_parser("tracker", help="a GPS tracker publishing NMEA or OwnTracks over MQTT", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL")
    p.add_argument("--id", required=True, help="device id (must be a registered tracker)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--route", help="GeoJSON LineString file to walk")
    src.add_argument("--nmea", help="NMEA capture to replay")
    p.add_argument("--format", choices=("nmea", "owntracks"), default="nmea")
    p.add_argument("--speed", type=float, default=1.0, help="time compression factor")
    p.add_argument("--walk-speed", type=float, default=1.4, help="m/s along the route")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between reports")
    p.add_argument("--jitter", type=float, default=0.0, help="metres of random position error")
    p.add_argument("--accuracy", type=float, default=5.0, help="reported accuracy in metres")
    p.add_argument("--dropout", action="append", default=[], metavar="START:END", help="no reports in this span (s), repeatable")
    p.add_argument("--battery", type=float, default=100.0)
    p.add_argument("--drain", type=float, default=0.0, help="battery %% per hour")
    p.add_argument("--tamper-at", type=float, default=None, help="tamper switch opens at this time (s)")
    p.add_argument("--duration", type=float, default=None, help="seconds of scenario time")
    p.add_argument("--loop", action="store_true", help="restart the route at its end")
    p.add_argument("--seed", default="0")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO)
    params: dict[str, Any] = {
        "route": args.route, "nmea": args.nmea, "format": args.format, "speed_mps": args.walk_speed, "interval_s": args.interval,
        "jitter_m": args.jitter, "accuracy_m": args.accuracy, "battery": args.battery, "drain_per_h": args.drain,
        "tamper_at_s": args.tamper_at, "duration_s": args.duration, "loop": args.loop,
        "dropouts": [[float(x) for x in d.split(":")] for d in args.dropout],
    }
    sent = asyncio.run(run_tracker({k: v for k, v in params.items() if v is not None}, args.mqtt, speed=args.speed, device_id=args.id, seed=args.seed))
    print(f"{args.id}: {sent} reports sent")
    return 0
