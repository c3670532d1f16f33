"""Local receivers that check what each channel's peer documents, and keep what they accept.

- generic webhook: JSON body, `X-Gateway-Signature: sha256=<HMAC-SHA256(secret, body)>`, `Idempotency-Key`;
- WeCom group robot (developer.work.weixin.qq.com/document/path/91770): POST
  /cgi-bin/webhook/send?key=KEY, `{"msgtype": "markdown", "markdown": {"content": ...}}` (≤ 4096 bytes),
  answers `{"errcode": 0, "errmsg": "ok"}`;
- DingTalk robot (open.dingtalk.com, 自定义机器人安全设置 加签): POST /robot/send?access_token=T&timestamp=MS&sign=S,
  S = urlencode(base64(HMAC-SHA256(secret, f"{MS}\\n{secret}"))), MS within an hour of now;
  `{"msgtype": "markdown", "markdown": {"title", "text"}}`; answers `{"errcode": 0}`, a bad sign `310000`;
- Feishu custom bot (open.feishu.cn, 自定义机器人 签名校验): POST /open-apis/bot/v2/hook/TOKEN with
  `timestamp` (seconds) and `sign` = base64(HMAC-SHA256 keyed with f"{ts}\\n{secret}" over an
  empty message), `msg_type` "text" and `content.text`; answers `{"code": 0}`, a bad sign `19021`;
- e-mail: an aiosmtpd SMTP server.

A message that does not follow the format is answered as the real peer would (an error code,
or HTTP 400) and recorded in `rejected`, so a test sees a format mistake as a failure. Each
accepted message is recorded with the idempotency key it carries (`keys`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from aiosmtpd.controller import Controller

from tests.conftest import free_port

KEY_IN_TEXT = re.compile(r"编号：(\S+)")


@dataclass
class Secrets:
    webhook: str = "wh-s3cret"
    wecom_key: str = "wecom-key-0123456789"
    ding_token: str = "ding-access-token-abcdef"
    ding_secret: str = "SECding-secret-xyz"
    feishu_token: str = "feishu-hook-token-987"
    feishu_secret: str = "feishu-secret-uvw"


@dataclass
class Received:
    by_channel: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    refuse_with: dict[str, int] = field(default_factory=dict)  # channel -> HTTP status to answer (a receiver "down")

    def add(self, channel: str, key: str, body: dict[str, Any]) -> None:
        self.by_channel.setdefault(channel, []).append({"key": key, "body": body})

    def keys(self, channel: str) -> Counter[str]:
        return Counter(m["key"] for m in self.by_channel.get(channel, []))

    def texts(self, channel: str) -> list[str]:
        out = []
        for m in self.by_channel.get(channel, []):
            b = m["body"]
            out.append(b.get("text") or (b.get("markdown") or {}).get("content") or (b.get("markdown") or {}).get("text")
                       or (b.get("content") or {}).get("text") or "")
        return out


def _key(text: str) -> str:
    m = KEY_IN_TEXT.search(text)
    return m.group(1) if m else ""


def build_app(sec: Secrets, got: Received) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        if (status := got.refuse_with.get("webhook")) is not None:
            return web.Response(status=status)
        body = await request.read()
        want = "sha256=" + hmac.new(sec.webhook.encode(), body, hashlib.sha256).hexdigest()
        if request.headers.get("X-Gateway-Signature") != want or not request.headers.get("Idempotency-Key"):
            got.rejected.append(("webhook", "signature or idempotency key"))
            return web.Response(status=401)
        data = json.loads(body)
        if data.get("idempotency_key") != request.headers["Idempotency-Key"]:
            got.rejected.append(("webhook", "key mismatch"))
            return web.Response(status=400)
        got.add("webhook", request.headers["Idempotency-Key"], data)
        return web.Response(status=204)

    async def wecom(request: web.Request) -> web.Response:
        if (status := got.refuse_with.get("wecom")) is not None:
            return web.Response(status=status)
        if request.query.get("key") != sec.wecom_key:
            got.rejected.append(("wecom", "key"))
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        data = await request.json()
        content = (data.get("markdown") or {}).get("content")
        if data.get("msgtype") != "markdown" or not isinstance(content, str) or not content or len(content.encode()) > 4096:
            got.rejected.append(("wecom", "format"))
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        got.add("wecom", _key(content), data)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def dingtalk(request: web.Request) -> web.Response:
        if (status := got.refuse_with.get("dingtalk")) is not None:
            return web.Response(status=status)
        q = request.query
        # aiohttp decodes the query once; the robot's sign is URL-encoded base64, so decode the raw one
        raw = dict(p.split("=", 1) for p in request.query_string.split("&") if "=" in p)
        ts = q.get("timestamp", "0")
        digest = hmac.new(sec.ding_secret.encode(), f"{ts}\n{sec.ding_secret}".encode(), hashlib.sha256).digest()
        ok_sign = unquote_plus(raw.get("sign", "")) == base64.b64encode(digest).decode()
        if q.get("access_token") != sec.ding_token or not ok_sign or abs(time.time() * 1000 - int(ts)) > 3600_000:
            got.rejected.append(("dingtalk", "token, sign or timestamp"))
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        data = await request.json()
        md = data.get("markdown") or {}
        if data.get("msgtype") != "markdown" or not md.get("title") or not md.get("text"):
            got.rejected.append(("dingtalk", "format"))
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 json"})
        got.add("dingtalk", _key(md["text"]), data)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def feishu(request: web.Request) -> web.Response:
        if (status := got.refuse_with.get("feishu")) is not None:
            return web.Response(status=status)
        data = await request.json()
        ts = str(data.get("timestamp", "0"))
        want = base64.b64encode(hmac.new(f"{ts}\n{sec.feishu_secret}".encode(), b"", hashlib.sha256).digest()).decode()
        if request.match_info["token"] != sec.feishu_token or data.get("sign") != want or abs(time.time() - int(ts)) > 3600:
            got.rejected.append(("feishu", "token, sign or timestamp"))
            return web.json_response({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"})
        text = (data.get("content") or {}).get("text")
        if data.get("msg_type") != "text" or not text:
            got.rejected.append(("feishu", "format"))
            return web.json_response({"code": 9499, "msg": "Bad Request"})
        got.add("feishu", _key(text), data)
        return web.json_response({"code": 0, "msg": "success", "data": {}})

    app = web.Application()
    app.router.add_post("/hook", webhook)
    app.router.add_post("/cgi-bin/webhook/send", wecom)
    app.router.add_post("/robot/send", dingtalk)
    app.router.add_post("/open-apis/bot/v2/hook/{token}", feishu)
    return app


@asynccontextmanager
async def robots(sec: Secrets, got: Received, port: int | None = None) -> AsyncIterator[str]:
    """The receivers on 127.0.0.1; yields their base URL."""
    runner = web.AppRunner(build_app(sec, got))
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class _Mailbox:
    def __init__(self, got: Received) -> None:
        self.got = got

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        m = message_from_bytes(envelope.content, policy=default_policy)
        body = m.get_content() if not m.is_multipart() else ""
        self.got.add("email", str(m["X-Idempotency-Key"] or ""), {"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                                                   "subject": str(m["Subject"]), "text": body, "message_id": str(m["Message-ID"])})
        return "250 Message accepted for delivery"


@asynccontextmanager
async def smtp(got: Received, port: int | None = None) -> AsyncIterator[int]:
    port = port or free_port()
    controller = Controller(_Mailbox(got), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def channels(base: str, smtp_port: int) -> list[dict[str, Any]]:
    """The delivery.channels of a config pointing at these receivers (secrets by env name)."""
    return [
        {"name": "webhook", "kind": "webhook", "url": f"{base}/hook", "secret_env": "T_WEBHOOK_SECRET"},
        {"name": "wecom", "kind": "wecom", "key_env": "T_WECOM_KEY", "base_url": base},
        {"name": "dingtalk", "kind": "dingtalk", "token_env": "T_DING_TOKEN", "secret_env": "T_DING_SECRET", "base_url": base},
        {"name": "feishu", "kind": "feishu", "token_env": "T_FEISHU_TOKEN", "secret_env": "T_FEISHU_SECRET", "base_url": base},
        {"name": "email", "kind": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
         "sender": "gateway@sfj.example.cn", "to": ["duty@sfj.example.cn"]},
    ]


def environment(sec: Secrets) -> dict[str, str]:
    return {"T_WEBHOOK_SECRET": sec.webhook, "T_WECOM_KEY": sec.wecom_key, "T_DING_TOKEN": sec.ding_token,
            "T_DING_SECRET": sec.ding_secret, "T_FEISHU_TOKEN": sec.feishu_token, "T_FEISHU_SECRET": sec.feishu_secret}


ALL = ("webhook", "wecom", "dingtalk", "feishu", "email")
