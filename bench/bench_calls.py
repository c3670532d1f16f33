"""Remote video sessions: the gateway's CPU per party while it mixes, relays and records, and
the latency it adds between one party's camera and the composite another party sees.

One `gateway run` process (SQLite in a temporary folder), so its CPU (read from /proc) is its
own; the parties are aiortc peers in this process, each sending a real photo
(../shared/data/faces, letterboxed to 640x480) at 10 fps and a tone, as tests/calls do.

CPU: the gateway with no session, with a session set up and recording but nobody connected,
then with 1, 2, 3 and 4 parties connected (the officer through /api/calls/{id}/join, the
others through their join links), each over the same window.

Latency: one party stamps a frame counter into its picture, a row of 16 black/white blocks
40 px wide across the top (two sync bits, twelve counter bits, two parity bits) that survive
VP8 and the scaling into a tile (the tile is the picture at 0.45: 18 px blocks). Another party
reads the counter back from the composite it receives (any tile whose sync and parity hold),
and the time from the stamped frame leaving the sender's track to its first appearance in
the composite is the latency. Baseline in the same run: the same stamped sender to a direct
aiortc peer in this process (no gateway), read back the same way; the session's added
latency is the difference of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import httpx
import numpy as np
import yaml
from aiortc import RTCPeerConnection

from bench.bench_cameras import cpu_s, free_port, wait_port
from simulators.call_party import Party, Picture, Tone, consume, letterboxed

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
PHOTOS = ["obama.jpg", "biden.jpg", "obama2.jpg", "obama3.jpg"]
W, H, FPS = 640, 480, 10
BLOCK = 40  # 16 blocks across the picture's top
NBITS = 16
COUNTER_BITS = 12
PASSWORD = "bench-password-1"


# -- the picture and its counter ----------------------------------------------

def code_bits(counter: int) -> list[int]:
    c = [(counter >> i) & 1 for i in range(COUNTER_BITS)]
    return [1, 0, *c, sum(c[0::2]) & 1, sum(c[1::2]) & 1]


def stamp(rgb: np.ndarray, counter: int) -> np.ndarray:
    out = rgb.copy()
    for i, b in enumerate(code_bits(counter)):
        out[:BLOCK, i * BLOCK:(i + 1) * BLOCK] = 255 if b else 0
    return out


def read_code(gray: np.ndarray, ox: int, oy: int, scale: float) -> int | None:
    """The counter stamped into a picture shown at (ox, oy) scaled by `scale`, if the code holds."""
    half = max(1, int(BLOCK * scale / 4))
    cy = oy + int(BLOCK * scale / 2)
    if cy - half < 0 or cy + half > gray.shape[0]:
        return None
    bits = []
    for i in range(NBITS):
        cx = ox + int((i + 0.5) * BLOCK * scale)
        if cx + half > gray.shape[1]:
            return None
        bits.append(1 if gray[cy - half:cy + half, cx - half:cx + half].mean() > 128 else 0)
    counter = sum(b << i for i, b in enumerate(bits[2:2 + COUNTER_BITS]))
    return counter if bits == code_bits(counter) else None


def tile_origins() -> list[tuple[int, int, float]]:
    """Where a 640x480 party picture lands in the composite, for each tile (as Room draws it)."""
    from streams.call_room import Room, fit

    room = Room(W, H, FPS, 4)
    out = []
    for i in range(4):
        x, y, tw, th = room.tile(i)
        label_h = max(14, th // 12)
        fw, fh = fit(W, H, tw - 4, th - label_h - 4)
        out.append((x + (tw - fw) // 2, y + (th - label_h - fh) // 2, fw / W))
    return out



class Reader:
    """Reads the stamped counter back from every received picture: first arrival per counter."""

    def __init__(self, sent: dict[int, float], origins: list[tuple[int, int, float]]) -> None:
        self.sent, self.origins = sent, origins
        self.latency: list[tuple[float, float]] = []  # (when, seconds)
        self.frames = 0
        self._seen: dict[int, float] = {}

    def frame(self, frame: av.VideoFrame) -> None:
        now = time.monotonic()
        self.frames += 1
        gray = frame.to_ndarray(format="gray")
        for ox, oy, scale in self.origins:
            counter = read_code(gray, ox, oy, scale)
            if counter is None:
                continue
            at = self.sent.get(counter)
            # first appearance of this send (a counter comes round again after 409 s)
            if at is not None and self._seen.get(counter) != at and 0 <= now - at < 5:
                self._seen[counter] = at
                self.latency.append((now, now - at))
            return

    def between(self, t0: float, t1: float) -> list[float]:
        return [d for at, d in self.latency if t0 <= at < t1]


def stamper(sent: dict[int, float]) -> Callable[[int, np.ndarray], np.ndarray]:
    """Stamps each frame's counter into the picture, keeping when it was sent."""
    def on_send(n: int, rgb: np.ndarray) -> np.ndarray:
        counter = n % (1 << COUNTER_BITS)
        sent[counter] = time.monotonic()
        return stamp(rgb, counter)
    return on_send


