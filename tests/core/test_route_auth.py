"""Every route of the app refuses a request without credentials, except the
few that must be public; every permission-guarded route answers 403 exactly
to the roles the permission table excludes. Both tests enumerate the app's
real routes, so routes added later are covered without editing this file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway.auth.roles import PERMISSIONS, ROLES
from tests.conftest import running

# the kiosk app's page holds no data (the terminal acts with its own key), and pairing is the
# terminal's way to get that key: a one-time code, rate-limited (tests/kiosk)
# the phone's remote check-in page holds no data either, and its routes act with a one-time link's
# token alone (X-Checkin-Token; 401 without it), counted against the login budget (tests/kiosk)
PUBLIC = {("GET", "/healthz"), ("GET", "/login"), ("POST", "/api/auth/token"), ("POST", "/api/auth/login"),
          ("GET", "/kiosk"), ("POST", "/api/kiosk/pair"),
          ("GET", "/call"),  # a remote session's join page: its data comes with the link's token
          ("GET", "/remote"), ("GET", "/api/remote/link"), ("POST", "/api/remote/challenges"), ("POST", "/api/remote/checkins")}
PUBLIC_PREFIXES = ("/static/",)


def concrete(path: str) -> str:
    # Path parameters get a plausible value; int parameters accept "1".
    return re.sub(r"\{[^}:]+(:\w+)?\}", "1", path)  # `{id:int}` too


def flat_routes(app: Any) -> Iterator[tuple[str, Any]]:
    """(effective path, original route) for every route, routers included."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazy router inclusion
        for r in app.routes:
            yield r.path, r
        return
    for ctx in iter_route_contexts(app.routes):
        yield ctx.path, ctx.original_route


def http_routes(app: Any) -> Iterator[tuple[str, str, APIRoute]]:
    for path, r in flat_routes(app):
        if isinstance(r, APIRoute):
            for m in sorted(r.methods - {"HEAD"}):
                yield m, path, r


def permission_of(route: APIRoute) -> tuple[str | None, bool, bool]:
    """(permission, needs a user, needs a device) from the route's dependency tree."""
    perm, user, device = None, False, False
    stack = [route.dependant]
    while stack:
        d = stack.pop()
        call = d.call
        if call is not None:
            perm = getattr(call, "permission", perm)
            name = getattr(call, "__name__", "")
            user = user or name in ("current_user", "check")
            device = device or name == "current_device"
        stack.extend(d.dependencies)
    return perm, user, device


async def test_every_route_requires_auth(make_config) -> None:
    async with running(make_config()) as gw:
        app = gw.app
        checked = 0
        for method, path, _ in http_routes(app):
            if (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES):
                continue
            r = await gw.client.request(method, concrete(path))
            assert r.status_code in (401, 303, 307), f"{method} {path} answered {r.status_code} without credentials"
            if r.status_code in (303, 307):
                assert r.headers["location"].startswith("/login"), f"{method} {path} redirects elsewhere"
            checked += 1
        for path, mount in flat_routes(app):
            if not isinstance(mount, Mount) or (path + "/").startswith(PUBLIC_PREFIXES):
                continue
            for method in ("GET", "POST", "PATCH", "DELETE", "HEAD"):
                r = await gw.client.request(method, path + "/1")
                assert r.status_code == 401, f"{method} {path}/1 answered {r.status_code} without credentials"
                checked += 1
        assert checked >= 20
        # The public ones really are public.
        assert (await gw.client.get("/healthz")).status_code == 200


def test_websockets_require_auth(make_config) -> None:
    from gateway.app import create_app

    cfg = make_config()
    app = create_app(cfg)
    with TestClient(app) as client:
        sockets = [path for path, r in flat_routes(app) if isinstance(r, APIWebSocketRoute)]
        assert "/api/events" in sockets
        for path in sockets:
            with pytest.raises(WebSocketDisconnect) as e:
                with client.websocket_connect(concrete(path)) as ws:
                    ws.receive_text()
            assert e.value.code == 1008, path


async def test_role_matrix(any_db_url, make_config) -> None:
    """For every guarded route and every role: 403 exactly when the role lacks the permission."""
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        headers = {role: await gw.login(f"u-{role}", role) for role in ROLES}
        seen_permissions: set[str] = set()
        for method, path, route in http_routes(gw.app):
            if (method, path) in PUBLIC:
                continue
            perm, needs_user, needs_device = permission_of(route)
            if needs_device and not needs_user:
                # Device routes refuse user tokens altogether.
                r = await gw.client.request(method, concrete(path), headers=headers["admin"])
                assert r.status_code == 401, f"{method} {path} accepted a user token"
                continue
            if not needs_user:
                continue
            for role in ROLES:
                r = await gw.client.request(method, concrete(path), headers=headers[role], json={})
                allowed = perm is None or role in PERMISSIONS[perm]
                if allowed:
                    assert r.status_code not in (401, 403), f"{role} refused {method} {path} ({perm}): {r.status_code} {r.text[:200]}"
                else:
                    assert r.status_code == 403, f"{role} allowed {method} {path} ({perm}): {r.status_code}"
                if path == "/api/auth/logout":  # that revoked the role's token: sign in again
                    headers[role] = await gw.login(f"u-{role}", role)
            if perm:
                seen_permissions.add(perm)
        for perm in ("persons.write", "devices.write", "users.write", "audit.read", "alerts.ack", "alerts.resolve"):
            assert perm in seen_permissions


async def test_user_token_revoked_when_user_disabled(make_config) -> None:
    async with running(make_config()) as gw:
        admin = await gw.login("boss", "admin")
        monitor = await gw.login("watcher", "monitor")
        assert (await gw.client.get("/api/persons", headers=monitor)).status_code == 200
        users = (await gw.client.get("/api/users", headers=admin)).json()
        uid = next(u["id"] for u in users if u["username"] == "watcher")
        assert (await gw.client.patch(f"/api/users/{uid}", headers=admin, json={"disabled": True})).status_code == 200
        assert (await gw.client.get("/api/persons", headers=monitor)).status_code == 401


async def test_tampered_and_foreign_tokens_refused(make_config, tmp_path) -> None:
    async with running(make_config()) as gw:
        h = await gw.login("a", "admin")
        token = h["Authorization"].split()[1]
        bad = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert (await gw.client.get("/api/persons", headers={"Authorization": f"Bearer {bad}"})).status_code == 401
    # A token signed by another gateway (another secret) is worthless here.
    async with running(make_config(gateway={"data_dir": str(tmp_path / "other")})) as other:
        assert (await other.client.get("/api/persons", headers=h)).status_code == 401


async def test_cookie_session_needs_csrf_header_for_changes(make_config) -> None:
    async with running(make_config()) as gw:
        await gw.login("o1", "officer")
        r = await gw.client.post("/api/auth/login", data={"username": "o1", "password": "correct-horse-1"})
        assert r.status_code == 200 and "gw_session" in r.cookies
        gw.client.cookies.set("gw_session", r.cookies["gw_session"])
        assert (await gw.client.get("/api/persons")).status_code == 200
        r = await gw.client.post("/api/persons", json={"name": "X"})
        assert r.status_code == 403 and "X-Requested-With" in r.json()["detail"]
        r = await gw.client.post("/api/persons", json={"name": "X"}, headers={"X-Requested-With": "gateway-console"})
        assert r.status_code == 201
