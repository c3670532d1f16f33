"""The channels an alert change can go out on: a generic webhook, the WeCom, DingTalk and
Feishu group robots and e-mail. Each turns a `Message` into its peer's documented request and
the answer into sent, `Retry` (worth trying again) or `Refused` (malformed: dead-lettered).

Secrets come from the environment (config/delivery.py) and are never part of a name, a log
line or an error text: a robot's URL carries its token, so errors name the channel only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import quote_plus

import aiosmtplib
import httpx

from config.delivery import (
    DingTalkChannel,
    EmailChannel,
    FeishuChannel,
    WebhookChannel,
    WeComChannel,
    env_secret,
)
from gateway.outbox.messages import Message

USER_AGENT = "supervision-gateway"


class Retry(Exception):
    """The channel may take it later (5xx, 408, 429, a timeout, a robot's rate limit)."""


class Refused(Exception):
    """The channel will never take this message as it is (a 4xx, a robot's error code)."""


class Sender(Protocol):
    name: str

    async def send(self, msg: Message, address: str | None) -> None: ...


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(secret, "timestamp\\nsecret")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's signature: base64(HMAC-SHA256 keyed with "timestamp\\nsecret" over nothing)."""
    return base64.b64encode(hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()


def _status(r: httpx.Response) -> None:
    if r.status_code < 300:
        return
    if r.status_code in (408, 425, 429) or r.status_code >= 500:
        raise Retry(f"HTTP {r.status_code}")
    raise Refused(f"HTTP {r.status_code}: {r.text[:200]}")


def _robot_answer(r: httpx.Response, field: str, retry_codes: set[int]) -> None:
    """Robots answer 200 with an error code in the body."""
    _status(r)
    try:
        body = r.json()
        code = int(body.get(field, 0))
    except (ValueError, AttributeError, TypeError):
        raise Retry(f"unreadable answer: {r.text[:100]!r}") from None
    if code == 0:
        return
    reason = f"{field} {code}: {str(body.get('errmsg') or body.get('msg') or '')[:200]}"
    raise (Retry if code in retry_codes else Refused)(reason)


class _Http:
    def __init__(self, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        try:
            return await self.client.post(url, timeout=self.timeout_s, **kw)
        except httpx.HTTPError as e:
            raise Retry(type(e).__name__) from None


class Webhook(_Http):
    def __init__(self, name: str, url: str, secret: str | None, client: httpx.AsyncClient, timeout_s: float) -> None:
        super().__init__(client, timeout_s)
        self.name, self.url, self.secret = name, url, secret

    @classmethod
    def of(cls, c: WebhookChannel, client: httpx.AsyncClient) -> "Webhook":
        return cls(c.name, c.url, env_secret(c.secret_env), client, c.timeout_s)

    async def send(self, msg: Message, address: str | None) -> None:
        body = {"change": msg.change, **msg.alert, "idempotency_key": msg.key, "text": msg.text()}
        if msg.url:
            body["url"] = msg.url
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Idempotency-Key": msg.key}
        if self.secret:
            headers["X-Gateway-Signature"] = signature(self.secret, data)
        _status(await self.post(self.url, content=data, headers=headers))


class WeCom(_Http):
    RETRY = {-1, 45009, 45033}  # busy, frequency limit, concurrency limit

    def __init__(self, c: WeComChannel, client: httpx.AsyncClient) -> None:
        super().__init__(client, c.timeout_s)
        self.name = c.name
        self.url = f"{c.base_url.rstrip('/')}/cgi-bin/webhook/send"
        self.key = env_secret(c.key_env) or ""

    async def send(self, msg: Message, address: str | None) -> None:
        content = msg.markdown().encode()[:4000].decode(errors="ignore")  # the robot's limit is 4096 bytes
        r = await self.post(self.url, params={"key": self.key}, json={"msgtype": "markdown", "markdown": {"content": content}},
                            headers={"User-Agent": USER_AGENT})
        _robot_answer(r, "errcode", self.RETRY)


class DingTalk(_Http):
    RETRY = {-1, 130101, 130102}  # busy, sending too fast

    def __init__(self, c: DingTalkChannel, client: httpx.AsyncClient) -> None:
        super().__init__(client, c.timeout_s)
        self.name = c.name
        self.url = f"{c.base_url.rstrip('/')}/robot/send"
        self.token = env_secret(c.token_env) or ""
        self.secret = env_secret(c.secret_env)

    async def send(self, msg: Message, address: str | None) -> None:
        query = f"access_token={quote_plus(self.token)}"
        if self.secret:
            ts = int(time.time() * 1000)
            query += f"&timestamp={ts}&sign={dingtalk_sign(self.secret, ts)}"
        body = {"msgtype": "markdown", "markdown": {"title": msg.title, "text": msg.markdown()}}
        r = await self.post(f"{self.url}?{query}", json=body, headers={"User-Agent": USER_AGENT})
        _robot_answer(r, "errcode", self.RETRY)


class Feishu(_Http):
    RETRY = {11232, 9499}  # frequency limited; "Bad Request" is what an overloaded bot answers too

    def __init__(self, c: FeishuChannel, client: httpx.AsyncClient) -> None:
        super().__init__(client, c.timeout_s)
        self.name = c.name
        self.url = f"{c.base_url.rstrip('/')}/open-apis/bot/v2/hook/{env_secret(c.token_env)}"
        self.secret = env_secret(c.secret_env)

    async def send(self, msg: Message, address: str | None) -> None:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": msg.text()}}
        if self.secret:
            ts = int(time.time())
            body = {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts), **body}
        _robot_answer(await self.post(self.url, json=body, headers={"User-Agent": USER_AGENT}), "code", self.RETRY)


class Email:
    def __init__(self, c: EmailChannel) -> None:
        self.name = c.name
        self.c = c
        self.password = env_secret(c.password_env)

    async def send(self, msg: Message, address: str | None) -> None:
        to = [address] if address else self.c.to
        if not to:
            raise Refused("no recipient: neither the channel's `to` nor a duty shift's address")
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = self.c.sender, ", ".join(to), msg.title
        domain = self.c.sender.rsplit("@", 1)[1]
        m["Message-ID"] = f"<{msg.key.replace(':', '.')}@{domain}>"  # the same for every attempt: mail clients drop a repeat
        m["X-Idempotency-Key"] = msg.key
        m.set_content(msg.text())
        try:
            await aiosmtplib.send(m, hostname=self.c.host, port=self.c.port, username=self.c.username, password=self.password,
                                  start_tls=self.c.security == "starttls", use_tls=self.c.security == "tls", timeout=self.c.timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as e:
            raise Refused(f"recipients refused: {', '.join(r.recipient for r in e.recipients)}") from None
        except aiosmtplib.SMTPResponseException as e:
            if 500 <= e.code < 600:
                raise Refused(f"SMTP {e.code}") from None
            raise Retry(f"SMTP {e.code}") from None
        except (aiosmtplib.SMTPException, OSError) as e:
            raise Retry(type(e).__name__) from None


def build_senders(channels: list[Any], client: httpx.AsyncClient) -> dict[str, Sender]:
    out: dict[str, Sender] = {}
    for c in channels:
        if isinstance(c, WebhookChannel):
            out[c.name] = Webhook.of(c, client)
        elif isinstance(c, WeComChannel):
            out[c.name] = WeCom(c, client)
        elif isinstance(c, DingTalkChannel):
            out[c.name] = DingTalk(c, client)
        elif isinstance(c, FeishuChannel):
            out[c.name] = Feishu(c, client)
        elif isinstance(c, EmailChannel):
            out[c.name] = Email(c)
    return out
