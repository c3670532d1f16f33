"""Status rules: what a tracker's status report (`trackers/{id}/status`, or the battery of
an OwnTracks location) means for alerts. Pure: the alert changes are returned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drivers.gps.registry import Tracker
from gateway.alerts.service import AlertCall

# Hysteresis: a low battery alert ends when the battery is this far above the threshold
BATTERY_RECOVERED_PCT = 5


def status_calls(t: Tracker, st: dict[str, Any], now: datetime, low_battery_pct: int) -> list[AlertCall]:
    at = st.get("ts") or now
    pid = t.person_id
    calls = []
    if st.get("tamper") is True:
        calls.append(AlertCall(True, "tamper", {"person_id": pid, "device_id": t.id, "message": f"tracker {t.id} reports tampering", "at": at}))
    elif st.get("tamper") is False:
        calls.append(AlertCall(False, "tamper", {"person_id": pid, "device_id": t.id, "note": "tamper switch closed", "at": at}))
    if st.get("sos") is True:
        # SOS is only ever resolved by an officer: a device cannot cancel it.
        calls.append(AlertCall(True, "sos", {"person_id": pid, "device_id": t.id, "message": f"SOS from tracker {t.id}", "at": at}))
    battery = st.get("battery")
    if battery is not None:
        if battery < low_battery_pct and not st.get("charging"):
            t.battery_low = True
            calls.append(AlertCall(True, "low_battery", {"person_id": pid, "device_id": t.id, "message": f"tracker {t.id} battery {battery}%",
                                                         "details": {"battery": battery}, "at": at}))
        elif t.battery_low and (battery >= low_battery_pct + BATTERY_RECOVERED_PCT or st.get("charging")):
            t.battery_low = False
            calls.append(AlertCall(False, "low_battery", {"person_id": pid, "device_id": t.id, "note": f"battery {battery}%", "at": at}))
    return calls
