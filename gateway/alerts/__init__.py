"""Alert core: every rule creates, updates or clears alerts only through AlertService."""

from gateway.alerts.public import AlertPublic, alert_payload
from gateway.alerts.service import DEFAULT_LEVELS, LEVELS, AlertError, AlertService

__all__ = ["DEFAULT_LEVELS", "LEVELS", "AlertError", "AlertPublic", "AlertService", "alert_payload"]
