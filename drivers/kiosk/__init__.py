"""Kiosks (heartbeats, events, check-ins) and the face recognition service they use.

`build` puts the recognition service in `services.extras["recognition"]` and the
kiosk session in `services.extras["kiosks"]`, where the API routes find them,
and adds the 1:N camera sampler (streams/sampler.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.services import Component, Services


def build(services: "Services") -> "list[Component]":
    from drivers.kiosk.session import KioskDriver
    from recognition.service import Recognition
    from streams.sampler import build_sampler

    recognition = Recognition(services)
    kiosks = KioskDriver(services)
    services.extras["recognition"] = recognition
    services.extras["kiosks"] = kiosks
    components: list[Component] = [recognition, kiosks]
    sampler = build_sampler(services, recognition)
    if sampler is not None:
        components.append(sampler)
    return components
