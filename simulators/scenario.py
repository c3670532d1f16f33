"""`gateway-sim scenario FILE`: replay many simulated devices together against a
gateway, time-compressed and deterministic, then check expectations.

A scenario is YAML:

    name: curfew-night
    seed: 7                 # every random choice of every device derives from it
    speed: 20               # scenario seconds per wall second
    duration_s: 600         # scenario seconds (devices are stopped after it)
    devices:
      - kind: tracker       # tracker | camera | kiosk | bodycam
        id: trk-0001
        start_s: 0          # scenario time at which the device starts
        params: {...}       # the kind's own parameters (see `gateway-sim KIND --help`)
    expect:
      - alert: {kind: inclusion_exit, level: orange, person_id: p-0001}
        within_s: 30        # wall seconds from the start
        count: 1            # optional: exactly this many alerts match at the end
      - no_alert: {kind: inclusion_exit, person_id: p-0002}
      - device: {id: trk-0001, state: online}
        within_s: 10

Each kind's player is `play(spec, ctx)` in simulators/<kind>.py; the runner
starts them at their (compressed) start times and checks each expectation by
polling the gateway's own API, so it works against any running gateway.
Exit status is 0 only when every expectation holds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

log = logging.getLogger(__name__)

KINDS = ("tracker", "camera", "kiosk", "bodycam")


@dataclass
class ScenarioContext:
    """What a device player gets: where the gateway is, how fast time runs."""

    gateway_url: str
    mqtt_url: str | None
    speed: float
    seed: int
    token: str | None = None
    device_keys: dict[str, str] = field(default_factory=dict)
    rtsp_port: int | None = None
    started: float = field(default_factory=time.monotonic)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def rng(self, device_id: str) -> random.Random:
        """A device's own random stream: same seed and id, same choices."""
        return random.Random(f"{self.seed}:{device_id}")

    def scenario_time(self) -> float:
        return (time.monotonic() - self.started) * self.speed

    async def sleep_scenario(self, seconds: float) -> None:
        """Sleep `seconds` of scenario time (returns early when stopping)."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds / self.speed)
        except TimeoutError:
            pass


Player = Callable[[dict[str, Any], ScenarioContext], Awaitable[None]]


def player_for(kind: str) -> Player:
    module = importlib.import_module(f"simulators.{kind}")
    play = getattr(module, "play", None)
    if play is None:
        raise ScenarioError(f"device kind {kind!r} has no simulator yet (simulators/{kind}.py has no play())")
    return play  # type: ignore[no-any-return]


class ScenarioError(Exception):
    pass


@dataclass
class Outcome:
    description: str
    ok: bool
    detail: str


def load_scenario(path: str | Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping")
    unknown = set(data) - {"name", "seed", "speed", "duration_s", "devices", "expect", "loop"}
    if unknown:
        raise ScenarioError(f"{path}: unknown keys {sorted(unknown)}")
    for i, d in enumerate(data.get("devices") or []):
        if d.get("kind") not in KINDS:
            raise ScenarioError(f"{path}: devices[{i}].kind must be one of {', '.join(KINDS)}")
        if not d.get("id"):
            raise ScenarioError(f"{path}: devices[{i}] needs an id")
    for i, e in enumerate(data.get("expect") or []):
        if not ({"alert", "no_alert", "device"} & set(e)):
            raise ScenarioError(f"{path}: expect[{i}] must have alert, no_alert or device")
    return data


async def run_scenario(scenario: dict[str, Any], ctx: ScenarioContext, poll_s: float = 0.5) -> list[Outcome]:
    """Play every device and check every expectation; returns the outcomes."""
    ctx.started = time.monotonic()
    players = [asyncio.create_task(_start_device(d, ctx), name=f"sim:{d['kind']}:{d['id']}") for d in scenario.get("devices") or []]
    headers = {"Authorization": f"Bearer {ctx.token}"} if ctx.token else {}
    duration_wall = float(scenario.get("duration_s", 0)) / ctx.speed
    outcomes: list[Outcome] = []
    try:
        async with httpx.AsyncClient(base_url=ctx.gateway_url, headers=headers, timeout=10) as api:
            checks = [_check(e, api, ctx, poll_s) for e in scenario.get("expect") or []]
            outcomes = list(await asyncio.gather(*checks))
            # Let devices finish their scenario time, unless a device already failed.
            remaining = duration_wall - (time.monotonic() - ctx.started)
            if remaining > 0 and all(o.ok for o in outcomes):
                done, _ = await asyncio.wait(players, timeout=remaining)
                for t in done:
                    if t.exception():
                        raise t.exception()  # type: ignore[misc]
    finally:
        ctx.stop.set()
        for t in players:
            if not t.done():
                try:
                    await asyncio.wait_for(asyncio.shield(t), 5)
                except (TimeoutError, Exception):  # noqa: BLE001 - a player's own error is logged below
                    t.cancel()
        for t in players:
            if t.done() and not t.cancelled() and t.exception():
                log.error("%s failed: %s", t.get_name(), t.exception())
    return outcomes


async def _start_device(spec: dict[str, Any], ctx: ScenarioContext) -> None:
    play = player_for(spec["kind"])
    await ctx.sleep_scenario(float(spec.get("start_s", 0)))
    if not ctx.stop.is_set():
        await play(spec, ctx)


async def _check(expect: dict[str, Any], api: httpx.AsyncClient, ctx: ScenarioContext, poll_s: float) -> Outcome:
    within = float(expect.get("within_s", 30))
    deadline = ctx.started + within
    if "device" in expect:
        want = expect["device"]
        desc = f"device {want['id']} is {want.get('state', 'online')} within {within:g} s"
        last = "never seen"
        while True:
            r = await api.get(f"/api/devices/{want['id']}")
            if r.status_code == 200:
                last = r.json().get("state")
                if last == want.get("state", "online"):
                    return Outcome(desc, True, f"after {time.monotonic() - ctx.started:.1f} s")
            elif r.status_code in (401, 403):
                return Outcome(desc, False, f"gateway refused the scenario's credentials ({r.status_code})")
            if time.monotonic() >= deadline:
                return Outcome(desc, False, f"state was {last}")
            await asyncio.sleep(poll_s)
    negative = "no_alert" in expect
    want = expect["no_alert"] if negative else expect["alert"]
    params = {k: v for k, v in want.items() if k in ("kind", "level", "person_id", "device_id")}
    desc = ("no " if negative else "") + "alert " + " ".join(f"{k}={v}" for k, v in params.items()) + f" within {within:g} s"
    while True:
        r = await api.get("/api/alerts", params={**params, "since": _iso(ctx)})
        if r.status_code != 200:
            return Outcome(desc, False, f"GET /api/alerts answered {r.status_code}: {r.text[:200]}")
        found = [a for a in r.json() if all(a.get(k) == v for k, v in want.items() if k not in ("state",)) and ("state" not in want or a["state"] == want["state"])]
        if negative:
            if found:
                return Outcome(desc, False, f"alert {found[0]['id']} opened")
            if time.monotonic() >= deadline:
                return Outcome(desc, True, "none raised")
        elif found:
            count = expect.get("count")
            if count is None:
                return Outcome(desc, True, f"alert {found[0]['id']} after {time.monotonic() - ctx.started:.1f} s")
            if time.monotonic() >= deadline:
                ok = len(found) == int(count)
                return Outcome(desc, ok, f"{len(found)} matching alert(s), expected {count}")
        elif time.monotonic() >= deadline:
            return Outcome(desc, False, "not raised")
        await asyncio.sleep(poll_s)


def _iso(ctx: ScenarioContext) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(seconds=time.monotonic() - ctx.started + 5)).isoformat()


def report(outcomes: list[Outcome]) -> int:
    for o in outcomes:
        print(f"{'PASS' if o.ok else 'FAIL'}  {o.description}: {o.detail}")
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0


def register(sub: Any) -> None:
    p = sub.add_parser("scenario", help="replay a scenario of many devices against a gateway and check expectations",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file")
    p.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"))
    p.add_argument("--mqtt", default=os.environ.get("GATEWAY_SIM_MQTT", "mqtt://127.0.0.1:1883"))
    p.add_argument("--user", default=os.environ.get("GATEWAY_SIM_USER"), help="console user for checking expectations (or $GATEWAY_SIM_USER)")
    p.add_argument("--password-env", default="GATEWAY_SIM_PASSWORD", help="environment variable holding the password")
    p.add_argument("--speed", type=float, help="override the scenario's speed")
    p.add_argument("--rtsp-port", type=int, default=8554, help="port the scenario's cameras are served on (rtsp://127.0.0.1:PORT/<id>)")
    p.add_argument("--key", action="append", default=[], metavar="DEVICE=KEY", help="device key for a kiosk or body-cam (repeatable)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        scenario = load_scenario(args.file)
    except (ScenarioError, OSError, yaml.YAMLError) as e:
        print(e, file=sys.stderr)
        return 2
    token = None
    if args.user:
        r = httpx.post(f"{args.gateway}/api/auth/token", data={"username": args.user, "password": os.environ.get(args.password_env, "")})
        if r.status_code != 200:
            print(f"login as {args.user} failed: {r.status_code} {r.text}", file=sys.stderr)
            return 2
        token = r.json()["access_token"]
    keys = dict(k.split("=", 1) for k in args.key)
    ctx = ScenarioContext(args.gateway, args.mqtt, float(args.speed or scenario.get("speed", 1)), int(scenario.get("seed", 0)), token, keys, args.rtsp_port)
    outcomes = asyncio.run(run_scenario(scenario, ctx))
    return report(outcomes)
