"""Cameras benchmark: recording CPU against a plain PyAV/FFmpeg stream copy, recording
continuity, live-view CPU per viewer and latency added by the WebRTC relay.

Processes: the simulator (`gateway-sim camera`, files served by packet copy), the baseline
recorder (PyAV demux + `-c copy`-equivalent mux, one thread per camera, the same fragmented
MP4 settings), and `gateway run`. The baseline and the gateway record the same cameras at
the same time, and CPU is read from /proc for each over the same window: what disturbs
the machine disturbs both, so the ratio holds steady where two runs one after the other
differed by a quarter.

The simulator starts each camera at a random offset within a second (`--stagger`), as
independent cameras are. With every camera's frames in the same millisecond, 32 demux
threads queue for Python's GIL on every frame; no site's cameras run in step, but that
worst case is measured too, for a minute, and printed beside.

Latency: the simulator's pattern burns a clock into every frame, so every decoded frame is
unique; the same bitstream decoded from the RTSP source and from WHEP gives bit-identical
frames, matched by hash, and the latency added is the difference of their arrival times.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import yaml

TICK = os.sysconf("SC_CLK_TCK")

BASELINE = textwrap.dedent('''
    import av, sys, threading, time
    urls, out, seconds = sys.argv[3:], sys.argv[1], float(sys.argv[2])
    def rec(i, url):
        # read timeout from FFmpeg's socket option, as `ffmpeg -c copy` has it: PyAV's own read
        # timeout is a Python callback on every I/O call, which would make the baseline slow
        src = av.open(url, options={"rtsp_transport": "tcp", "timeout": "5000000"}, timeout=(5, None))
        v = src.streams.video[0]
        dst = av.open(f"{out}/base{i}.mp4", "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
        o = dst.add_stream_from_template(v)
        end, last = time.time() + seconds, -1
        for p in src.demux(v):
            if time.time() > end: break
            if p.size == 0: continue
            if p.pts is None: p.pts = last + 1
            p.dts = max(p.pts, last + 1); last = p.dts
            p.stream = o
            dst.mux(p)
        dst.close(); src.close()
    ts = [threading.Thread(target=rec, args=(i, u)) for i, u in enumerate(urls)]
    [t.start() for t in ts]; [t.join() for t in ts]
''')


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def main(quick: bool) -> None:
    cams = 4 if quick else 32
    seconds = 20 if quick else 600
    segment_s = 10 if quick else 60  # the same in both runs: a rotation costs more than a minute of packets
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from simulators.media import make_clip

        clip = make_clip(work / "clip.mp4", seconds=10, fps=15, size=(640, 360), profile="high")
        for stagger, secs in ((1.0, seconds), (0.0, 20 if quick else 60)):
            with simulator([f"c{i}={clip}" for i in range(cams)] + ["live=pattern:high:320x240:15"], stagger) as (sim, port):
                urls = [f"rtsp://127.0.0.1:{port}/c{i}" for i in range(cams)]
                record(work / f"s{stagger}", urls, secs, segment_s, sim, "cameras out of step" if stagger else "cameras in step (worst case)")
                if stagger:
                    live(work, f"rtsp://127.0.0.1:{port}/live", quick)


@contextlib.contextmanager
def simulator(paths: list[str], stagger: float) -> Iterator[tuple[subprocess.Popen, int]]:  # type: ignore[type-arg]
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "simulators.cli", "camera", "--port", str(port), "--stagger", str(stagger),
                            *(f"--path={p}" for p in paths)], stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(stagger)  # every path started
        yield sim, port
    finally:
        sim.terminate()
        sim.wait(10)


def record(work: Path, urls: list[str], seconds: float, segment_s: int, sim: subprocess.Popen, label: str) -> None:  # type: ignore[type-arg]
    n = len(urls)
    (work / "base").mkdir(parents=True)
    data = work / "gw"
    settle = 8.0  # both connected and past their start-up
    base = subprocess.Popen([sys.executable, "-c", BASELINE, str(work / "base"), str(settle + seconds + 60), *urls])
    # the same gateway with no camera beside: what it spends whatever it records (HTTP,
    # alert escalation, watchdogs of other devices), so that the cost of a camera shows
    gws = [gateway(work / "gw", [{"id": f"c{i}", "kind": "camera", "url": u} for i, u in enumerate(urls)], segment_s),
           gateway(work / "idle", [], segment_s)]
    procs = [sim, base, *(g for g, _ in gws)]
    try:
        for _, port in gws:
            wait_port(port)
        time.sleep(settle)
        c0, t0 = [cpu_s(p.pid) for p in procs], time.monotonic()
        time.sleep(seconds)
        c1, elapsed = [cpu_s(p.pid) for p in procs], time.monotonic() - t0
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a recorder ended during the measurement ({[p.returncode for p in procs]})")
    finally:
        base.kill()
        base.wait(10)
        for g, _ in gws:
            g.terminate()
        for g, _ in gws:
            try:
                g.wait(120)  # 32 recorders close and hash their open segments on the way out
            except subprocess.TimeoutExpired:
                g.kill()
    sim_pct, base_pct, gw_pct, idle_pct = ((b - a) / elapsed * 100 for a, b in zip(c0, c1, strict=True))
    print(f"[{label}] simulator: {n} cameras served by packet copy, {sim_pct:.1f}% of a core; "
          f"gateway with no camera {idle_pct:.2f}%")
    print(f"[{label}] recording CPU per camera over {elapsed:.0f} s: gateway {gw_pct / n:.3f}% of a core "
          f"({(gw_pct - idle_pct) / n:.3f}% above the gateway with no camera), PyAV stream copy baseline {base_pct / n:.3f}% "
          f"-> ratio {gw_pct / base_pct:.2f}x, {(gw_pct - idle_pct) / base_pct:.2f}x above no camera (goal <= 1.2x)")
    continuity(data, label)


def gateway(data: Path, devices: list[dict[str, str]], segment_s: int) -> tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    conf = data.with_suffix(".yaml")
    port = free_port()
    conf.write_text(yaml.safe_dump({
        "gateway": {"data_dir": str(data), "port": port, "log_level": "WARNING"},
        "devices": devices,
        "recording": {"segment_s": segment_s, "min_free_bytes": 0},
    }))
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)]), port


def continuity(data: Path, label: str) -> None:
    import sqlite3

    db = next(data.glob("*.db"), None) or next(data.rglob("*.sqlite*"), None)
    if db is None:
        print("continuity: database not found")
        return
    con = sqlite3.connect(db)
    gaps = con.execute("select camera_id, duration_s from recordings where kind='gap'").fetchall()
    rows = con.execute("select camera_id, started_at, ended_at from recordings where kind='segment' order by camera_id, started_at").fetchall()
    from datetime import datetime

    worst = 0.0
    prev: dict[str, str] = {}
    for cam, st, en in rows:
        if cam in prev and prev[cam] and st:
            d = (datetime.fromisoformat(st[:26]) - datetime.fromisoformat(prev[cam][:26])).total_seconds()
            worst = max(worst, d)
        prev[cam] = en
    print(f"[{label}] continuity: {len(rows)} segments, {len(gaps)} gaps recorded, largest hole between consecutive segments {worst:.2f} s (goal <= 1 s)")


def live(work: Path, url: str, quick: bool) -> None:
    data = work / "gwlive"
    conf = work / "live.yaml"
    port = free_port()
    conf.write_text(yaml.safe_dump({"gateway": {"data_dir": str(data), "port": port, "log_level": "WARNING"},
                                    "devices": [{"id": "live", "kind": "camera", "url": url, "record": False}]}))
    env = {**os.environ}
    subprocess.run([sys.executable, "-m", "gateway.cli", "user", "add", "bench", "--role", "admin", "--password-stdin", "-c", str(conf)],
                   input=b"bench-password-1\n", check=True, capture_output=True)
    gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)], env=env)
    try:
        wait_port(port)
        token = httpx.post(f"http://127.0.0.1:{port}/api/auth/token", data={"username": "bench", "password": "bench-password-1"}).json()["access_token"]
        asyncio.run(_live(port, token, url, gw.pid, 3 if quick else 10, 10 if quick else 30))
    finally:
        gw.terminate()
        gw.wait(30)


async def _viewer(port: int, token: str, arrivals: dict[str, float] | None, stop: asyncio.Event) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from streams.live import ensure_codec

    # aiortc offers only Constrained Baseline; its FFmpeg decoder plays High, so say so in the offer
    ensure_codec({"level-asymmetry-allowed": "1", "packetization-mode": "1", "profile-level-id": "64001f"})
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    got: asyncio.Future = asyncio.get_running_loop().create_future()  # type: ignore[type-arg]
    pc.on("track", lambda t: got.done() or got.set_result(t))
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{port}/api/cameras/live/whep", content=pc.localDescription.sdp,
                         headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
    r.raise_for_status()
    await pc.setRemoteDescription(RTCSessionDescription(r.text, "answer"))
    track = await got
    try:
        while not stop.is_set():
            f = await asyncio.wait_for(track.recv(), 10)
            if arrivals is not None:
                arrivals[hashlib.sha1(f.to_ndarray(format="gray").tobytes()).hexdigest()] = time.time()
    finally:
        await pc.close()


def _direct(url: str, arrivals: dict[str, float], stop: list[bool]) -> None:
    c = av.open(url, options={"rtsp_transport": "tcp", "fflags": "nobuffer"}, timeout=(5, 5))
    for f in c.decode(video=0):
        arrivals[hashlib.sha1(f.to_ndarray(format="gray").tobytes()).hexdigest()] = time.time()
        if stop[0]:
            break
    c.close()


async def _live(port: int, token: str, url: str, pid: int, viewers: int, seconds: float) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(300):
            cams = (await c.get(f"http://127.0.0.1:{port}/api/cameras", headers={"Authorization": f"Bearer {token}"})).json()
            if cams[0]["state"] == "online":
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"live camera did not come online: {cams}")
    # latency: one WHEP viewer and one direct RTSP reader decode the same frames
    stop, stop_flag = asyncio.Event(), [False]
    via_whep: dict[str, float] = {}
    direct: dict[str, float] = {}
    th = asyncio.create_task(asyncio.to_thread(_direct, url, direct, stop_flag))
    v = asyncio.create_task(_viewer(port, token, via_whep, stop))
    await asyncio.sleep(seconds)
    stop.set()
    stop_flag[0] = True
    for e in await asyncio.gather(v, th, return_exceptions=True):
        if isinstance(e, Exception):
            print(f"latency reader failed: {e!r}")
    lat = [via_whep[k] - direct[k] for k in via_whep.keys() & direct.keys()]
    if lat:
        print(f"live latency added over reading RTSP directly: median {statistics.median(lat) * 1000:.0f} ms, "
              f"p95 {sorted(lat)[int(len(lat) * 0.95)] * 1000:.0f} ms over {len(lat)} frames (goal <= 150 ms)")
    else:
        print("live latency: no frames matched")
    # CPU per additional viewer
    c0 = cpu_s(pid)
    await asyncio.sleep(seconds)
    idle = (cpu_s(pid) - c0) / seconds
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_viewer(port, token, None, stop)) for _ in range(viewers)]
    await asyncio.sleep(3)
    c0 = cpu_s(pid)
    await asyncio.sleep(seconds)
    busy = (cpu_s(pid) - c0) / seconds
    stop.set()
    failed = [e for e in await asyncio.gather(*tasks, return_exceptions=True) if isinstance(e, Exception)]
    if failed:
        print(f"{len(failed)} viewers failed: {failed[0]!r}")
    print(f"live CPU: gateway {idle * 100:.1f}% of a core with 0 viewers, {busy * 100:.1f}% with {viewers} "
          f"-> {(busy - idle) * 100 / viewers:.2f}% per additional viewer (goal <= 2%)")
