"""`gateway-sim camera`: simulated RTSP cameras (see simulators/rtsp/server.py).

    gateway-sim camera --port 8554 --path cam1=clip.mp4 --path cam2=pattern:high:640x360:15
    gateway-sim camera --make-clip clip.mp4 --profile high --seconds 10

Scenario runner (`simulators/scenario.py`): `play(spec, ctx)` serves the device's path
`/<id>` on `ctx.rtsp_port` (default 8554; every camera of a scenario shares one server), so the
gateway's camera config points at rtsp://127.0.0.1:<port>/<id>. `params`: `source` (a file or
pattern[:profile[:WxH[:fps]]], default pattern:high), `username`/`password` (for the whole
server), `stall_at_s` + `stall_for_s`, `drop_at_s` (scenario seconds).

Python API for scenario runners and tests: `await serve_cameras({"cam1": "clip.mp4"}, port)`
returns a running server (`.url(name)`, `.stall(name, s)`, `.drop(name)`, `await .close()`);
`ThreadedCameraServer(...)` runs one in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from simulators.rtsp.server import CameraServer, ThreadedCameraServer, serve_cameras

__all__ = ["serve_cameras", "CameraServer", "ThreadedCameraServer", "register", "play"]

_shared: dict[int, tuple[CameraServer, set[str]]] = {}  # port -> (server, paths) within one scenario run


_locks: dict[int, asyncio.Lock] = {}


def _lock(port: int) -> asyncio.Lock:
    return _locks.setdefault(port, asyncio.Lock())


async def play(spec: dict[str, Any], ctx: Any) -> None:
    """Scenario player: serve this camera until the scenario stops (see the module docstring)."""
    from simulators.rtsp.server import make_source

    params = spec.get("params") or {}
    port = ctx.rtsp_port or 8554
    name = spec["id"]
    source = await asyncio.to_thread(make_source, params.get("source", "pattern:high"))
    async with _lock(port):  # cameras of a scenario start together: one server per port
        if port not in _shared:
            server = await serve_cameras({}, port, "127.0.0.1", params.get("username"), params.get("password"))
            _shared[port] = (server, set())
    server, names = _shared[port]
    server.add_path(name, source)
    names.add(name)
    try:
        async def faults() -> None:
            t0 = ctx.scenario_time()
            events = sorted([(float(params["stall_at_s"]), "stall")] if "stall_at_s" in params else []) + \
                ([(float(params["drop_at_s"]), "drop")] if "drop_at_s" in params else [])
            for at, what in sorted(events):
                await ctx.sleep_scenario(max(0.0, at - (ctx.scenario_time() - t0)))
                if ctx.stop.is_set():
                    return
                if what == "stall":
                    server.stall(name, float(params.get("stall_for_s", 10)) / ctx.speed)
                else:
                    server.drop(name)

        task = asyncio.create_task(faults())
        await ctx.stop.wait()
        task.cancel()
    finally:
        server.remove_path(name)
        names.discard(name)
        if not names:
            _shared.pop(port, None)
            await server.close()


def register(sub: Any) -> None:
    p = sub.add_parser("camera", help="RTSP cameras serving files (no encoding) or a clock pattern",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--path", action="append", default=[], metavar="NAME=SOURCE",
                   help="a path and its source: an H.264 file (MP4 or Annex B) or pattern[:profile[:WxH[:fps]]] (repeatable)")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--stall-every", type=float, default=0, metavar="S", help="every S seconds stop sending on all paths ...")
    p.add_argument("--stall-for", type=float, default=5, metavar="S", help="... for S seconds (connections stay open)")
    p.add_argument("--stagger", type=float, default=0, metavar="S",
                   help="start each path at a random offset up to S seconds, as independent cameras are "
                        "(default 0: all paths send their frames in step)")
    p.add_argument("--drop-every", type=float, default=0, metavar="S", help="every S seconds close all connections")
    p.add_argument("--make-clip", metavar="FILE", help="write a test clip (libx264, burned-in clock) and exit")
    p.add_argument("--profile", default="high", choices=("baseline", "main", "high"))
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--size", default="320x240")
    p.add_argument("--fps", type=int, default=15)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.make_clip:
        from simulators.media import make_clip

        w, h = (int(x) for x in args.size.split("x"))
        print(make_clip(args.make_clip, args.seconds, args.fps, (w, h), args.profile))
        return 0
    paths = dict(p.split("=", 1) for p in args.path) or {"cam1": f"pattern:{args.profile}:{args.size}:{args.fps}"}
    return asyncio.run(_serve(paths, args))


async def _serve(paths: dict[str, str], args: argparse.Namespace) -> int:
    server = await serve_cameras(paths, args.port, args.host, args.username, args.password, args.stagger)
    for name in paths:
        print(f"serving {server.url(name)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def faults() -> None:
        while True:
            every = min(x for x in (args.stall_every, args.drop_every) if x > 0)
            await asyncio.sleep(every)
            for name in paths:
                if args.stall_every:
                    server.stall(name, args.stall_for)
                if args.drop_every:
                    server.drop(name)

    task = asyncio.create_task(faults()) if (args.stall_every or args.drop_every) else None
    await stop.wait()
    if task:
        task.cancel()
    await server.close()
    return 0
