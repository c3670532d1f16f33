"""Storage models. API models are separate (gateway/api/schemas.py): stored
fields such as password and key hashes are never returned by the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gateway.clock import utcnow
from gateway.db.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Unit(Base):
    """An organisation unit (province, city, county bureau, judicial office, ...). `path` is
    the ids from the root down, `/root/sh/hp/hp-xj/`: a unit's reach (itself and every unit
    below it) is one prefix match, on every node, with no tree held in memory."""

    __tablename__ = "units"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(1000), index=True)
    source: Mapped[str] = mapped_column(String(16), default="api")  # system | config | api
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped to revoke every token issued before.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)


class Person(Base):
    __tablename__ = "persons"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    supervision_level: Mapped[str | None] = mapped_column(String(16))  # strict | ordinary | lenient (严管/普管/宽管)
    officer: Mapped[str | None] = mapped_column(String(64))  # the responsible officer: a console user's name
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)
    source: Mapped[str] = mapped_column(String(16), default="api")  # config | api
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    person_id: Mapped[str | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"), index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    key_hash: Mapped[str | None] = mapped_column(String(128))
    # A credential the gateway presents to the device (a camera's RTSP password): it must
    # be kept in the clear to be used, and is never returned by the API or logged.
    secret: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    state_reason: Mapped[str | None] = mapped_column(String(200))
    last_seen_at: Mapped[datetime | None]
    battery: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ZonePerson(Base):
    __tablename__ = "zone_persons"
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)


class Zone(Base):
    __tablename__ = "zones"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # inclusion | exclusion
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)  # GeoJSON, always WGS-84
    radius_m: Mapped[float | None] = mapped_column(Float)
    datum: Mapped[str] = mapped_column(String(8), default="wgs84")  # as entered
    geometry_input: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # as entered, before conversion
    schedule: Mapped[list[Any] | None] = mapped_column(JSON)
    timezone: Mapped[str] = mapped_column(String(64))  # gateway.timezone when none was given
    buffer_m: Mapped[float] = mapped_column(Float, default=30.0)
    dwell_s: Mapped[float] = mapped_column(Float, default=60.0)
    level: Mapped[str | None] = mapped_column(String(8))
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    persons: Mapped[list[ZonePerson]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class PositionRow(Base):
    __tablename__ = "positions"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str | None] = mapped_column(String(64))
    fix_time: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    alt_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    course_deg: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    satellites: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="nmea")
    in_order: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (
        Index("ix_positions_device_time", "device_id", "fix_time"),
        Index("ix_positions_person_time", "person_id", "fix_time"),
    )


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    level: Mapped[str] = mapped_column(String(8))
    original_level: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    dedup_key: Mapped[str] = mapped_column(String(200), index=True)
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64))
    zone_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    escalated_at: Mapped[datetime | None]
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)
    # handling, as the corrections units work an alert: assigned (to a unit, and maybe an
    # officer of it), assessed (研判), disposed (处置), fed back (反馈: closes it)
    assigned_unit_id: Mapped[str | None] = mapped_column(String(64), index=True)
    assignee: Mapped[str | None] = mapped_column(String(64))
    assigned_at: Mapped[datetime | None]
    assessment: Mapped[str | None] = mapped_column(Text)
    assessed_at: Mapped[datetime | None]
    assessed_by: Mapped[str | None] = mapped_column(String(64))
    disposal: Mapped[str | None] = mapped_column(String(32))
    disposal_note: Mapped[str | None] = mapped_column(Text)
    disposed_at: Mapped[datetime | None]
    disposed_by: Mapped[str | None] = mapped_column(String(64))
    feedback: Mapped[str | None] = mapped_column(Text)
    fed_back_at: Mapped[datetime | None]
    fed_back_by: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[list[AlertNote]] = relationship(cascade="all, delete-orphan", lazy="selectin", order_by="AlertNote.id")


class AlertNote(Base):
    __tablename__ = "alert_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # opened | updated | acknowledged | resolved | escalated | note
    text: Mapped[str | None] = mapped_column(Text)


class Recording(Base):
    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8), default="segment")  # segment | gap
    path: Mapped[str | None] = mapped_column(String(500))  # relative to media_dir
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    codec: Mapped[str | None] = mapped_column(String(32))
    has_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    hold: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_recordings_camera_time", "camera_id", "started_at"),)


class Proceeding(Base):
    __tablename__ = "proceedings"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    case_ref: Mapped[str | None] = mapped_column(String(100))
    camera_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="recording")  # recording | sealed
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
    started_by: Mapped[str | None] = mapped_column(String(64))
    stopped_by: Mapped[str | None] = mapped_column(String(64))
    pre_roll_s: Mapped[int] = mapped_column(Integer, default=10)
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    prev_manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    attendance: Mapped[list[Any] | None] = mapped_column(JSON)
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)


class Evidence(Base):
    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # upload | proceeding
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(500))  # relative to media_dir
    filename: Mapped[str | None] = mapped_column(String(255))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    officer: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    case_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    proceeding_id: Mapped[int | None] = mapped_column(ForeignKey("proceedings.id"))
    recorded_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    media: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    thumbnail: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), default="stored")  # stored | quarantined
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)


class Custody(Base):
    __tablename__ = "custody"
    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(16))  # received | verified | viewed | exported
    actor: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FaceEncoding(Base):
    __tablename__ = "face_encodings"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    photo_path: Mapped[str] = mapped_column(String(500))
    encoding: Mapped[bytes] = mapped_column(LargeBinary)  # 128 float64, little-endian
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckInRow(Base):
    __tablename__ = "checkins"
    id: Mapped[int] = mapped_column(primary_key=True)
    kiosk_id: Mapped[str] = mapped_column(String(64), index=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    result: Mapped[str] = mapped_column(String(16))
    distance: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    thumbnail: Mapped[str | None] = mapped_column(String(500))
    liveness: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # when it reached the gateway, when that was not when it was made (queued offline: `at` is
    # the time the person stood at the terminal)
    received_at: Mapped[datetime | None]
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)
    # remote check-ins (a phone, by a one-time link): where the phone was and how that position
    # stands against the person's zones ({lat, lon, accuracy_m, taken_at, verdict, zones, ...})
    position: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class FaceMatch(Base):
    __tablename__ = "face_matches"
    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    distance: Mapped[float | None] = mapped_column(Float)
    snapshot: Mapped[str | None] = mapped_column(String(500))


class LivenessChallenge(Base):
    """An active-liveness challenge issued to one kiosk for one person; single use, short-lived.
    Stored so that any gateway node can verify the check-in that answers it."""

    __tablename__ = "liveness_challenges"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # secrets.token_urlsafe: unguessable
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    person_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class KioskEventRow(Base):
    __tablename__ = "kiosk_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    kiosk_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the person it is about (a report, a leave request, an SOS), from payload.person_id: the
    # person's timeline reads it by index
    person_id: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("kiosk_id", "event_id", name="uq_kiosk_event"), Index("ix_kiosk_events_person", "person_id", "received_at"))


class AuditEntry(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The last entry's id and hash, updated with every append, so deleting
    the newest rows is detected as well as editing or deleting older ones."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class UploadRow(Base):
    """tus upload state (uploads area). The partial file lives at
    media_dir/uploads/partial/{id}.part; `offset` is only advanced after the
    bytes are on disk, so a restart resumes from what the file really holds."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="receiving", index=True)  # receiving | completed | terminated | expired | failed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    evidence_id: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))