def party(rgb: np.ndarray, hz: float, sent: dict[int, float] | None = None, reader: Reader | None = None) -> Party:
    return Party(rgb, hz, on_send=stamper(sent) if sent is not None else None, on_composite=reader.frame if reader is not None else (lambda f: None))


async def join(p: Party, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    (await p.join(client, path, headers)).raise_for_status()
    for _ in range(300):
        if p.composites > 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no composite at the party joined through {path} within 15 s ({p.pc.connectionState})")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) * 1000


def lat_line(xs: list[float], sent: int) -> str:
    if not xs:
        return "no frames read back"
    return f"median {statistics.median(xs) * 1000:.0f} ms, p95 {pct(xs, 95):.0f} ms over {len(xs)} frames ({len(xs) / max(1, sent):.0%} of those sent)"


# -- the baseline: the same sender to a direct peer -----------------------------------------

async def direct(rgb: np.ndarray, seconds: float) -> tuple[list[float], int]:
    sent: dict[int, float] = {}
    reader = Reader(sent, [(0, 0, 1.0)])
    a, b = RTCPeerConnection(), RTCPeerConnection()
    cam = Picture(rgb, stamper(sent))
    a.addTrack(cam)
    a.addTrack(Tone(440))
    tasks: list[asyncio.Task[None]] = []
    b.on("track", lambda t: tasks.append(asyncio.ensure_future(consume(t, reader.frame if t.kind == "video" else (lambda f: None)))))
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    try:
        for _ in range(300):
            if reader.frames:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        t0, n0 = time.monotonic(), cam.n
        await asyncio.sleep(seconds)
        return reader.between(t0, time.monotonic()), cam.n - n0
    finally:
        for t in tasks:
            t.cancel()
        await a.close()
        await b.close()


# -- the session ------------------------------------------------------------------------

def proc_threads(pid: int) -> dict[int, float]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out[int(task.name)] = cpu_s_path(task / "stat")
    return out


def cpu_s_path(stat: Path) -> float:
    from bench.bench_cameras import TICK

    f = stat.read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


async def session(port: int, token: str, pid: int, photos: list[np.ndarray], seconds: float) -> None:
    admin = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, float, float, dict[str, float]]] = []  # label, % of a core, elapsed, per-thread %

    parties: list[Party] = []

    async def window(label: str) -> None:
        c0, th0, t0, b0 = cpu_s(pid), proc_threads(pid), time.monotonic(), time.process_time()
        got0 = parties[0].composites if parties else 0
        await asyncio.sleep(seconds)
        c1, th1, el, b1 = cpu_s(pid), proc_threads(pid), time.monotonic() - t0, time.process_time()
        got = f", the officer received {(parties[0].composites - got0) / el:.1f} composites/s" if parties else ""
        main = (th1.get(pid, 0) - th0.get(pid, 0)) / el * 100
        others = sorted(((th1[t] - th0.get(t, 0)) / el * 100 for t in th1 if t != pid), reverse=True)
        rows.append((label, (c1 - c0) / el * 100, el, {"main": main, "others": sum(others), "top": others[0] if others else 0.0,
                                                        "threads": float(len(th1))}))
        print(f"  {label}: gateway {(c1 - c0) / el * 100:.1f}% of a core over {el:.0f} s "
              f"(event loop thread {main:.1f}%, {len(others)} other threads {sum(others):.1f}%, busiest {others[0] if others else 0:.1f}%)"
              f"{got}; this process (the parties) {(b1 - b0) / el * 100:.0f}%, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
              flush=True)

    # direct baseline, in the idle gateway's window
    print("  the idle gateway's window runs the direct (no gateway) latency baseline in this process", flush=True)
    idle_task = asyncio.create_task(window("gateway, no session"))
    direct_lat, direct_sent = await direct(photos[1], seconds)
    await idle_task

    sent: dict[int, float] = {}
    reader = Reader(sent, tile_origins())
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        made = await c.post("/api/calls", headers=admin, json={
            "kind": "talk", "checks": False,
            "parties": [{"role": "link", "label": f"party {i}"} for i in (2, 3, 4)]})
        made.raise_for_status()
        sid = made.json()["session"]["id"]
        tokens = [link["url"].split("#", 1)[1] for link in made.json()["links"]]
        await asyncio.sleep(1.0)
        await window("session recording, nobody connected")
        lat_stage: dict[int, tuple[list[float], int]] = {}
        try:
            for k in range(1, 5):
                # the officer (tile 0) reads the counter the second party (tile 1) stamps
                p = party(photos[k - 1], 300 + 100 * k, sent if k == 2 else None, reader if k == 1 else None)
                parties.append(p)
                if k == 1:
                    await join(p, c, f"/api/calls/{sid}/join", admin)
                else:
                    await join(p, c, "/api/call-link/join", {"X-Call-Token": tokens[k - 2]})
                await asyncio.sleep(2.0)
                t0 = time.monotonic()
                n0 = len(sent)
                await window(f"{k} part{'y' if k == 1 else 'ies'}")
                if k >= 2:
                    s0 = sum(1 for at in sent.values() if t0 <= at < time.monotonic())
                    lat_stage[k] = (reader.between(t0, time.monotonic()), s0 or len(sent) - n0)
        finally:
            for p in parties:
                await p.close()
            ended = await c.post(f"/api/calls/{sid}/hangup", headers=admin)
            if ended.status_code != 200:
                print(f"  hangup: {ended.status_code} {ended.text[:200]}")

    idle = rows[0][1]
    recording = rows[1][1]
    print(f"CPU (% of one core, gateway process, {FPS} fps composites of {W}x{H}, recording on):")
    print(f"  no session {idle:.1f}%; session recording with nobody connected {recording:.1f}% (+{recording - idle:.1f}%)")
    prev = recording
    for label, cpu, _, _ in rows[2:]:
        print(f"  {label}: {cpu:.1f}% total, +{cpu - prev:.1f}% for this party, {(cpu - recording) / int(label[0]):.1f}% per party above the empty session")
        prev = cpu
    four = rows[-1][1]
    print(f"  -> 4 parties: {four - idle:.1f}% of a core above no session, {(four - idle) / 4:.1f}% per party "
          f"(one live-view viewer: 0.30-0.55% of a core, docs/cameras.md, not measured here)")
    print("latency (stamped frame leaving the sender's track -> read back at the receiver):")
    print(f"  direct aiortc peer, no gateway: {lat_line(direct_lat, direct_sent)}")
    for k, (xs, n) in lat_stage.items():
        print(f"  session, {k} parties (party 2 -> the officer's composite): {lat_line(xs, n)}")
        if xs and direct_lat:
            add = statistics.median(xs) - statistics.median(direct_lat)
            print(f"    -> added by the session: median {add * 1000:.0f} ms ({statistics.median(xs) / statistics.median(direct_lat):.1f}x direct), "
                  f"p95 {pct(xs, 95) - pct(direct_lat, 95):.0f} ms (live view adds median 68-70 ms, docs/cameras.md)")


