"""Secrets never reach /metrics (readable by every user) or the log: a robot channel's
webhook URL carries its key (WeCom ?key=, DingTalk ?access_token=, Feishu /hook/<token>),
so webhooks are named by their place and host; and the log masker hides URL query
strings, opaque path tokens and passwords (with '@' in them too)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.logs import MaskingFormatter, mask
from tests.conftest import free_port, running
from tests.waiting import wait_for

KEY = "693a91f6-7f3e-4bc4-97a0-0ec2a1fa5aaa"


@pytest.mark.parametrize(("line", "secret"), [
    (f"POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY} failed", KEY),
    ("https://oapi.dingtalk.com/robot/send?access_token=0f1e2d3c4b5a69788796a5b4c3d2e1f0&timestamp=1", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    (f"https://open.feishu.cn/open-apis/bot/v2/hook/{KEY} answered 500", KEY),
    ("rtsp://admin:p@ss@w0rd@10.0.0.21:554/Streaming/Channels/101", "w0rd"),
    ("rtsp://admin:s3cret@10.0.0.21/live", "s3cret"),
    ("login with password=hunter2!, refused", "hunter2"),
    ("Authorization: Bearer eyJhbGciOi.abc.def", "eyJhbGciOi"),
    ("kiosk dk_Zm9vYmFyYmF6cXV4 used", "Zm9vYmFyYmF6cXV4"),
])
def test_the_masker_hides_it(line: str, secret: str) -> None:
    assert secret not in mask(line)


def test_the_masker_leaves_ordinary_text() -> None:
    text = "camera room1 online at rtsp://10.0.0.21:554/Streaming/Channels/101 (12.5 fps)"
    assert mask(text) == text


async def test_a_webhook_key_is_neither_a_metric_label_nor_logged(make_config: Any, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key={KEY}"  # nothing listens: every attempt fails
    cfg = make_config(alerts={"webhooks": [{"url": url, "levels": ["red"]}]}, delivery={"retry": {"base_delay_s": 0.01, "max_attempts": 2}})
    with caplog.at_level(logging.INFO):
        async with running(cfg) as r:
            await r.services.alerts.raise_alert("tamper", device_id="t1")
            await wait_for(lambda: 'gateway_outbox_dead_total{channel="webhook-0"} 1.0' in r.services.metrics.render().decode(), 30,
                           "the delivery dead-lettered")
            text = r.services.metrics.render().decode()
    assert KEY not in text and "key=" not in text
    formatter = MaskingFormatter("%(message)s")
    assert not [rec.getMessage() for rec in caplog.records if KEY in formatter.format(rec)]
    assert any("channel webhook-0" in rec.getMessage() for rec in caplog.records)
