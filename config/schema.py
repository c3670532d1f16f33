"""The root of the configuration tree.

Device-kind and area sections live in their own modules (config/cameras.py,
config/trackers.py, config/faces.py, config/uploads.py, config/kiosks.py) so
each area owns its settings; this module only assembles them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from config.base import Section, TimeZone
from config.calls import CallSettings
from config.cameras import RecordingSettings
from config.delivery import DeliverySettings
from config.devices import DeviceConfig
from config.faces import FaceSettings
from config.trackers import GpsSettings
from config.uploads import UploadSettings
from config.zones import ZoneConfig

Level = Literal["red", "orange", "yellow", "blue"]
LEVELS: tuple[Level, ...] = ("red", "orange", "yellow", "blue")


class GatewaySettings(Section):
    node_id: str = Field("gw1", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Name of this gateway process, used in MQTT client id and LWT topic.")
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Field(Path("data"), description="Where the SQLite database, media and secrets live.")
    public_url: str | None = Field(None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
                                   description="The console's URL as officers reach it: alert messages (webhooks, MQTT) then carry a link to the alert.")
    secret_key: SecretStr | None = Field(None, description="Signs tokens and cookies. Set through GATEWAY_GATEWAY__SECRET_KEY; generated into data_dir when absent.")
    max_body_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="Largest request body outside the tus upload endpoint.")
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: TimeZone = Field("Asia/Shanghai", description="Default time zone of zones, curfews and kiosk schedules that name none.")

    @field_validator("secret_key")
    @classmethod
    def _secret_len(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        return v


class StorageSettings(Section):
    database_url: str | None = Field(None, description="SQLAlchemy URL. Default: SQLite file under data_dir. PostgreSQL: postgresql://user@host/db")
    media_dir: Path | None = Field(None, description="Recordings, evidence and photos. Default: data_dir/media")
    echo_sql: bool = False
    disk_full_below_bytes: int = Field(64 * 1024**2, ge=0, description="A disk the gateway writes to (data_dir, media_dir, the SQLite database) with less free space than this is full: /healthz fails and one disk_full alert is raised.")
    disk_check_s: float = Field(5, gt=0, le=3600, description="How often the free space of those disks is read (a write failing with ENOSPC is noticed at once).")
    disk_clear_after_s: float = Field(30, ge=0, le=86400, description="The disk_full incident ends once free space has stayed above twice disk_full_below_bytes this long.")


class MqttSettings(Section):
    url: str | None = Field(None, description="mqtt://[user[:password]@]host[:port] or mqtts://...; None: no broker (demo starts an embedded one).")
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = Field(None, description="Stable id for the persistent session; default gateway-{node_id}.")
    keepalive_s: int = Field(30, ge=5, le=3600)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    ca_file: Path | None = None
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)


class ClusterSettings(Section):
    """Several gateway nodes on one PostgreSQL database and one MQTT broker (docs/cluster.md).
    A single node runs the same code: it simply holds every lease."""

    lease_ttl_s: float = Field(5.0, ge=1, le=300, description="A node that stops renewing its leases loses them this long after its last renewal; a survivor then takes its work over.")
    renew_s: float = Field(1.0, gt=0, le=60, description="How often a node renews its leases, beats its heart and claims unowned work.")
    tracker_partitions: int = Field(16, ge=1, le=1024, description="Trackers are spread over this many partitions, each owned by one node (the same on every node).")
    standby_window_s: float = Field(120.0, ge=10, le=3600, description="How long a node keeps the tracker messages of partitions it does not own, to replay them when it takes one over.")
    advertise_url: str | None = Field(None, pattern=r"^https?://[^/?#\s]+$",
                                      description="How the other nodes reach this node's HTTP server (WHEP and snapshot relay). Default: http://{gateway.host}:{gateway.port}.")

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> "ClusterSettings":
        if self.renew_s * 2 > self.lease_ttl_s:
            raise ValueError(f"renew_s ({self.renew_s}) must be at most half of lease_ttl_s ({self.lease_ttl_s}): a lease must survive a missed renewal")
        return self


class AuthSettings(Section):
    token_ttl_s: int = Field(12 * 3600, ge=60)
    cookie_secure: bool = Field(False, description="Mark the session cookie Secure (set behind HTTPS).")
    login_attempts_per_minute: int = Field(10, ge=1, description="Per user name and per client address; kiosk pairing attempts count with them.")
    pairing_code_ttl_s: int = Field(600, ge=30, le=86_400, description="How long a kiosk pairing code (shown in the console, typed on the terminal) stays valid.")


class Webhook(Section):
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for the X-Gateway-Signature header.")
    levels: list[Level] = Field(default_factory=lambda: list(LEVELS))
    kinds: list[str] | None = Field(None, description="Only these alert kinds; all when absent.")
    max_attempts: int | None = Field(None, ge=1, le=1000, description="Then dead-lettered; delivery.retry.max_attempts when absent.")
    timeout_s: float = Field(5.0, gt=0)
    drain_s: float | None = Field(None, ge=0, le=600, description="Unused: deliveries are durable in the outbox (kept so older configurations still load).")


class EscalationRule(Section):
    after_s: int = Field(ge=1, description="Unacknowledged for this long → raised one level.")


def _default_escalation() -> dict[Level, EscalationRule]:
    return {"orange": EscalationRule(after_s=600), "yellow": EscalationRule(after_s=1800)}


class Disposal(Section):
    """One way an alert can be disposed of (处置), with its label in each console language."""

    id: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    zh_cn: str = Field(min_length=1, max_length=100, description="Label in zh-CN.")
    en: str = Field(min_length=1, max_length=100, description="Label in English.")


def _default_disposals() -> list[Disposal]:
    return [Disposal(id=i, zh_cn=zh, en=en) for i, zh, en in (
        ("phone_call", "电话核实", "Phone call"),
        ("home_visit", "上门走访", "Home visit"),
        ("summoned_for_talk", "传唤谈话", "Summoned for a talk"),
        ("reported_to_police", "通报公安", "Reported to the police"),
        ("false_alarm", "误报", "False alarm"),
        ("other", "其他", "Other"),
    )]


class AlertSettings(Section):
    escalate: dict[Level, EscalationRule] = Field(
        default_factory=_default_escalation,
        description="Per level: raise an unacknowledged alert one level after after_s seconds.",
    )
    levels: dict[str, Level] = Field(default_factory=dict, description="Override the level of an alert kind, e.g. {lost_contact: orange}.")
    webhooks: list[Webhook] = Field(default_factory=list)
    mqtt_topic_prefix: str = "gateway/alerts"
    mqtt_unit_topic_prefix: str | None = Field("gateway/units", description="Alerts also under <prefix>/<unit path>/alerts/...: per-unit broker ACLs (docs/units.md); null: not published.")
    disposals: list[Disposal] = Field(
        default_factory=_default_disposals, min_length=1,
        description="What an alert can be disposed of with (POST /api/alerts/{id}/dispose), in the console's order.",
    )

    @field_validator("disposals")
    @classmethod
    def _unique_disposals(cls, v: list[Disposal]) -> list[Disposal]:
        ids = [d.id for d in v]
        if len(set(ids)) != len(ids):
            raise ValueError("disposal ids must be unique")
        return v


class ConsoleSettings(Section):
    default_language: Literal["zh-CN", "en"] = "zh-CN"
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_datum: Literal["wgs84", "gcj02"] = "wgs84"
    tile_attribution: str = "© OpenStreetMap contributors"
    map_center: tuple[float, float] = (31.2304, 121.4737)


class UnitConfig(Section):
    """An organisation unit (province, city, county bureau, judicial office, ...)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    parent: str = Field("root", description="The unit above it (another entry of units:, or root).")


