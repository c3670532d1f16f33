"""Outbox benchmarks (alert changes delivered to a channel), against a baseline of the same run.

1. Latency: alerts opened at 100/s for 10 s (3 s with --quick), each delivered through the
   outbox (staged in the alert's transaction, routed, sent by the sender) to a local
   webhook receiver in another process; p50/p99 from the alert's opened_at to its arrival.
2. Throughput: N alerts opened as fast as the alert service takes them, until the last one
   has arrived, against a plain HTTP POST loop of N bodies of the same size from the same
   process to the same receiver, with the sender's concurrency (4 in flight): the price of
   durability (the rows, the routing, the marks) as a ratio.

The gateway's core runs in this process on SQLite (the default store) in a temp folder;
the receiver is an aiohttp server in a child process, so it does not share the loop."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import httpx

RECEIVER = textwrap.dedent('''
    import json, sys, time
    from aiohttp import web
    got = []
    async def hook(request):
        got.append((time.time(), await request.read()))
        return web.Response(status=204)
    async def stats(request):
        out = []
        for t, b in got:
            d = json.loads(b)
            out.append([t, d.get("opened_at"), d.get("idempotency_key")])
        return web.json_response(out)
    async def reset(request):
        got.clear()
        return web.json_response({})
    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
''')


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_count(c: httpx.AsyncClient, n: int, timeout: float) -> list[list[object]]:
    deadline = time.monotonic() + timeout
    while True:
        got = (await c.get("/stats")).json()
        if len(got) >= n:
            return got  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(got)} of {n} deliveries arrived in {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def _run(quick: bool, tmp: Path, port: int) -> None:
    from config.loader import load_config_text
    from gateway.core import Core

    cfg = load_config_text(json.dumps({
        "gateway": {"data_dir": str(tmp / "data")},
        "delivery": {"channels": [{"name": "bench", "kind": "webhook", "url": f"http://127.0.0.1:{port}/hook"}],
                     "rules": [{"channels": ["bench"]}]},
    }), "<bench>", env={})
    core = Core.create(cfg)
    await core.start()
    alerts = core.alerts
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        try:
            # 2. throughput: N changes staged while the sender is not running yet (a backlog,
            # as after an outage), then drained, against a plain POST loop of N bodies
            m = 300 if quick else 2000
            t0 = time.monotonic()
            for i in range(m):
                await alerts.raise_alert("sos", device_id=f"tp-{i}")
            raised = m / (time.monotonic() - t0)
            t0 = time.monotonic()
            await core.cluster.begin()  # the singletons (the outbox sender among them) start here, as in `gateway run`
            await _wait_count(c, m, 300)
            drained = m / (time.monotonic() - t0)
            await c.post("/reset")
            body = json.dumps({"change": "opened", "id": 1, "kind": "sos", "opened_at": datetime.now().astimezone().isoformat(),
                               "text": "x" * 300, "idempotency_key": "1:bench"}).encode()
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(m):
                queue.put_nowait(i)

            async def worker() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    r = await c.post("/hook", content=body, headers={"Content-Type": "application/json"})
                    r.raise_for_status()

            t0 = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(cfg.delivery.concurrency)))
            plain = m / (time.monotonic() - t0)
            print(f"throughput ({m} alerts): the outbox drains a backlog at {drained:.0f}/s, a plain POST loop sends {plain:.0f}/s: "
                  f"ratio {drained / plain:.2f} (opening the alerts: {raised:.0f}/s)")
            await c.post("/reset")

            # 1. latency at 100 alerts/s, the sender running
            seconds = 3 if quick else 10
            n, rate = 100 * seconds, 100
            t0 = time.monotonic()
            for i in range(n):
                await alerts.raise_alert("sos", device_id=f"lat-{i}")
                ahead = t0 + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            offered = n / (time.monotonic() - t0)
            got = await _wait_count(c, n, 120)
            lat = sorted((t - datetime.fromisoformat(str(opened)).timestamp()) * 1000 for t, opened, _ in got)  # type: ignore[arg-type]
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            keys = {k for _, _, k in got}
            print(f"latency at {offered:.0f} alerts/s offered ({n} alerts): p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lat[-1]:.0f} ms; "
                  f"{len(got)} messages, {len(keys)} distinct keys")

        finally:
            await core.stop()


def main(quick: bool = False) -> None:
    port = _port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the receiver did not start") from None
                time.sleep(0.1)
        with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
            asyncio.run(_run(quick, Path(tmp), port))
    finally:
        proc.terminate()
        proc.wait(10)
