"""Gateway downtime is a recording gap: after a clean restart and after a SIGKILL, the hole
between a camera's last segment and its first new one has a `gap` row."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from config import GatewayConfig
from config.loader import load_config
from gateway.assembly import Gateway, build_gateway
from gateway.db.models import Recording
from gateway.events import Event, RecordingGap
from simulators.media import make_clip
from simulators.rtsp.server import serve_cameras
from tests.cameras.conftest import camera_config, playable_frames, wait_for
from tests.conftest import free_port


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", seconds=3, fps=15, profile="high")


@asynccontextmanager
async def started(cfg: GatewayConfig) -> AsyncIterator[tuple[Gateway, list[RecordingGap]]]:
    """A gateway whose RecordingGap events are collected from its very start."""
    gw = build_gateway(cfg)
    gaps: list[RecordingGap] = []

    async def on_gap(e: Event) -> None:
        assert isinstance(e, RecordingGap)
        gaps.append(e)

    gw.core.bus.subscribe("test-gaps", on_gap, topics=(RecordingGap.topic,), inline=True)
    await gw.start()
    try:
        yield gw, gaps
    finally:
        await gw.stop()


async def recordings(gw: Gateway, kind: str) -> list[Recording]:
    async with gw.core.db.session() as s:
        q = select(Recording).where(Recording.camera_id == "cam1", Recording.kind == kind).order_by(Recording.started_at)
        return list((await s.scalars(q)).all())


async def closed(gw: Gateway) -> list[Recording]:
    return [r for r in await recordings(gw, "segment") if r.sha256]


async def after(gw: Gateway, segment: Recording) -> list[Recording]:
    return [r for r in await closed(gw) if r.started_at > segment.started_at]


async def _down_gap(gw: Gateway, gaps: list[RecordingGap], last: Recording) -> None:
    """The first new segment after `last` and the gap row and event that join them."""
    [new, *_] = await wait_for(lambda: after(gw, last), 30, "a segment after the restart")
    assert playable_frames(gw.core.media_dir / new.path) > 0
    rows = await wait_for(lambda: recordings(gw, "gap"), 10, "a gap row")
    assert last.ended_at is not None
    [gap] = [g for g in rows if g.started_at >= last.started_at]
    assert gap.started_at == last.ended_at and gap.ended_at == new.started_at  # covers the hole exactly
    assert gap.duration_s and gap.duration_s > 0
    await wait_for(lambda: gaps, 10, "the RecordingGap event")
    assert [e.reason for e in gaps] == ["gateway down"]
    assert abs(gaps[0].duration_s - gap.duration_s) < 0.01


async def test_a_gateway_restart_is_a_recorded_gap(make_config: Any, clip: Path) -> None:
    server = await serve_cameras({"cam": clip}, port=0)
    try:
        cfg = camera_config(make_config, {"cam1": server.url("cam")}, segment_s=2)
        async with started(cfg) as (gw, gaps):
            await wait_for(lambda: closed(gw), 30, "a closed segment")
        stopped_at = datetime.now(UTC)
        async with started(cfg) as (gw, gaps):
            last = [r for r in await closed(gw) if r.started_at < stopped_at][-1]  # what the first run closed at its stop
            await _down_gap(gw, gaps, last)
    finally:
        await server.close()


async def test_a_gateway_killed_is_a_recorded_gap(tmp_path: Path, clip: Path) -> None:
    server = await serve_cameras({"cam": clip}, port=0)
    data = tmp_path / "data"
    conf = tmp_path / "gw.yaml"
    conf.write_text(yaml.safe_dump({
        "gateway": {"data_dir": str(data), "port": free_port()},
        "devices": [{"id": "cam1", "kind": "camera", "url": server.url("cam")}],
        "recording": {"segment_s": 4, "min_free_bytes": 0},
    }))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            seg_dir = data / "media" / "recordings" / "cam1"

            def fragments() -> list[Path]:
                files = sorted(seg_dir.rglob("*.mp4")) if seg_dir.exists() else []
                return [f for f in files if f.stat().st_size > 30_000]

            await wait_for(fragments, 60, "an open segment with fragments")
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
        finally:
            if proc.poll() is None:
                proc.kill()
        killed_at = datetime.now(UTC)
        async with started(load_config(conf)) as (gw, gaps):
            # the segment open at the kill, finished by `recover` from its file
            last = [r for r in await closed(gw) if r.started_at < killed_at][-1]
            assert last.ended_at is not None and last.ended_at <= killed_at
            await _down_gap(gw, gaps, last)
    finally:
        await server.close()
