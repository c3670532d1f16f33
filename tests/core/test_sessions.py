"""Sessions end when they should: an open events WebSocket closes once its user is
disabled, changed or logs out (before, it went on receiving alerts and positions), and
logout revokes the token; a WebSocket from a foreign page (its Origin) is refused even
with the session cookie. Also: every answer says nosniff. A real server (uvicorn)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.waiting import wait_for_blocking


def _ws(live: Any, token: str, **kw: Any) -> Any:
    return connect(live.url.replace("http", "ws") + f"/api/events?token={token}", **kw)


def _closed(ws: Any) -> int | None:
    """The close code once the server has closed the socket (None while it is open)."""
    try:
        ws.recv(timeout=0.2)
    except TimeoutError:
        return None
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else -1
    return None  # a pushed message: still open


def test_a_disabled_users_open_socket_is_closed(live_gateway: Any) -> None:
    live = live_gateway
    live.add_user("off1", "officer")
    live.add_user("boss", "admin")
    admin = {"Authorization": f"Bearer {live.token('boss')}"}
    with _ws(live, live.token("off1")) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        users = httpx.get(f"{live.url}/api/users", headers=admin).json()
        uid = next(u["id"] for u in users if u["username"] == "off1")
        assert httpx.patch(f"{live.url}/api/users/{uid}", json={"disabled": True}, headers=admin).status_code == 200
        assert wait_for_blocking(lambda: _closed(ws), 30, "the disabled officer's socket closed") == 1008


def test_logout_revokes_the_token_and_closes_its_sockets(live_gateway: Any) -> None:
    live = live_gateway
    live.add_user("mon1", "monitor")
    token = live.token("mon1")
    h = {"Authorization": f"Bearer {token}"}
    with _ws(live, token) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        assert httpx.post(f"{live.url}/api/auth/logout", headers=h).status_code == 204
        assert wait_for_blocking(lambda: _closed(ws), 30, "the socket closed at logout") == 1008
    assert httpx.get(f"{live.url}/api/auth/me", headers=h).status_code == 401
    with pytest.raises(InvalidStatus):
        with _ws(live, token):
            pass


def test_a_foreign_origin_is_refused_and_our_own_accepted(live_gateway: Any) -> None:
    live = live_gateway
    live.add_user("mon2", "monitor")
    token = live.token("mon2")
    with pytest.raises(InvalidStatus) as err:
        with _ws(live, token, origin="https://evil.example"):
            pass
    assert err.value.response.status_code == 403
    host = live.url.split("://", 1)[1]
    with _ws(live, token, origin=f"http://{host}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    with _ws(live, token) as ws:  # not a browser: no Origin, the token decides
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"


def test_every_answer_says_nosniff(live_gateway: Any) -> None:
    for path in ("/healthz", "/api/alerts", "/login", "/static/app.js"):
        assert httpx.get(f"{live_gateway.url}{path}").headers.get("x-content-type-options") == "nosniff", path
