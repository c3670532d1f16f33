"""Delivery of alert changes to the field: channels, routing rules, retries (docs/delivery.md).

A channel's secret is never in YAML: each channel names the environment variable that holds
it (`key_env`, `token_env`, `secret_env`, `password_env`); a missing variable is an error at
start, with the channel named.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, model_validator

from config.base import Section

Level = Literal["red", "orange", "yellow", "blue"]
ALL_LEVELS: list[Level] = ["red", "orange", "yellow", "blue"]
ChannelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def env_secret(name: str | None) -> str | None:
    """The value of the environment variable `name` (None when no variable is named)."""
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return value


class _Channel(Section):
    name: ChannelName
    timeout_s: float = Field(10.0, gt=0, le=120)


class WebhookChannel(_Channel):
    """A generic HTTP receiver: the alert as JSON, HMAC-SHA256 of the body in X-Gateway-Signature."""

    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://", description="No secret in the URL: it is logged by host only, but put tokens in secret_env.")
    secret_env: EnvName | None = None


class WeComChannel(_Channel):
    """WeCom (企业微信) group robot: POST {base_url}/cgi-bin/webhook/send?key=KEY, markdown."""

    kind: Literal["wecom"]
    key_env: EnvName
    base_url: str = Field("https://qyapi.weixin.qq.com", pattern=r"^https?://")


class DingTalkChannel(_Channel):
    """DingTalk robot: POST {base_url}/robot/send?access_token=T&timestamp=MS&sign=S (加签)."""

    kind: Literal["dingtalk"]
    token_env: EnvName
    secret_env: EnvName | None = Field(None, description="The robot's signing secret (SEC...); without it the robot must use another security setting.")
    base_url: str = Field("https://oapi.dingtalk.com", pattern=r"^https?://")


class FeishuChannel(_Channel):
    """Feishu/Lark custom bot: POST {base_url}/open-apis/bot/v2/hook/TOKEN with timestamp and sign."""

    kind: Literal["feishu"]
    token_env: EnvName
    secret_env: EnvName | None = None
    base_url: str = Field("https://open.feishu.cn", pattern=r"^https?://")


class EmailChannel(_Channel):
    kind: Literal["email"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password_env: EnvName | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="The From address.")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(default_factory=list, description="Recipients; a duty shift's address replaces them.")


Channel = Annotated[WebhookChannel | WeComChannel | DingTalkChannel | FeishuChannel | EmailChannel, Field(discriminator="kind")]
CHANGES = ("opened", "updated", "escalated", "acknowledged", "resolved", "assigned", "assessed", "disposed", "fed_back", "level_changed", "noted")
NEW_OR_ESCALATED: list["Change"] = ["opened", "escalated"]
URGENT: list[Level] = ["red", "orange"]
Change = Literal["opened", "updated", "escalated", "acknowledged", "resolved", "assigned", "assessed", "disposed", "fed_back", "level_changed", "noted"]


class Rule(Section):
    """Alert changes of `unit` (and, with include_below, of every unit below it) at these
    levels, of these kinds and changes, go to these channels."""

    unit: str = Field("root", min_length=1, max_length=64)
    include_below: bool = True
    levels: list[Level] = Field(default_factory=lambda: list(ALL_LEVELS))
    kinds: list[str] | None = Field(None, description="Only these alert kinds; all when absent.")
    changes: list[Change] = Field(default_factory=lambda: list(NEW_OR_ESCALATED))
    channels: list[ChannelName] = Field(min_length=1)


class RetrySettings(Section):
    base_delay_s: float = Field(2.0, gt=0, le=3600)
    max_delay_s: float = Field(600.0, gt=0, le=86400)
    max_attempts: int = Field(20, ge=1, le=1000, description="Then the delivery is dead-lettered (GET /api/outbox/dead).")


class DeliverySettings(Section):
    channels: list[Channel] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    duty_levels: list[Level] = Field(default_factory=lambda: list(URGENT),
                                     description="New alerts at these levels also go to the channel of the unit's duty officer (the duty roster).")
    poll_s: float = Field(2.0, gt=0, le=60, description="How often the sender looks for changes staged on other nodes.")
    batch: int = Field(200, ge=1, le=5000)
    concurrency: int = Field(4, ge=1, le=64, description="Deliveries in flight per channel.")

    @model_validator(mode="after")
    def _names(self) -> "DeliverySettings":
        names = [c.name for c in self.channels]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"channel names must be unique: {sorted(dup)}")
        for rule in self.rules:
            unknown = [c for c in rule.channels if c not in names]
            if unknown:
                raise ValueError(f"a rule names channels that are not configured: {unknown}")
        return self
