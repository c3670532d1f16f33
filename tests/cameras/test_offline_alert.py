"""Camera health: a camera offline for `recording.offline_alert_s` raises one orange
camera_offline alert, resolved when it is back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.db.models import Alert
from simulators.media import make_clip
from simulators.rtsp.server import serve_cameras
from tests.cameras.conftest import camera_config, wait_for
from tests.conftest import running


async def offline_alerts(r: Any) -> list[Alert]:
    async with r.services.db.session() as s:
        return list((await s.scalars(select(Alert).where(Alert.kind == "camera_offline").order_by(Alert.id))).all())


async def test_a_camera_gone_too_long_raises_camera_offline_and_resolves_it_when_back(tmp_path: Path, make_config: Any) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=2, profile="high")
    server = await serve_cameras({"a": clip}, port=0)
    try:
        cfg = camera_config(make_config, {"cam1": {"url": server.url("a"), "record": False}}, stall_s=1, open_timeout_s=1, backoff_max_s=1,
                            offline_alert_s=3)
        async with running(cfg) as r:
            session = r.areas.cameras.cameras["cam1"].session
            await wait_for(lambda: session.state == "online", 20, "online")
            server.stall("a", 600)  # the camera keeps its connections but sends nothing
            await wait_for(lambda: session.state != "online", 15, "offline")
            [alert] = await wait_for(lambda: offline_alerts(r), 20, "a camera_offline alert")
            assert (alert.level, alert.state, alert.device_id) == ("orange", "open", "cam1")
            # one alert for the whole time offline, not one per reconnection attempt
            attempts = session.attempts
            await wait_for(lambda: session.attempts >= attempts + 2, 20, "two more reconnection attempts")
            [alert] = await offline_alerts(r)
            assert alert.count == 1
            server.stall("a", 0)  # back
            await wait_for(lambda: session.state == "online", 20, "online again")
            [alert] = await wait_for(lambda: _resolved(r), 10, "the camera_offline alert resolved")
            assert alert.notes[-1].text == "camera back online"
    finally:
        await server.close()


async def _resolved(r: Any) -> list[Alert] | None:
    alerts = await offline_alerts(r)
    return alerts if alerts and all(a.state == "resolved" for a in alerts) else None
