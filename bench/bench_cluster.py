"""Issue 17's fault suite and cluster throughput: `./dev bench cluster [--quick]`.

Faults (full: 10 minutes; quick: 3): three gateway nodes on a private PostgreSQL and a
private Mosquitto (so that restarting them disturbs nothing else on the machine), media on
one folder, 16 RTSP cameras (the project's simulator serving one clip), 200 trackers at
2,000 positions/s (10 Hz each). A node is killed (SIGKILL, with its ingest worker) every
60 s (quick: 40 s), round robin, and started again 5 s later; the broker is restarted once
and PostgreSQL once. Then the load stops, the nodes drain, and the table compares:
- positions stored (distinct device and fix time) against those the broker acknowledged
  to the publisher, and rows stored twice;
- geofence alerts against the episodes the script played (20 walkers, each 40 s inside
  its own exclusion zone with a 20 s dwell, then 40 s outside), and duplicates;
- per camera the longest hole in its recording, and how many holes exceed 10 s;
- a console (WebSocket) that follows the next node to be killed: time from each kill to
  its first event on another node.

Throughput: 1, 2 and 3 nodes, no faults, trackers flooding for a fixed time: positions
stored per second, and each node's CPU seconds (node and ingest worker) per 1,000
positions, as ratios against one node.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import psycopg
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from simulators.tracker import nmea_fix

LAT0, LON0 = 31.2304, 121.4737
M = 111_194.93  # metres per degree of latitude
TRACKERS, WALKERS, CAMERAS = 200, 20, 16
HZ = 10
DWELL_S = 20
INSIDE_S = OUTSIDE_S = 40
SECRET = "bench-cluster-secret-0123456789-abcdefghijklmnopq"
PASSWORD = "bench-password-1"
STARTED: list["Node"] = []
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1] if Path("/usr/lib/postgresql").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = cond()
        except Exception:  # noqa: BLE001 - a peer still starting
            v = None
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


# --- private peers -------------------------------------------------------------------------
class Broker:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.dir = root / "mosquitto"
        self.dir.mkdir()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {self.dir}/\n"
                             "autosave_interval 1\nmax_queued_messages 1000000\nmax_inflight_messages 1000\nuser root\n"
                             f"log_dest file {self.dir}/mosquitto.log\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, 20, "mosquitto")

    def _listening(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), 1):
            return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # saves its persistence file
            self.proc.wait(20)

    def restart(self) -> None:
        self.stop()
        self.start()


class Postgres:
    def __init__(self, root: Path) -> None:
        if PG_BIN is None:
            raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql")
        self.bin: Path = PG_BIN
        self.port = free_port()
        self.dir = root / "pg"
        self.dir.mkdir()
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        if not self.data.exists():
            self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-w", "start", "-o",
                          f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on")

    def restart(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "restart")

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as c:
            cur = c.execute(sql)
            return list(cur.fetchall()) if cur.description else []


# --- the gateway nodes -----------------------------------------------------------------------
def zone_centre(i: int) -> tuple[float, float]:
    return LAT0 + 0.02 * (i // 5), LON0 + 0.02 * (i % 5)


def site(broker: Broker, pg: Postgres, root: Path, cameras: list[str]) -> dict[str, Any]:
    persons = [{"id": f"p{i}", "name": f"Person {i}"} for i in range(TRACKERS)]
    trackers = [{"id": f"t{i}", "kind": "tracker", "person_id": f"p{i}", "report_interval_s": 5} for i in range(TRACKERS)]
    cams = [{"id": f"cam{i}", "kind": "camera", "url": url} for i, url in enumerate(cameras)]
    zones = [{"id": f"z{i}", "kind": "exclusion", "geometry": {"type": "Point", "coordinates": [zone_centre(i)[1], zone_centre(i)[0]]},
              "radius_m": 200, "buffer_m": 20, "dwell_s": DWELL_S, "person_ids": [f"p{i}"]} for i in range(WALKERS)]
    return {
        "storage": {"database_url": pg.url, "media_dir": str(root / "media")},
        "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}"},
        "cluster": {"lease_ttl_s": 5, "renew_s": 1},
        "thresholds": {"gps": {"max_speed_kmh": 100000}},  # walkers jump in and out of their zones
        "recording": {"segment_s": 10, "min_free_bytes": 0, "retention_check_s": 3600},
        "persons": persons, "devices": trackers + cams, "zones": zones,
    }


@dataclass
class Node:
    name: str
    conf: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    cpu_before: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        STARTED.append(self)
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(self.conf)], stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.kill()

    def serving(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def cpu_s(self) -> float:
        """CPU seconds of the node and its descendants (the ingest worker runs in a
        session of its own, so not in the node's process group)."""
        if not self.alive():
            return 0.0
        assert self.proc is not None
        tick = os.sysconf("SC_CLK_TCK")
        stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu s)
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                fields = (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(pid_dir.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        mine = {self.proc.pid}
        grew = True
        while grew:
            more = {pid for pid, (parent, _) in stats.items() if parent in mine and pid not in mine}
            mine |= more
            grew = bool(more)
        return sum(stats[p][1] for p in mine if p in stats)


def make_nodes(root: Path, base: dict[str, Any], n: int) -> list[Node]:
    nodes = []
    for i in range(n):
        name = f"gw{i + 1}"
        port = free_port()
        cfg = {**base, "gateway": {"node_id": name, "port": port, "data_dir": str(root / f"data-{name}"), "secret_key": SECRET,
                                   "log_level": "WARNING"}}
        conf = root / f"{name}.yaml"
        conf.write_text(yaml.safe_dump(cfg))
        nodes.append(Node(name, conf, port, root / f"{name}.log"))
    return nodes


# --- trackers --------------------------------------------------------------------------------
def inside(i: int, t: float) -> bool:
    """Walker i's script: inside its zone for INSIDE_S, outside for OUTSIDE_S, staggered."""
    return i < WALKERS and (t + i * 3) % (INSIDE_S + OUTSIDE_S) < INSIDE_S


def position(i: int, t: float) -> tuple[float, float]:
    if i < WALKERS:
        lat, lon = zone_centre(i)
        return (lat, lon) if inside(i, t) else (lat + 2000 / M, lon)
    # the others wander far from every zone
    return LAT0 - 0.1 + 0.001 * (i % 20) + 0.0005 * math.sin(t / 30), LON0 - 0.1 + 0.001 * (i // 20)


def publish_load(port: int, start_epoch: float, seconds: float, rate: float, out: Any, flood: bool = False) -> None:
    """Child process: trackers publish at `rate` positions/s (or as fast as acknowledged,
    with `flood`); reports how many the broker acknowledged, and the walkers' acknowledged
    fix times (to count the episodes played)."""
    acked = 0
    lock = threading.Lock()
    pending: dict[int, tuple[int, float]] = {}
    walker_fixes: dict[int, list[float]] = {i: [] for i in range(WALKERS)}

    def on_publish(c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
        nonlocal acked
        with lock:
            item = pending.pop(mid, None)
            if item is not None:
                acked += 1
                if item[0] < WALKERS:
                    walker_fixes[item[0]].append(item[1])

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-trackers-{os.getpid()}", clean_session=True)
    c.on_publish = on_publish
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.reconnect_delay_set(1, 2)
    c.connect("127.0.0.1", port)
    c.loop_start()
    step = 1.0 / HZ
    tick = 0
    while True:
        t = tick * step
        if t >= seconds:
            break
        if not flood:
            delay = start_epoch + t - time.time()
            if delay > 0:
                time.sleep(delay)
        at = datetime.fromtimestamp(start_epoch + t, UTC)
        for i in range(TRACKERS):
            lat, lon = position(i, t)
            info = c.publish(f"trackers/t{i}/nmea", nmea_fix(at, lat, lon, accuracy_m=5.0), qos=1)
            with lock:
                if info.rc == paho.MQTT_ERR_SUCCESS or info.rc == paho.MQTT_ERR_NO_CONN:
                    pending[info.mid] = (i, start_epoch + t)
        if flood:
            # keep at most a few thousand unacknowledged, so the rate is what the broker takes
            while len(pending) > 5000:
                time.sleep(0.005)
        tick += 1
    deadline = time.time() + 120
    while pending and time.time() < deadline:
        time.sleep(0.2)
    c.loop_stop()
    c.disconnect()
    out.send({"acked": acked, "walkers": walker_fixes, "last_tick_s": tick * step})


def episodes(times: list[float]) -> list[tuple[float, float]]:
    """The inside episodes of a walker's acknowledged fixes: (first, last) fix time."""
    out: list[tuple[float, float]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= 0.5:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


# --- console -------------------------------------------------------------------------------
@dataclass
class Console:
    """A WebSocket client that follows the next node to be killed."""

    token: str
    target: Node
    events: int = 0
    last_event: float = 0.0
    resumes: list[float] = field(default_factory=list)  # seconds from a kill to the first event after it
    killed_at: float | None = None
    stop: bool = False

    async def run(self, nodes: list[Node]) -> None:
        from websockets.asyncio.client import connect

        while not self.stop:
            node = self.target
            if not node.alive():
                node = next((n for n in nodes if n.alive()), node)
            try:
                async with connect(node.url.replace("http", "ws") + f"/api/events?token={self.token}", open_timeout=5) as ws:
                    await ws.recv()
                    await ws.send(json.dumps({"subscribe": ["position"]}))
                    while not self.stop:
                        try:
                            await asyncio.wait_for(ws.recv(), 1.0)
                        except TimeoutError:
                            if node is not self.target and self.target.alive():
                                break  # move to the node to be killed next
                            continue
                        now = time.time()
                        self.events += 1
                        self.last_event = now
                        if self.killed_at is not None:
                            self.resumes.append(now - self.killed_at)
                            self.killed_at = None
            except Exception:  # noqa: BLE001 - the node died under us, or is starting
                await asyncio.sleep(0.2)


def console_thread(console: Console, nodes: list[Node]) -> threading.Thread:
    th = threading.Thread(target=lambda: asyncio.run(console.run(nodes)), daemon=True)
    th.start()
    return th


# --- measurement ---------------------------------------------------------------------------
def recording_holes(pg: Postgres, since: datetime, until: datetime) -> dict[str, tuple[list[float], float]]:
    """Per camera, the holes between its segments in [since, until], and the one at the end
    (from its last segment to `until`), in seconds."""
    rows = pg.query(f"SELECT camera_id, started_at, ended_at FROM recordings WHERE kind = 'segment' AND ended_at IS NOT NULL "
                    f"AND ended_at > '{since.isoformat()}' AND started_at < '{until.isoformat()}' ORDER BY camera_id, started_at")
    by_cam: dict[str, list[tuple[datetime, datetime]]] = {}
    for cam, a, b in rows:
        by_cam.setdefault(cam, []).append((a, b))
    out: dict[str, tuple[list[float], float]] = {}
    for cam in (f"cam{i}" for i in range(CAMERAS)):
        covered_to = since
        inner: list[float] = []
        for a, b in by_cam.get(cam, []):
            if a > covered_to:
                inner.append((a - covered_to).total_seconds())
            covered_to = max(covered_to, b)
        out[cam] = inner, (until - covered_to).total_seconds()
    return out


def token_for(node: Node) -> str:
    r = httpx.post(f"{node.url}/api/auth/token", data={"username": "bench", "password": PASSWORD}, timeout=10)
    r.raise_for_status()
    return str(r.json()["access_token"])


def start_nodes(nodes: list[Node]) -> None:
    for n in nodes:
        n.start()
    for n in nodes:
        wait_until(n.serving, 180, f"node {n.name} serving (log: {n.log})")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def faults(quick: bool, root: Path, broker: Broker, pg: Postgres, camera_urls: list[str]) -> None:
    duration = 180.0 if quick else 600.0
    every = 40.0 if quick else 60.0
    broker_at, pg_at = (100.0, 150.0) if quick else (270.0, 450.0)
    base = site(broker, pg, root, camera_urls)
    nodes = make_nodes(root, base, 3)
    subprocess.run([sys.executable, "-m", "gateway.cli", "user", "add", "bench", "--role", "admin", "-c", str(nodes[0].conf), "--password-stdin"],
                   input=f"{PASSWORD}\n".encode(), check=True, capture_output=True)
    start_nodes(nodes)
    tok = token_for(nodes[0])
    time.sleep(15)  # the three nodes share the work out
    console = Console(tok, nodes[0])
    console_thread(console, nodes)
    start = time.time() + 2
    parent, child = mp.Pipe()
    load = mp.get_context("fork").Process(target=publish_load, args=(broker.port, start, duration, TRACKERS * HZ, child))
    load.start()
    print(f"  faults: {duration:.0f} s, 3 nodes, {TRACKERS} trackers at {TRACKERS * HZ}/s, {CAMERAS} cameras; logs in {root}", flush=True)
    kills: list[tuple[float, str]] = []
    victim = 0
    events: list[tuple[float, str]] = [(start + k * every, "kill") for k in range(1, int(duration // every) + 1) if k * every < duration - 10]
    events += [(start + broker_at, "broker"), (start + pg_at, "postgres")]
    for at, what in sorted(events):
        time.sleep(max(0.0, at - time.time()))
        if what == "kill":
            node = nodes[victim % 3]
            console.target = node
            time.sleep(2)  # the console moves to it first
            node.kill()
            console.killed_at = time.time()
            kills.append((time.time(), node.name))
            print(f"  {time.time() - start:6.1f} s  killed {node.name}", flush=True)
            time.sleep(5)
            node.start()
            victim += 1
            console.target = nodes[victim % 3]
        elif what == "broker":
            broker.restart()
            print(f"  {time.time() - start:6.1f} s  broker restarted", flush=True)
        else:
            pg.restart()
            print(f"  {time.time() - start:6.1f} s  PostgreSQL restarted", flush=True)
    sent = parent.recv()
    load.join(30)
    end = datetime.fromtimestamp(start + duration, UTC)

    # drain: until the stored count stops growing for a while
    def stable() -> bool:
        before = pg.query("SELECT count(*) FROM positions")[0][0]
        time.sleep(5)
        return bool(pg.query("SELECT count(*) FROM positions")[0][0] == before)

    wait_until(stable, 300, "positions to stop growing", interval=0)
    console.stop = True
    rows, distinct = pg.query("SELECT count(*), count(DISTINCT (device_id, fix_time)) FROM positions")[0]
    expected_eps: list[tuple[int, float, float]] = []
    for i, times in sent["walkers"].items():
        inside_times = [t for t in times if inside(int(i), t - start)]
        expected_eps.extend((int(i), a, b) for a, b in episodes(inside_times) if b - a >= DWELL_S)
    alerts = pg.query("SELECT device_id, details->>'fix_time' FROM alerts WHERE kind = 'exclusion_breach'")
    matched: dict[tuple[int, float], int] = {}
    stray = 0
    for dev, fix in alerts:
        ft = datetime.fromisoformat(fix).timestamp()
        ep = next(((i, a) for i, a, b in expected_eps if f"t{i}" == dev and a - 0.5 <= ft <= b + 0.5), None)
        if ep is None:
            stray += 1
        else:
            matched[ep] = matched.get(ep, 0) + 1
    dup_alerts = sum(k - 1 for k in matched.values() if k > 1)
    missing = sum(1 for i, a, _ in expected_eps if (i, a) not in matched)
    warm = datetime.fromtimestamp(start, UTC)
    found = recording_holes(pg, warm, end)
    holes = {cam: max([0.0, *inner, tail]) for cam, (inner, tail) in found.items()}
    over10 = sum(1 for inner, _ in found.values() for h in inner if h > 10)
    for n in nodes:
        n.stop()
    worst = max(holes.values()) if holes else float("nan")
    med = sorted(holes.values())[len(holes) // 2] if holes else float("nan")
    resumes = console.resumes
    print()
    print("  fault suite                              figure                     goal        ")
    print(f"  positions stored / acknowledged          {distinct:,} / {sent['acked']:,}   all         {verdict(distinct >= sent['acked'])}")
    print(f"  positions stored twice                   {rows - distinct:,}                          0           {verdict(rows == distinct)}")
    print(f"  geofence alerts raised / expected        {len(alerts) - stray} / {len(expected_eps)} (missing {missing})   exact       "
          f"{verdict(missing == 0 and len(alerts) - stray == len(expected_eps))}")
    print(f"  duplicate alerts / alerts outside an episode  {dup_alerts} / {stray}            0           {verdict(dup_alerts == 0 and stray == 0)}")
    print(f"  longest recording hole per camera        max {worst:.1f} s, median {med:.1f} s    ≤ 10 s      {verdict(worst <= 10)}")
    print(f"  recording holes over 10 s (all cameras)  {over10}")
    print(f"  console: kill → first event elsewhere    {', '.join(f'{r:.1f}' for r in resumes) or 'none measured'} s  ({len(kills)} kills)")
    print(f"  kills: {', '.join(f'{k[1]}@{k[0] - start:.0f}s' for k in kills)}; broker restart at {broker_at:.0f} s, PostgreSQL at {pg_at:.0f} s")


def throughput(quick: bool, root: Path, broker: Broker, pg: Postgres) -> None:
    seconds = 20.0 if quick else 60.0
    print(f"\n  throughput: trackers flooding for {seconds:.0f} s, no cameras, no faults", flush=True)
    results: list[tuple[int, float, float]] = []
    for n in (1, 2, 3):
        pg.query("TRUNCATE positions, alerts, alert_notes, leases, cluster_nodes CASCADE")
        sub = root / f"tp{n}"
        sub.mkdir()
        base = site(broker, pg, sub, [])
        base["devices"] = [d for d in base["devices"] if d["kind"] == "tracker"]
        nodes = make_nodes(sub, base, n)
        start_nodes(nodes)
        time.sleep(10 + 2 * n)  # the work shared out
        pg.query("TRUNCATE positions")
        cpu0 = {x.name: x.cpu_s() for x in nodes}
        parent, child = mp.Pipe()
        t0 = time.time()
        load = mp.get_context("fork").Process(target=publish_load, args=(broker.port, t0, 10_000.0, 0, child, True))
        load.start()
        time.sleep(seconds)
        stored = pg.query("SELECT count(*) FROM positions")[0][0]
        elapsed = time.time() - t0
        used = {x.name: x.cpu_s() - cpu0[x.name] for x in nodes}
        load.kill()
        for x in nodes:
            x.stop()
        rate = stored / elapsed
        per_node = sum(used.values()) / n
        results.append((n, rate, 1000 * sum(used.values()) / max(1, stored)))
        print(f"  {n} node(s): {rate:,.0f} positions/s stored; CPU per node {per_node:.1f} s of {elapsed:.0f} s; "
              f"{1000 * sum(used.values()) / max(1, stored):.2f} CPU s per 1,000 positions (all nodes)", flush=True)
    base_rate, base_cpu = results[0][1], results[0][2]
    for n, rate, cpu in results:
        print(f"  {n} node(s) vs 1: throughput ×{rate / base_rate:.2f}, CPU per position ×{cpu / base_cpu:.2f}")


def main(quick: bool) -> None:
    run(quick, ("faults", "throughput"))


def run(quick: bool, phases: tuple[str, ...]) -> None:
    if shutil.which("mosquitto") is None:
        raise RuntimeError("mosquitto not installed")
    from simulators.media import make_clip
    from simulators.rtsp.server import ThreadedCameraServer

    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    os.chmod(root, 0o755)
    broker, pg = Broker(root), Postgres(root)
    cams: ThreadedCameraServer | None = None
    try:
        broker.start()
        pg.start()
        clip = make_clip(root / "clip.mp4", seconds=4, fps=15, profile="high")
        cams = ThreadedCameraServer({f"cam{i}": clip for i in range(CAMERAS)}, port=0)
        if "faults" in phases:
            faults(quick, root, broker, pg, [cams.url(f"cam{i}") for i in range(CAMERAS)])
        if "throughput" in phases:
            if "faults" not in phases:  # the schema, as the fault run would have left it
                subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade", "-c", str(make_nodes(root, site(broker, pg, root, []), 1)[0].conf)],
                               check=True, capture_output=True)
            throughput(quick, root, broker, pg)
    finally:
        for n in STARTED:  # any node left behind by a failure
            n.kill()
        if cams is not None:
            cams.close()
        pg.stop()
        broker.stop()
        print(f"  (logs and data kept in {root})")
