"""`gateway demo`: the gateway on embedded defaults plus every simulator.

SQLite and media under --data-dir, an embedded MQTT broker (amqtt) unless
GATEWAY_MQTT__URL names one, demo users whose passwords (one each) are generated once and
printed, and the bundled demo scenario played in a loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path

from config import load_config
from gateway.assembly import build_gateway
from gateway.broker import EmbeddedBroker
from gateway.logs import setup_logging
from gateway.runner import make_server

log = logging.getLogger(__name__)
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"
DEMO_SCENARIO = Path(__file__).resolve().parents[1] / "simulators" / "scenarios" / "demo.yaml"
DEMO_USERS = (("admin", "admin"), ("officer", "officer"), ("monitor", "monitor"))


def demo_passwords(data_dir: Path) -> dict[str, str]:
    """One password per demo user, generated once (a demo monitor must not know the
    admin's), kept in data_dir/demo-passwords.txt (0600): `user password` per line."""
    path = data_dir / "demo-passwords.txt"
    if path.exists():
        pairs = dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
        if all(name in pairs for name, _ in DEMO_USERS):
            return {name: pairs[name].strip() for name, _ in DEMO_USERS}
        path.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)
    out = {name: secrets.token_urlsafe(9) for name, _ in DEMO_USERS}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{name} {pw}\n" for name, pw in out.items())
    return out


async def run_demo(port: int = 8080, data_dir: Path = Path("data/demo"), simulators: bool = True, scenario: Path = DEMO_SCENARIO,
                   faces: Path | None = None) -> int:
    setup_logging("INFO")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    broker = None
    if not env.get("GATEWAY_MQTT__URL"):
        broker = EmbeddedBroker(int(env.get("GATEWAY_DEMO_MQTT_PORT", "1883")))
        await broker.start()
        env["GATEWAY_MQTT__URL"] = broker.url
    env.setdefault("GATEWAY_GATEWAY__PORT", str(port))
    env.setdefault("GATEWAY_GATEWAY__DATA_DIR", str(data_dir))
    rtsp_port = int(env.get("GATEWAY_DEMO_RTSP_PORT", "8554"))
    cfg = load_config(_demo_config(data_dir, rtsp_port), env=env)

    passwords = demo_passwords(data_dir)
    from gateway.users import add_user, set_password

    for name, role in DEMO_USERS:
        try:
            await add_user(cfg, name, role, passwords[name], actor="demo")
        except ValueError:  # exists from an earlier run (maybe with the one shared password of old)
            await set_password(cfg, name, passwords[name], actor="demo")

    server = make_server(cfg, build_gateway(cfg))
    serve = asyncio.create_task(server.serve(), name="http")
    while not server.started and not serve.done():
        await asyncio.sleep(0.05)
    if serve.done():
        await serve
        return 1
    url = f"http://{cfg.gateway.host}:{cfg.gateway.port}"
    print(
        f"\n  Supervision gateway demo\n  console:  {url}\n"
        + "".join(f"  {name + ':':9} {passwords[name]}\n" for name, _ in DEMO_USERS)
        + f"  (user and password; kept in {data_dir / 'demo-passwords.txt'})\n  MQTT:     {cfg.mqtt.url}\n  Ctrl-C stops.\n",
        flush=True,
    )
    stop = asyncio.Event()
    sims = asyncio.create_task(_play_forever(cfg, url, passwords["admin"], scenario, rtsp_port, stop, faces), name="simulators") if simulators else None
    await serve  # until SIGINT/SIGTERM
    stop.set()
    if sims:
        sims.cancel()
        await asyncio.gather(sims, return_exceptions=True)
    if broker:
        await broker.stop()
    return 0


def _demo_config(data_dir: Path, rtsp_port: int) -> Path:
    """config/demo.yaml with its cameras on the simulator's RTSP port (same lines, so
    config errors still point at the right place)."""
    if rtsp_port == 8554:
        return DEMO_CONFIG
    path = data_dir / "demo-config.yaml"
    path.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace("rtsp://127.0.0.1:8554/", f"rtsp://127.0.0.1:{rtsp_port}/"), encoding="utf-8")
    return path


def face_checkins(faces: Path, person_ids: list[str], first_at_s: float = 20, every_s: float = 120) -> tuple[dict[str, list[str]], list[dict[str, object]]]:
    """Kiosk parameters from a folder of photos per person: enroll each person's first photo,
    then check in with a burst of the others (a live check-in) and, once, with the same
    still photo repeated (a spoof the liveness check refuses)."""
    enroll: dict[str, list[str]] = {}
    checkins: list[dict[str, object]] = []
    at = first_at_s
    for pid in person_ids:
        photos = sorted(str(p) for p in (faces / pid).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if len(photos) < 3:
            continue  # one to enroll, two or more for a burst
        enroll[pid] = photos[:1]
        checkins.append({"at_s": at, "person_id": pid, "frames": photos[1:4]})
        checkins.append({"at_s": at + every_s / 2, "person_id": pid, "spoof": photos[1], "n": 3})
        at += every_s
    return enroll, checkins


async def _play_forever(cfg, url: str, password: str, scenario_path: Path, rtsp_port: int, stop: asyncio.Event, faces: Path | None = None) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from simulators.scenario import ScenarioContext, load_scenario, run_scenario

    scenario = load_scenario(scenario_path)
    if faces is not None:
        enroll, checkins = face_checkins(faces, [p.id for p in cfg.persons])
        if not enroll:
            log.warning("demo: no person folder in %s has three photos or more: no check-ins", faces)
        for d in scenario.get("devices") or []:
            if d["kind"] == "kiosk":
                d["params"] = {**(d.get("params") or {}), "enroll": enroll, "checkins": checkins}
    if not scenario.get("devices"):
        log.info("demo scenario has no devices yet")
        return
    async with httpx.AsyncClient(base_url=url) as c:
        token = (await c.post("/api/auth/token", data={"username": "admin", "password": password})).json()["access_token"]
        keys = {}
        for d in cfg.devices:
            if d.kind in ("kiosk", "bodycam"):
                r = await c.post(f"/api/devices/{d.id}/key", headers={"Authorization": f"Bearer {token}"})
                keys[d.id] = r.json()["key"]
    rnd = 0
    while not stop.is_set():
        ctx = ScenarioContext(url, cfg.mqtt.url, float(scenario.get("speed", 1)), int(scenario.get("seed", 0)) + rnd, token, keys, rtsp_port)
        outcomes = await run_scenario(scenario, ctx)
        for o in outcomes:
            log.info("demo scenario: %s %s (%s)", "PASS" if o.ok else "FAIL", o.description, o.detail)
        if not scenario.get("loop"):
            return
        rnd += 1
