"""Fixtures shared by every area's tests.

- `make_config(yaml_text="", **sections)`: a validated config whose data_dir is a temp folder.
- `db_url`: parametrised over SQLite and PostgreSQL for tests marked `postgres`
  (use the `any_db_url` fixture); PostgreSQL must be reachable in CI.
- `running(config)`: async context manager: a started gateway (built by gateway/assembly.py, as
  `gateway run` builds it) + httpx client on the ASGI app; `r.services` is the core, `r.areas`
  the areas.
- `live_gateway`: a real uvicorn server on a free port in a background thread,
  for WebSocket, browser and device-protocol tests.
- `shared_data`: ../shared/data (skips with a reason outside CI when absent; fails in CI).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from config import GatewayConfig, load_config_text

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MQTT_URL = os.environ.get("GATEWAY_TEST_MQTT", "mqtt://127.0.0.1:1883")
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_peer(ok: bool, what: str) -> None:
    """A real peer that is missing fails in CI and skips (with the reason) elsewhere."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} not available")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def shared_data() -> Path:
    require_peer(SHARED_DATA.is_dir(), f"real test data at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def mqtt_url() -> str:
    require_peer(port_open("127.0.0.1", 1883), "Mosquitto on 127.0.0.1:1883")
    return MQTT_URL


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    require_peer(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    import psycopg

    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    admin = PG_ADMIN_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gw.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., GatewayConfig]:
    def make(yaml_text: str = "", **sections: Any) -> GatewayConfig:
        data = yaml.safe_load(yaml_text) or {}
        for k, v in sections.items():
            data.setdefault(k, {})
            if isinstance(v, dict):
                data[k].update(v)
            else:
                data[k] = v
        data.setdefault("gateway", {}).setdefault("data_dir", str(tmp_path / "data"))
        return load_config_text(yaml.safe_dump(data), "<test>", env={})

    return make


@dataclass
class Running:
    services: Any  # the core (gateway.core.Core)
    areas: Any  # gateway.assembly.Areas
    app: Any
    client: httpx.AsyncClient

    async def login(self, username: str = "admin", role: str = "admin", password: str = "correct-horse-1") -> dict[str, str]:
        """Create the user if needed; return Authorization headers."""
        from sqlalchemy import select

        from gateway.auth.passwords import hash_password
        from gateway.db.models import User

        async with self.services.db.session() as s:
            if (await s.scalars(select(User).where(User.username == username))).first() is None:
                s.add(User(username=username, password_hash=hash_password(password), role=role))
                await s.commit()
        r = await self.client.post("/api/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@asynccontextmanager
async def running(config: GatewayConfig, **create_kw: Any) -> AsyncIterator[Running]:
    from gateway.app import create_app
    from gateway.assembly import build_gateway

    gw = build_gateway(config, **create_kw)
    app = create_app(config, gw, manage=False)
    await gw.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway.test") as client:
            yield Running(gw.core, gw.areas, app, client)
    finally:
        await gw.stop()


@dataclass
class LiveGateway:
    url: str
    services: Any  # the core
    areas: Any
    loop: asyncio.AbstractEventLoop

    def call(self, coro_fn: Callable[..., Any], *args: Any, timeout: float = 30, **kw: Any) -> Any:
        """Run a coroutine on the gateway's own event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro_fn(*args, **kw), self.loop).result(timeout)

    def add_user(self, username: str, role: str, password: str = "correct-horse-1") -> None:
        from gateway.users import add_user

        self.call(add_user, self.services.config, username, role, password, "test")

    def token(self, username: str, password: str = "correct-horse-1") -> str:
        r = httpx.post(f"{self.url}/api/auth/token", data={"username": username, "password": password})
        r.raise_for_status()
        return str(r.json()["access_token"])


@pytest.fixture
def start_live_gateway() -> Iterator[Callable[[GatewayConfig], LiveGateway]]:
    """Factory: start a real server for a config (port chosen here); stopped after the test."""
    stops: list[Callable[[], None]] = []

    def start(config: GatewayConfig) -> LiveGateway:
        from gateway.threaded import serve_in_thread

        config.gateway.port = free_port()
        try:
            gw = serve_in_thread(config, name="live-gateway")
        except RuntimeError as e:
            raise AssertionError(str(e)) from None
        stops.append(gw.stop)
        return LiveGateway(gw.url, gw.core, gw.areas, gw.loop)

    yield start
    for stop in reversed(stops):
        stop()


@pytest.fixture
def live_gateway(make_config: Callable[..., GatewayConfig], start_live_gateway: Callable[[GatewayConfig], LiveGateway]) -> LiveGateway:
    """A live gateway on default settings (SQLite in a temp folder, no MQTT)."""
    return start_live_gateway(make_config())
