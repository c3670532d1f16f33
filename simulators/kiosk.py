"""`gateway-sim kiosk`: a self-service check-in kiosk speaking the gateway's kiosk protocol.

It sends heartbeats (state, printer, paper, software version), kiosk events
with client `event_id`s (buffered while "offline" and replayed, whole buffer,
when it comes back, as a real kiosk does after an outage) and check-ins: a
burst of frames from image files or sampled from a clip, or a spoof (one still
frame repeated), or an answer to a liveness challenge made from one photo.

    gateway-sim kiosk --url http://127.0.0.1:8080 --key dk_... --person p-1 \\
        --frames a.jpg b.jpg c.jpg --spoof a.jpg --offline 20:40 --duration 60

Python API (for the scenario runner and tests)::

    report = await run_kiosk(url, key, params, speed=10.0, stop=event)

`params` (all optional):
    duration_s: 60            scenario seconds to run
    heartbeat_interval_s: 30  scenario seconds between heartbeats
    event_interval_s: 10      one kiosk event (door_opened / receipt_printed ...) this often
    offline: [[start_s, end_s], ...]   no traffic; events are buffered and replayed after
    software_version: "sim-1.0", paper: "ok"
    checkins: [{"at_s": 5, "person_id": "p-1", "frames": [path, ...]}       # live burst
               {"at_s": 9, "person_id": "p-1", "clip": path, "n": 5}        # frames sampled from a clip
               {"at_s": 12, "person_id": "p-1", "spoof": path, "n": 4}      # the same still frame n times
               {"at_s": 15, "person_id": "p-1", "challenge": path}]         # asks for a liveness challenge and answers it
                                                                            # with frames made from the photo (simulators/challenge_frames.py)
`report` lists every HTTP answer: heartbeats, event batches (applied/duplicates), check-in results.
Scenario time runs `speed` times faster than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)
EVENT_KINDS = ("door_opened", "screen_touched", "receipt_printed", "session_ended")


def clip_frames(path: str | Path, n: int = 5) -> list[bytes]:
    """n JPEG frames spread over a video file (PyAV)."""
    import av

    with av.open(str(path)) as c:
        frames = [f.to_image() for f in c.decode(video=0)]
    if not frames:
        raise ValueError(f"{path}: no video frames")
    step = max(1, len(frames) // n)
    out = []
    for im in frames[::step][:n]:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def checkin_frames(spec: dict[str, Any]) -> list[bytes]:
    if "frames" in spec:
        return [Path(p).read_bytes() for p in spec["frames"]]
    if "clip" in spec:
        return clip_frames(spec["clip"], int(spec.get("n", 5)))
    if "spoof" in spec:
        return [Path(spec["spoof"]).read_bytes()] * int(spec.get("n", 4))
    raise ValueError("a check-in needs frames, clip or spoof")


class Kiosk:
    def __init__(self, client: httpx.AsyncClient, key: str, params: dict[str, Any]) -> None:
        self.client, self.params = client, params
        self.headers = {"X-Device-Key": key}
        self.buffer: list[dict[str, Any]] = []  # events not yet acknowledged by the gateway
        self.sent: list[dict[str, Any]] = []  # acknowledged ones, replayed after an outage
        self.was_offline = False
        self.seq = 0
        self.report: dict[str, list[Any]] = {"heartbeats": [], "events": [], "checkins": []}

    def offline(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.params.get("offline", []))

    async def heartbeat(self) -> None:
        body = {"state": "ok", "printer": "ok", "paper": self.params.get("paper", "ok"), "software_version": self.params.get("software_version", "sim-1.0")}
        r = await self.client.post("/api/kiosk/heartbeat", json=body, headers=self.headers)
        self.report["heartbeats"].append(r.status_code)

    def event(self, t: float) -> None:
        self.seq += 1
        from datetime import UTC, datetime

        self.buffer.append({"event_id": f"ev-{self.seq:06d}", "kind": EVENT_KINDS[self.seq % len(EVENT_KINDS)], "occurred_at": datetime.now(UTC).isoformat(), "payload": {"t": t}})

    async def flush(self) -> None:
        if not self.buffer:
            return
        # After an outage the kiosk cannot know which answers were lost, so it
        # replays its recent history with the buffer; the gateway skips known ids.
        batch = (self.sent[-50:] if self.was_offline else []) + self.buffer
        r = await self.client.post("/api/kiosk/events", json={"events": batch}, headers=self.headers)
        if r.status_code == 200:
            self.report["events"].append(r.json())
            self.sent += self.buffer
            self.buffer = []
            self.was_offline = False

    async def checkin(self, spec: dict[str, Any]) -> dict[str, Any]:
        data = {"person_id": spec["person_id"]}
        if "challenge" in spec:
            from simulators.challenge_frames import answer

            c = await self.client.post("/api/kiosk/challenges", json={"person_id": spec["person_id"]}, headers=self.headers)
            if c.status_code != 200:
                out = {"status": c.status_code, **c.json(), "spec": {k: v for k, v in spec.items() if k in ("person_id", "at_s")} | {"spoof": False}}
                self.report["checkins"].append(out)
                return out
            ch = c.json()
            data["challenge_id"] = ch["challenge_id"]
            frames = await asyncio.to_thread(answer, spec["challenge"], ch["kind"], ch["frames_wanted"])
        else:
            frames = await asyncio.to_thread(checkin_frames, spec)
        files = [("frames", (f"f{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
        r = await self.client.post("/api/kiosk/checkins", data=data, files=files, headers=self.headers, timeout=60)
        out = {"status": r.status_code, **(r.json() if r.headers.get("content-type", "").startswith("application/json") else {})}
        out["spec"] = {k: v for k, v in spec.items() if k in ("person_id", "at_s")} | {"spoof": "spoof" in spec}
        self.report["checkins"].append(out)
        return out


async def run_kiosk(url: str, key: str, params: dict[str, Any] | None = None, speed: float = 1.0, stop: asyncio.Event | None = None) -> dict[str, list[Any]]:
    params = params or {}
    stop = stop or asyncio.Event()
    duration = float(params.get("duration_s", 60))
    hb_every = float(params.get("heartbeat_interval_s", 30))
    ev_every = float(params.get("event_interval_s", 10))
    pending = sorted(params.get("checkins", []), key=lambda c: c.get("at_s", 0))
    tick = 1.0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        k = Kiosk(client, key, params)
        t, next_hb, next_ev = 0.0, 0.0, ev_every
        while t <= duration and not stop.is_set():
            up = not k.offline(t)
            k.was_offline = k.was_offline or not up
            if t >= next_ev:
                k.event(t)
                next_ev += ev_every
            if up:
                try:
                    if t >= next_hb:
                        await k.heartbeat()
                        next_hb = t + hb_every
                    await k.flush()
                    while pending and pending[0].get("at_s", 0) <= t:
                        await k.checkin(pending.pop(0))
                except httpx.HTTPError as e:
                    log.warning("kiosk: gateway unreachable (%s); will retry", e)
            try:
                await asyncio.wait_for(stop.wait(), tick / speed)
            except TimeoutError:
                pass
            t += tick
        if not k.offline(t):
            await k.flush()
    return k.report


def register(sub: Any) -> None:
    p = sub.add_parser("kiosk", help="a check-in kiosk: heartbeats, events with offline replay, check-ins (live or spoof)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--key", required=True, help="the kiosk's key (shown once when the kiosk was created)")
    p.add_argument("--person", help="person id for the check-ins")
    p.add_argument("--frames", nargs="*", default=[], help="image files sent as one live burst")
    p.add_argument("--clip", help="a video file; frames are sampled from it for one check-in")
    p.add_argument("--spoof", help="an image sent as a burst of the same still frame (must be rejected)")
    p.add_argument("--challenge", help="a frontal photo: ask for a liveness challenge and answer it with frames made from the photo")
    p.add_argument("--offline", action="append", default=[], metavar="START:END", help="scenario seconds without network (repeatable)")
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--heartbeat", type=float, default=30)
    p.add_argument("--speed", type=float, default=1.0, help="scenario time runs this many times faster")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    checkins: list[dict[str, Any]] = []
    at = 2.0
    if args.person:
        if args.frames:
            checkins.append({"at_s": at, "person_id": args.person, "frames": args.frames})
            at += 3
        if args.clip:
            checkins.append({"at_s": at, "person_id": args.person, "clip": args.clip})
            at += 3
        if args.spoof:
            checkins.append({"at_s": at, "person_id": args.person, "spoof": args.spoof})
            at += 3
        if args.challenge:
            checkins.append({"at_s": at, "person_id": args.person, "challenge": args.challenge})
    params = {"duration_s": args.duration, "heartbeat_interval_s": args.heartbeat, "checkins": checkins,
              "offline": [[float(x) for x in o.split(":", 1)] for o in args.offline]}
    report = asyncio.run(run_kiosk(args.url, args.key, params, args.speed))
    for c in report["checkins"]:
        print(f"check-in {c['spec']}: {c['status']} {c.get('result')} distance={c.get('distance')} reason={c.get('reason') or c.get('detail')}")
    applied = sum(len(b["applied"]) for b in report["events"])
    dups = sum(len(b["duplicates"]) for b in report["events"])
    print(f"heartbeats {len(report['heartbeats'])}, events applied {applied}, duplicates skipped {dups}")
    print(json.dumps({"ok": all(s == 200 for s in report["heartbeats"])}))
    return 0


async def play(spec: dict[str, Any], ctx: Any) -> None:
    """Scenario player: `{kind: kiosk, id: kiosk-hall, params: {...}}` (params as for run_kiosk,
    plus optional `enroll: {person_id: [photo, ...]}` posted first with the scenario's admin
    token, so a demo can start from an empty database). The key comes from `ctx.device_keys`."""
    params = dict(spec.get("params") or {})
    key = ctx.device_keys.get(spec["id"])
    if key is None:
        raise ValueError(f"no key for kiosk {spec['id']} (create it with POST /api/devices or `gateway device key`)")
    enroll = params.pop("enroll", None) or {}
    if enroll and ctx.token:
        async with httpx.AsyncClient(base_url=ctx.gateway_url, timeout=60, headers={"Authorization": f"Bearer {ctx.token}"}) as c:
            for person_id, photos in enroll.items():
                for path in photos:
                    r = await c.post(f"/api/persons/{person_id}/photos", files={"file": (Path(path).name, Path(path).read_bytes(), "image/jpeg")})
                    if r.status_code != 201:
                        log.warning("kiosk sim: enrollment of %s from %s refused: %s", person_id, path, r.text)
    report = await run_kiosk(ctx.gateway_url, key, params, ctx.speed, ctx.stop)
    for c in report["checkins"]:
        log.info("kiosk %s: check-in %s -> %s (%s)", spec["id"], c["spec"], c.get("result"), c.get("reason") or c.get("detail"))