class PersonConfig(Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str
    unit: str | None = Field(None, max_length=64, description="The organisation unit the person is supervised by; the root unit when absent.")
    category: str | None = Field(None, description="e.g. probation, parole, suspended sentence")
    notes: str | None = None


class Thresholds(Section):
    gps: GpsSettings = Field(default_factory=GpsSettings)
    faces: FaceSettings = Field(default_factory=FaceSettings)
    low_battery_pct: int = Field(20, ge=1, le=99)


class GatewayConfig(Section):
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    recording: RecordingSettings = Field(default_factory=RecordingSettings)
    uploads: UploadSettings = Field(default_factory=UploadSettings)
    calls: CallSettings = Field(default_factory=CallSettings)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    units: list[UnitConfig] = Field(default_factory=list, description="The organisation tree below the root unit; units can also be managed through the API.")
    persons: list[PersonConfig] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)

    def reference_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Rules that span sections, each with the key path it concerns."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for section, items in (("persons", self.persons), ("devices", self.devices), ("zones", self.zones)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.id in seen:
                    problems.append(((section, i, "id"), f"id {item.id!r} appears more than once in {section}"))
                seen.add(item.id)
        units = {"root"}
        for i, u in enumerate(self.units):
            if u.id in units:
                problems.append((("units", i, "id"), f"unit {u.id!r} appears more than once (or is the root)"))
            units.add(u.id)
        parents = {u.id: u.parent for u in self.units}
        for i, u in enumerate(self.units):
            if u.parent not in units:
                problems.append((("units", i, "parent"), f"unit {u.id!r} names parent {u.parent!r}, which is not in units"))
                continue
            seen, at = {u.id}, u.parent
            while at != "root" and at in parents:
                if at in seen:
                    problems.append((("units", i, "parent"), f"unit {u.id!r} is below itself"))
                    break
                seen.add(at)
                at = parents[at]
        for section, items in (("persons", self.persons), ("devices", self.devices), ("zones", self.zones)):
            for i, item in enumerate(items):
                unit = getattr(item, "unit", None)
                if unit is not None and unit not in units:
                    problems.append(((section, i, "unit"), f"{item.id!r} names unit {unit!r}, which is not in units"))
        persons = {p.id for p in self.persons}
        for i, d in enumerate(self.devices):
            pid = getattr(d, "person_id", None)
            if pid is not None and pid not in persons:
                problems.append((("devices", i, "person_id"), f"device {d.id!r} names person {pid!r}, who is not in persons"))
        for i, z in enumerate(self.zones):
            for j, pid in enumerate(z.person_ids):
                if pid not in persons:
                    problems.append((("zones", i, "person_ids", j), f"zone {z.id!r} names person {pid!r}, who is not in persons"))
        return problems

    # Derived paths: one place decides where files go.
    @property
    def media_dir(self) -> Path:
        return self.storage.media_dir or self.gateway.data_dir / "media"

    @property
    def database_url(self) -> str:
        return self.storage.database_url or f"sqlite:///{(self.gateway.data_dir / 'gateway.db').as_posix()}"

