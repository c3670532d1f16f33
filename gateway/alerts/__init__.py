"""Alert core: every rule creates, updates or clears alerts only through AlertService."""

from gateway.alerts.service import DEFAULT_LEVELS, LEVELS, AlertError, AlertService, alert_to_dict

__all__ = ["DEFAULT_LEVELS", "LEVELS", "AlertError", "AlertService", "alert_to_dict"]
