"""Bad requests get a clean 4xx with a message, never a 500; logins are rate-limited."""

from __future__ import annotations

import logging

from gateway.logs import JsonFormatter, MaskingFormatter, mask
from tests.conftest import running


async def test_malformed_bodies_unknown_routes_and_oversized(make_config) -> None:
    async with running(make_config(gateway={"max_body_bytes": 4096})) as gw:
        h = await gw.login("a", "admin")
        r = await gw.client.post("/api/persons", headers={**h, "Content-Type": "application/json"}, content=b'{"name": ')
        assert r.status_code == 422 and "JSON" in r.json()["detail"]
        r = await gw.client.post("/api/persons", headers=h, json={"name": ""})
        assert r.status_code == 422 and r.json()["detail"].startswith("body.name:")
        r = await gw.client.post("/api/persons", headers=h, json={"name": "x", "id": "../../etc"})
        assert r.status_code == 422
        r = await gw.client.get("/api/nothing-here", headers=h)
        assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
        r = await gw.client.post("/api/persons", headers=h, content=b"x" * 5000)
        assert r.status_code == 413 and "4096" in r.json()["detail"]

        async def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(10):
                yield b"y" * 1000

        r = await gw.client.post("/api/persons", headers={**h, "Content-Type": "application/json"}, content=chunks())
        assert r.status_code == 413
        r = await gw.client.get("/api/alerts?limit=abc", headers=h)
        assert r.status_code == 422 and r.json()["detail"].startswith("query.limit:")
        r = await gw.client.get("/api/alerts/notanumber", headers=h)
        assert r.status_code == 422
        r = await gw.client.post("/api/devices", headers=h, json={"id": "k1", "kind": "toaster"})
        assert r.status_code == 422


async def test_wrong_password_is_401_audited_and_rate_limited(make_config) -> None:
    async with running(make_config(auth={"login_attempts_per_minute": 3})) as gw:
        await gw.login("zhao", "officer")  # one good login counts too
        codes = []
        for _ in range(4):
            r = await gw.client.post("/api/auth/token", data={"username": "zhao", "password": "nope-nope"})
            codes.append(r.status_code)
        assert codes[:2] == [401, 401] and codes[2:] == [429, 429]
        assert int(r.headers["Retry-After"]) >= 1
        # The address is over its limit: even the right password waits out the window there.
        r = await gw.client.post("/api/auth/token", data={"username": "zhao", "password": "correct-horse-1"})
        assert r.status_code == 429
        entries = [e for e in await _audit(gw) if e.action == "auth.login_failed"]
        assert len(entries) == 2


async def _audit(gw):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from gateway.db.models import AuditEntry

    async with gw.services.db.session() as s:
        return (await s.scalars(select(AuditEntry))).all()


async def test_health_and_metrics(make_config) -> None:
    async with running(make_config()) as gw:
        r = await gw.client.get("/healthz")
        assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"
        assert (await gw.client.get("/metrics")).status_code == 401
        r = await gw.client.get("/metrics", headers=await gw.login())
        assert r.status_code == 200 and "gateway_bus_queue_depth" in r.text and r.headers["content-type"].startswith("text/plain")
        assert (await gw.client.get("/openapi.json")).status_code == 401
        spec = (await gw.client.get("/openapi.json", headers=await gw.login())).json()
        assert "/api/alerts/{alert_id}/ack" in spec["paths"]


def test_secrets_never_reach_the_log() -> None:
    line = "connect rtsp://admin:hunter2@10.0.0.5/stream key dk_AbCdEfGhIjKlMnOp token=abc.def.ghi Authorization: Bearer eyJhbGciOi.x.y"
    out = mask(line)
    for secret in ("hunter2", "dk_AbCdEfGhIjKlMnOp", "abc.def.ghi", "eyJhbGciOi.x.y"):
        assert secret not in out
    assert "rtsp://admin:***@10.0.0.5/stream" in out
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "password=%s", ("pa55word",), None)
    assert "pa55word" not in MaskingFormatter("%(message)s").format(rec)
    assert "pa55word" not in JsonFormatter().format(rec)


async def test_one_address_cannot_lock_a_user_out(make_config) -> None:
    """An attacker failing under a user's name from one address is stopped by the address's
    limit before the name's (which counts failures only): the user, elsewhere, logs in."""
    import httpx

    async with running(make_config(auth={"login_attempts_per_minute": 3})) as gw:
        await gw.login("qian", "officer")
        attacker = httpx.AsyncClient(transport=httpx.ASGITransport(gw.app, client=("203.0.113.9", 4000)), base_url="http://gateway.test")
        office = httpx.AsyncClient(transport=httpx.ASGITransport(gw.app, client=("10.1.2.3", 5000)), base_url="http://gateway.test")
        async with attacker, office:
            codes = [(await attacker.post("/api/auth/token", data={"username": "qian", "password": "guess-guess"})).status_code for _ in range(10)]
            assert codes == [401] * 3 + [429] * 7
            r = await office.post("/api/auth/token", data={"username": "qian", "password": "correct-horse-1"})
            assert r.status_code == 200, r.text


def test_the_limiter_forgets_quiet_keys_and_stays_bounded() -> None:
    from gateway.auth.ratelimit import RateLimiter
    from gateway.clock import FakeClock

    clock = FakeClock()
    lim = RateLimiter(5, clock, max_keys=1000)
    for i in range(20_000):  # a flood of made-up names
        lim.hit(f"user:ghost-{i}")
    assert len(lim) <= 1000
    clock.advance(61)
    lim.hit("addr:10.0.0.1")
    assert len(lim) == 1
