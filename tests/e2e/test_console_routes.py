"""The console's HTTP side without a browser: what is public, where the
unauthenticated go, and that only the listed npm folders are served.

Synchronous against a live gateway, like every test in this folder: once the
session's Playwright runs, no asyncio loop can start in the main thread."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from gateway.auth.roles import PERMISSIONS
from gateway.web.routes import NODE_MODULES, VENDOR
from tests.conftest import require_peer


@pytest.fixture
def client(live_gateway):
    with httpx.Client(base_url=live_gateway.url, timeout=30) as c:
        yield c


def sign_in(live, client: httpx.Client, username: str = "web", role: str = "monitor") -> None:
    live.add_user(username, role)
    r = client.post("/api/auth/login", data={"username": username, "password": "correct-horse-1"})
    assert r.status_code == 200


def test_pages_redirect_to_login_and_back(live_gateway, client) -> None:
    r = client.get("/console/alerts?level=red")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fconsole%2Falerts%3Flevel%3Dred"
    assert (client.get("/")).headers["location"] == "/login?next=%2F"
    login = client.get("/login")
    assert login.status_code == 200 and 'id="login-form"' in login.text
    assert "script-src 'self'" in login.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]

    sign_in(live_gateway, client)
    page = client.get("/console/alerts")
    assert page.status_code == 200 and '<main id="main"' in page.text
    assert page.headers["cache-control"] == "no-store"
    # a monitor lands on the command-centre dashboard; an officer on the alerts
    assert (client.get("/")).headers["location"] == "/console/dashboard"
    assert (client.get("/console")).headers["location"] == "/console/dashboard"
    with httpx.Client(base_url=live_gateway.url, timeout=30) as officer:
        sign_in(live_gateway, officer, "li", "officer")
        assert (officer.get("/")).headers["location"] == "/console/alerts"
    # Signed in, /login forwards to `next`, but never to another site.
    assert (client.get("/login?next=/console/devices")).headers["location"] == "/console/devices"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/login?next=/x", "/\t/evil.example/", "/\n/evil.example", "/\t\\evil.example"):
        assert (client.get("/login", params={"next": evil})).headers["location"] == "/console"


def test_a_stale_cookie_is_sent_to_login(live_gateway, client) -> None:
    client.cookies.set("gw_session", "not-a-real-token")
    r = client.get("/console/devices")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_static_assets_are_public_and_revalidated(live_gateway, client) -> None:
    r = client.get("/static/app.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.headers["cache-control"] == "no-cache"
    assert (client.get("/static/pages/alerts.js")).status_code == 200
    assert (client.get("/static/pages/not-written-yet.js")).status_code == 404
    # Traversal out of the static folder finds nothing.
    assert (client.get("/static/../routes.py")).status_code == 404
    assert (client.get("/static/%2e%2e/routes.py")).status_code == 404


def test_roles_module_mirrors_the_permission_table(live_gateway, client) -> None:
    r = client.get("/static/roles.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    table = json.loads(re.search(r"PERMISSIONS = (\{.*\});", r.text).group(1))
    assert table == {perm: sorted(roles) for perm, roles in PERMISSIONS.items()}


def test_only_the_listed_npm_folders_are_served(live_gateway, client) -> None:
    require_peer((NODE_MODULES / "leaflet" / "dist" / "leaflet.js").is_file(), "npm ci in gateway/web (node_modules/leaflet)")
    assert VENDOR["leaflet"] == "leaflet/dist"
    js = client.get("/static/vendor/leaflet/leaflet.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert (client.get("/static/vendor/leaflet/leaflet.css")).status_code == 200
    assert (client.get("/static/vendor/leaflet/images/marker-icon.png")).status_code == 200
    # The package's other files, and other packages, stay private.
    assert (NODE_MODULES / "leaflet" / "package.json").is_file()
    assert (client.get("/static/vendor/leaflet/../package.json")).status_code == 404
    assert (client.get("/static/vendor/leaflet/%2e%2e/package.json")).status_code == 404
    assert (client.get("/static/vendor/.package-lock.json")).status_code == 404
