"""Helpers for the tracker tests: configs, a private Mosquitto, waiting on conditions."""

from __future__ import annotations

import math
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from gateway.db.models import Alert, PositionRow
from tests.waiting import wait_for, wait_for_blocking  # noqa: F401 - the suite's one wait_for, used through here

MOSQUITTO = "/usr/sbin/mosquitto"
LAT0, LON0 = 31.2304, 121.4737  # Shanghai, People's Square
M_PER_DEG = 111_194.93


def offset(north_m: float, east_m: float, lat: float = LAT0, lon: float = LON0) -> tuple[float, float]:
    return lat + north_m / M_PER_DEG, lon + east_m / (M_PER_DEG * math.cos(math.radians(lat)))


def square(half_m: float, lat: float = LAT0, lon: float = LON0) -> dict[str, Any]:
    ring = []
    for n, e in ((-1, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)):
        la, lo = offset(n * half_m, e * half_m, lat, lon)
        ring.append([lo, la])
    return {"type": "Polygon", "coordinates": [ring]}


def line(*points_ne: tuple[float, float]) -> dict[str, Any]:
    coords = []
    for n, e in points_ne:
        la, lo = offset(n, e)
        coords.append([lo, la])
    return {"type": "LineString", "coordinates": coords}


def uid() -> str:
    return uuid.uuid4().hex[:8]


async def alerts(services: Any, **where: Any) -> list[Alert]:
    async with services.db.session() as s:
        q = select(Alert)
        for k, v in where.items():
            q = q.where(getattr(Alert, k) == v)
        return list((await s.scalars(q.order_by(Alert.id))).all())


async def positions(services: Any, device_id: str) -> list[PositionRow]:
    async with services.db.session() as s:
        return list((await s.scalars(select(PositionRow).where(PositionRow.device_id == device_id).order_by(PositionRow.fix_time))).all())


def publisher(tag: str) -> paho.Client:
    """A plain MQTT client on the shared Mosquitto (clean session), for sending as devices do."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{tag}", clean_session=True)
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    return c


def forget_gateway(client_id: str, pub: paho.Client | None = None) -> None:
    """After a test: close its publisher and drop the gateway's two sessions (its own and
    its tracker ingest worker's) from the shared broker."""
    if pub is not None:
        pub.disconnect()
        pub.loop_stop()
    for cid in (client_id, f"{client_id}-trackers"):
        forget_session("127.0.0.1", 1883, cid)


def forget_session(url_host: str, port: int, client_id: str) -> None:
    """Drop a persistent session from the shared broker so tests leave nothing queued behind."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        c.connect(url_host, port, 5)
    except OSError:
        return
    c.loop_start()
    try:
        wait_for_blocking(c.is_connected, 30, f"the CONNACK that drops {client_id}'s session")
    finally:
        c.disconnect()
        c.loop_stop()


class PrivateBroker:
    """A Mosquitto of our own (persistence on), so a test may restart it."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.dir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\n{_user_line()}\npersistence true\npersistence_location {workdir}/\n"
            "autosave_interval 1\nmax_queued_messages 100000\nlog_dest stderr\nlog_type error\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        proc = self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        from tests.conftest import port_open

        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"private mosquitto exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            return port_open("127.0.0.1", self.port)

        wait_for_blocking(listening, 30, "the private mosquitto to listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def have_mosquitto() -> bool:
    return Path(MOSQUITTO).exists() or shutil.which("mosquitto") is not None


def _user_line() -> str:
    """Mosquitto started as root drops to user `mosquitto`, which could not
    write its persistence file into our temp folder: stay as who we are."""
    import getpass

    return f"user {getpass.getuser()}"