def recorded(data: Path) -> str:
    files = sorted(data.rglob("calls/**/*.mp4"))
    if not files:
        return "no recording found"
    with av.open(str(files[-1])) as c:
        v = c.streams.video[0]
        frames = sum(1 for p in c.demux(v) if p.size)
        secs = float(c.duration or 0) / 1_000_000
    return f"recording {files[-1].name}: {frames} video frames over {secs:.1f} s ({frames / max(secs, 0.1):.1f} fps, {FPS} made per second)"


def main(quick: bool) -> None:
    seconds = 4.0 if quick else 20.0
    photos = [letterboxed(FACES / p) for p in PHOTOS]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "gw"
        conf = work / "gw.yaml"
        port = free_port()
        conf.write_text(yaml.safe_dump({"gateway": {"data_dir": str(data), "port": port, "log_level": "WARNING"}, "devices": []}))
        subprocess.run([sys.executable, "-m", "gateway.cli", "user", "add", "bench", "--role", "admin", "--password-stdin", "-c", str(conf)],
                       input=PASSWORD.encode() + b"\n", check=True, capture_output=True)
        gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)])
        try:
            wait_port(port)
            token = httpx.post(f"http://127.0.0.1:{port}/api/auth/token", data={"username": "bench", "password": PASSWORD}).json()["access_token"]
            time.sleep(1.0)
            asyncio.run(session(port, token, gw.pid, photos, seconds))
        finally:
            gw.terminate()
            try:
                gw.wait(60)
            except subprocess.TimeoutExpired:
                gw.kill()
        with contextlib.suppress(Exception):
            print(f"  {recorded(data)}")
