"""Each channel's message reaches a local receiver that checks the peer's documented format
and signature (tests/outbox/receivers.py): zh-CN text with the level, the person, the place,
the time and the link to the alert; one message per change and channel, whatever the retries;
a 4xx is dead-lettered with its reason (admins see it and send it again), a 5xx or a refused
connection is retried until the receiver is back, and neither holds up alert handling."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.auth.passwords import hash_password
from gateway.db.models import OutboxDelivery, Person, User
from tests.conftest import free_port, running
from tests.outbox.receivers import ALL, Received, Secrets, channels, environment, robots, smtp
from tests.waiting import wait_for

PASSWORD = "correct-horse-1"


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> Secrets:
    sec = Secrets()
    for k, v in environment(sec).items():
        monkeypatch.setenv(k, v)
    return sec


async def _states(gw: Any) -> dict[str, int]:
    async with gw.services.db.session() as s:
        return dict((await s.execute(select(OutboxDelivery.state, func.count()).group_by(OutboxDelivery.state))).all())


async def test_every_channel_gets_one_well_formed_message_in_chinese(secrets_env: Secrets, make_config: Any, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)  # httpx logs each request's URL, which carries a robot's token
    got = Received()
    async with robots(secrets_env, got) as base, smtp(got) as smtp_port:
        cfg = make_config(gateway={"public_url": "https://gw.example.cn/"}, delivery={
            "channels": channels(base, smtp_port), "rules": [{"levels": ["red"], "channels": list(ALL)}], "poll_s": 0.2})
        async with running(cfg) as gw:
            async with gw.services.db.session() as s:
                s.add(Person(id="p-7", name="张三"))
                await s.commit()
            alert = await gw.services.alerts.raise_alert("tamper", person_id="p-7", device_id="trk-7", lat=31.2304, lon=121.4737)
            await gw.services.alerts.raise_alert("low_battery", person_id="p-7", device_id="trk-7")  # blue: no rule
            await wait_for(lambda: all(got.keys(c) for c in ALL), 60, "a message on every channel")
            await wait_for(lambda: _eq(_states(gw), {"sent": 5}), 30, "five deliveries marked sent")
            # the same alert reported again is an update, not a new message; an acknowledgement is not routed
            await gw.services.alerts.raise_alert("tamper", person_id="p-7", device_id="trk-7")
            await gw.services.alerts.acknowledge(alert["id"], "wang")
            await wait_for(lambda: _eq(_routed(gw), 4), 30, "the later changes routed")
            assert await _states(gw) == {"sent": 5}
    assert got.rejected == []
    from gateway.logs import MaskingFormatter

    # what the gateway logged (the receivers' own access logs are the peers', not ours)
    logged = "\n".join(MaskingFormatter("%(message)s").format(r) for r in caplog.records if not r.name.startswith("aiohttp"))
    for secret in (secrets_env.wecom_key, secrets_env.ding_token, secrets_env.ding_secret, secrets_env.feishu_token, secrets_env.feishu_secret,
                   secrets_env.webhook):
        assert secret not in logged, f"a channel secret reached the logs: {secret}"
    assert any("/cgi-bin/webhook/send" in r.getMessage() for r in caplog.records)  # the requests were logged, masked
    link = f"https://gw.example.cn/console/alerts?id={alert['id']}"
    for channel in ALL:
        assert list(got.keys(channel).values()) == [1], channel
        [text] = got.texts(channel)
        for expected in ("红色预警", "设备被拆除", "张三", "31.23040, 121.47370", link):
            assert expected in text, (channel, expected, text)
    [mail] = got.by_channel["email"]
    assert mail["body"]["to"] == ["duty@sfj.example.cn"] and "红色预警" in mail["body"]["subject"]
    # the time is Beijing time, as officers read it
    opened = alert["opened_at"]
    from datetime import datetime
    from zoneinfo import ZoneInfo
    local = datetime.fromisoformat(opened).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    assert all(local in t for c in ALL for t in got.texts(c))


async def _routed(gw: Any) -> int:
    from gateway.db.models import OutboxChange
    async with gw.services.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(OutboxChange).where(OutboxChange.routed.is_(True))) or 0)


async def _eq(value: Any, want: object) -> bool:
    return bool(await value == want)


async def test_a_refusal_is_dead_lettered_and_retried_by_an_admin_a_dead_receiver_is_retried(secrets_env: Secrets, make_config: Any) -> None:
    got = Received(refuse_with={"webhook": 400, "wecom": 503})
    closed = free_port()  # nothing listens: every attempt is refused
    async with robots(secrets_env, got) as base:
        chans = [c for c in channels(base, 1) if c["name"] in ("webhook", "wecom")]
        chans.append({"name": "down", "kind": "webhook", "url": f"http://127.0.0.1:{closed}/hook"})
        cfg = make_config(delivery={"channels": chans, "rules": [{"levels": ["red"], "channels": ["webhook", "wecom", "down"]}],
                                    "retry": {"base_delay_s": 0.05, "max_delay_s": 0.3, "max_attempts": 1000}, "poll_s": 0.2})
        async with running(cfg) as gw:
            async with gw.services.db.session() as s:
                s.add(User(username="chief", password_hash=hash_password(PASSWORD), role="admin"))
                s.add(User(username="mon", password_hash=hash_password(PASSWORD), role="monitor"))
                await s.commit()
            admin = {"Authorization": f"Bearer {(await gw.client.post('/api/auth/token', data={'username': 'chief', 'password': PASSWORD})).json()['access_token']}"}
            mon = {"Authorization": f"Bearer {(await gw.client.post('/api/auth/token', data={'username': 'mon', 'password': PASSWORD})).json()['access_token']}"}
            alert = await gw.services.alerts.raise_alert("sos", device_id="trk-1")

            async def dead() -> list[dict[str, Any]]:
                return (await gw.client.get("/api/outbox/dead", headers=admin)).json()  # type: ignore[no-any-return]

            await wait_for(lambda: _len(dead(), 1), 30, "the 400 dead-lettered")
            [letter] = await dead()
            assert letter["channel"] == "webhook" and letter["alert_id"] == alert["id"] and letter["attempts"] == 1
            assert letter["last_error"].startswith("HTTP 400") and letter["key"] == f"{letter['key'].split(':')[0]}:webhook"
            assert (await gw.client.get("/api/outbox/dead", headers=mon)).status_code == 403
            # the unreachable channel and the 503 are retried meanwhile; alert handling goes on
            await wait_for(lambda: _attempts(gw, "down", 3), 30, "the unreachable channel retried")
            await wait_for(lambda: _attempts(gw, "wecom", 3), 30, "the 503 retried")
            r = await gw.client.post(f"/api/alerts/{alert['id']}/ack", headers=admin, json={"note": "收到"})
            assert r.status_code == 200, r.text
            # the receivers are fixed: the 503 goes through by itself, the dead letter by an admin's retry
            got.refuse_with.clear()
            await wait_for(lambda: bool(got.keys("wecom")), 30, "the WeCom message after the 503s")
            assert (await gw.client.post(f"/api/outbox/{letter['id']}/retry", headers=mon)).status_code == 403
            r = await gw.client.post(f"/api/outbox/{letter['id']}/retry", headers=admin)
            assert r.status_code == 200 and r.json()["state"] == "pending"
            assert (await gw.client.post(f"/api/outbox/{letter['id']}/retry", headers=admin)).status_code in (409, 200)
            await wait_for(lambda: bool(got.keys("webhook")), 30, "the webhook message after the retry")
            assert await dead() == []
            sent = (await gw.client.get(f"/api/outbox/alerts/{alert['id']}", headers=admin)).json()
            assert {d["channel"]: d["state"] for d in sent} == {"webhook": "sent", "wecom": "sent", "down": "pending"}
            assert (await gw.client.post("/api/outbox/999999/retry", headers=admin)).status_code == 404
    assert got.rejected == []
    assert list(got.keys("webhook").values()) == [1] and list(got.keys("wecom").values()) == [1]


async def _len(value: Any, n: int) -> bool:
    return len(await value) == n


async def _attempts(gw: Any, channel: str, n: int) -> bool:
    async with gw.services.db.session() as s:
        return int(await s.scalar(select(func.max(OutboxDelivery.attempts)).where(OutboxDelivery.channel == channel)) or 0) >= n


def test_a_channel_secret_must_come_from_the_environment(make_config: Any) -> None:
    """A literal key in YAML is refused (no such field); a named variable that is not set
    stops the start with the variable's name, never a value."""
    from config.loader import ConfigError

    with pytest.raises(ConfigError, match=r"line 3: delivery.channels\[0\].wecom.key: unknown key") as err:
        make_config(delivery={"channels": [{"name": "w", "kind": "wecom", "key": "abc-secret"}]})
    assert "abc-secret" not in str(err.value)
    from gateway.core import Core

    cfg = make_config(delivery={"channels": [{"name": "w", "kind": "wecom", "key_env": "T_SURELY_UNSET_VARIABLE"}]})
    with pytest.raises(ValueError, match="T_SURELY_UNSET_VARIABLE"):
        Core.create(cfg)


async def test_a_robot_error_code_in_a_200_is_not_success(secrets_env: Secrets, make_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong DingTalk signing secret: the robot answers 200 with errcode 310000; that is a
    refusal (dead letter with the robot's code), not a delivery."""
    got = Received()
    async with robots(secrets_env, got) as base:
        chans = [c for c in channels(base, 1) if c["name"] == "dingtalk"]
        cfg = make_config(delivery={"channels": chans, "rules": [{"channels": ["dingtalk"]}], "poll_s": 0.2})
        monkeypatch.setenv("T_DING_SECRET", "SECnot-the-robots-secret")
        async with running(cfg) as gw:
            await gw.services.alerts.raise_alert("sos", device_id="trk-2")
            await wait_for(lambda: _eq(_states(gw), {"dead": 1}), 30, "the delivery refused")
            async with gw.services.db.session() as s:
                row = await s.scalar(select(OutboxDelivery))
            assert row is not None and row.last_error is not None and row.last_error.startswith("errcode 310000")
    assert got.by_channel == {} and got.rejected == [("dingtalk", "token, sign or timestamp")]