class ClusterNode(Base):
    """A gateway process of the cluster (gateway/cluster/): its heartbeat says it is alive.
    `instance` is random per process, so a second process started with a live node's id is
    told apart from that node restarting."""

    __tablename__ = "cluster_nodes"
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(String(300))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)


class Lease(Base):
    """One piece of work (a camera, a tracker partition, a singleton) and the node that owns
    it until `expires_at`. `epoch` grows with every change of owner: a write checked against
    it cannot come from a node that lost the lease. `progress`: where the owner's work had
    got to (a tracker partition: the arrival time of the last committed message)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    acquired_at: Mapped[datetime | None] = mapped_column()
    renewed_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    progress: Mapped[datetime | None] = mapped_column()


class DutyShift(Base):
    """Who is on duty for a unit, and when. New red and orange alerts of the unit go to the
    duty officer's channel (`channel`: a configured channel's name; `address`: an e-mail
    address when that channel is e-mail)."""

    __tablename__ = "duty_shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64))
    officer: Mapped[str | None] = mapped_column(String(64))  # a console user's name, when they have one
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(320))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_duty_shifts_unit_time", "unit_id", "starts_at"),)


class OutboxChange(Base):
    """An alert change to deliver beyond the console, written in the change's transaction.
    `routed` turns true once its deliveries (one per channel the rules pick) are written."""

    __tablename__ = "outbox_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    routed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_outbox_changes_unrouted", "routed", "id"),)


class OutboxDelivery(Base):
    """One change to one channel (and address): pending until the channel confirms (sent),
    or dead with the reason. `key` (change id and channel) is the idempotency key every
    message carries, so a receiver can drop a repeat after a crash between send and mark."""

    __tablename__ = "outbox_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("outbox_changes.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(320))
    key: Mapped[str] = mapped_column(String(400), unique=True)
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending, sent, dead
    attempts: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_outbox_deliveries_due", "state", "next_at"),)


class PairingCode(Base):
    """A short one-time code an admin gives a kiosk terminal, typed on it to get the kiosk's
    key (nobody types a 256-bit key by hand). Stored hashed; single use; minutes long."""

    __tablename__ = "pairing_codes"
    code_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_pairing_codes_device", "device_id"),)


class KioskSubmission(Base):
    """A kiosk check-in by the terminal's own reference: written before the check is made (the
    primary key makes a concurrent replay wait), its decision after; a replay (the answer was
    lost, the terminal was offline) gets the first decision, and no second check-in is made."""

    __tablename__ = "kiosk_submissions"
    kiosk_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_ref: Mapped[str] = mapped_column(String(100), primary_key=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallSession(Base):
    """A remote video session (streams/calls.py): recorded by the node it runs on as one
    file, sealed as its proceeding when it ends."""

    __tablename__ = "call_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    proceeding_id: Mapped[int | None] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    case_ref: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="active")  # ringing | active | ended
    checks: Mapped[bool] = mapped_column(Boolean, default=False)  # identity checks at random moments
    node_id: Mapped[str] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(500))  # the recording, relative to media_dir
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(String(200))
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root", index=True)


class CallParty(Base):
    """One party of a session: the officer (a user), a kiosk (its key) or a join link (a
    token, stored hashed, valid until expires_at)."""

    __tablename__ = "call_parties"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # officer | kiosk | link
    label: Mapped[str] = mapped_column(String(100))
    person_id: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    username: Mapped[str | None] = mapped_column(String(64))
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="invited")  # invited | connected | dropped | left
    joined_at: Mapped[datetime | None]
    gaps: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{started_at, ended_at}] while dropped


class CallCheck(Base):
    """An identity check of a party during a session: the face in its picture against the
    enrolled person's."""

    __tablename__ = "call_checks"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"), index=True)
    party_id: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # present | impostor | absent | uncertain
    distance: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(16))  # start | random | officer


class CheckinLink(Base):
    """A one-time link an officer sends a person for a remote check-in from a phone
    (gateway/kiosk/remote.py). The token is in the link's fragment, stored here only hashed;
    the link is used up by a decision (accepted or rejected), not by a retry, and allows at most
    a few attempts. `busy_since` marks a check being made now, so two phones holding the same
    link cannot both check in."""

    __tablename__ = "checkin_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    unit_id: Mapped[str] = mapped_column(String(64), default="root", server_default="root")
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    busy_since: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(16))
    checkin_id: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
