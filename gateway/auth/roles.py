"""What each role may do. One table, checked by `require(permission)`.

monitor: command-centre staff: watch, acknowledge.
officer: corrections officers: also manage persons, zones, proceedings, evidence.
admin:   everything, including users, devices and the audit log.
"""

from typing import Literal

Role = Literal["admin", "monitor", "officer"]
ROLES: tuple[Role, ...] = ("admin", "monitor", "officer")

PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "live.view": frozenset(ROLES),
    "alerts.ack": frozenset(ROLES),
    "alerts.resolve": frozenset({"officer", "admin"}),
    "alerts.assign": frozenset({"officer", "admin"}),
    "alerts.handle": frozenset({"officer", "admin"}),  # assess, dispose, feed back, change the level
    "alerts.note": frozenset(ROLES),
    "alerts.export": frozenset({"officer", "admin"}),
    "persons.write": frozenset({"officer", "admin"}),
    "zones.write": frozenset({"officer", "admin"}),
    "faces.enroll": frozenset({"officer", "admin"}),
    "faces.check": frozenset({"officer", "admin", "monitor"}),
    "proceedings.write": frozenset({"officer", "admin"}),
    "evidence.read": frozenset({"officer", "admin"}),
    "evidence.export": frozenset({"officer", "admin"}),
    "uploads.write": frozenset({"officer", "admin"}),
    "duty.write": frozenset({"officer", "admin"}),  # the duty roster of the units in reach
    "devices.write": frozenset({"admin"}),
    "users.write": frozenset({"admin"}),
    "units.write": frozenset({"admin"}),  # the units below the admin's own
    "audit.read": frozenset({"admin"}),
    "outbox.admin": frozenset({"admin"}),  # dead-lettered deliveries: see and retry
}


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]
