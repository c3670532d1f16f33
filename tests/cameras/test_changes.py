"""Cameras added, edited and removed through /api/devices, applied without a restart;
credentials never in URLs; a password given through the API used and never returned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import pytest
import sqlalchemy as sa
from aiortc import RTCPeerConnection
from sqlalchemy import select

from config import load_config_text
from config.loader import ConfigError
from gateway.db.models import AuditEntry, Recording
from simulators.media import make_clip
from simulators.rtsp.server import serve_cameras
from streams.sampler import FaceSampler
from tests.cameras.conftest import playable_frames, wait_for
from tests.conftest import running

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
REC = {"segment_s": 2, "pre_roll_s": 2, "stall_s": 3, "open_timeout_s": 3, "retention_check_s": 3600, "min_free_bytes": 0,
       "backoff_max_s": 1, "auth_backoff_s": 1}


async def rows(r: Any, cam: str, kind: str = "segment") -> list[Recording]:
    async with r.services.db.session() as s:
        q = select(Recording).where(Recording.camera_id == cam, Recording.kind == kind).order_by(Recording.started_at)
        return list((await s.scalars(q)).all())


def width(path: Path) -> int:
    with av.open(str(path)) as c:
        return int(c.streams.video[0].codec_context.width)


async def closed_since(r: Any, cam: str, since: datetime) -> list[Recording]:
    return [x for x in await rows(r, cam) if x.sha256 and x.started_at >= since]


def sampled(r: Any) -> set[str]:
    sampler = next(c for c in r.areas.components if isinstance(c, FaceSampler))
    return set(sampler._consumers)


async def test_a_camera_added_through_the_api_records_and_follows_edits_and_removal(tmp_path: Path, make_config: Any) -> None:
    small = make_clip(tmp_path / "small.mp4", seconds=2, size=(320, 240), profile="baseline")  # what aiortc offers, for a viewer
    large = make_clip(tmp_path / "large.mp4", seconds=2, size=(640, 360))
    server = await serve_cameras({"a": small, "b": large}, port=0)
    try:
        async with running(make_config(recording=REC)) as r:
            area = r.areas.cameras
            h = await r.login()
            assert (await r.client.get("/api/cameras", headers=h)).json() == []

            # added: listed at once, connected and recorded without a restart
            created = await r.client.post("/api/devices", headers=h, json={
                "id": "cam1", "kind": "camera", "name": "Room 1", "settings": {"url": server.url("a"), "recognition": True}})
            assert created.status_code == 201, created.text
            assert [c["id"] for c in (await r.client.get("/api/cameras", headers=h)).json()] == ["cam1"]
            assert sampled(r) == {"cam1"}  # the faces sampler follows too
            [first, *_] = await wait_for(lambda: closed_since(r, "cam1", EPOCH), 30, "a recorded segment")
            assert playable_frames(r.services.media_dir / first.path) > 0 and width(r.services.media_dir / first.path) == 320

            # a live viewer of it
            viewer = RTCPeerConnection()
            viewer.addTransceiver("video", direction="recvonly")
            await viewer.setLocalDescription(await viewer.createOffer())
            whep = await r.client.post("/api/cameras/cam1/whep", content=viewer.localDescription.sdp,
                                       headers={**h, "Content-Type": "application/sdp"})
            assert whep.status_code == 201, whep.text
            assert [cam for cam, _, _ in area.live.sessions.values()] == ["cam1"]

            # edited: the old connection, its segment and its viewers end, the new one records from the new source
            old_fanout = area.fanout("cam1")
            patched = await r.client.patch("/api/devices/cam1", headers=h, json={"settings": {"url": server.url("b"), "recognition": False}})
            assert patched.status_code == 200, patched.text
            assert area.fanout("cam1") is not old_fanout and sampled(r) == set()
            await area.settled()
            assert area.live.sessions == {}  # the viewer of the old connection was closed
            await viewer.close()
            edited_at = datetime.now().astimezone()
            new = await wait_for(lambda: closed_since(r, "cam1", edited_at), 30, "a segment from the second source")
            assert width(r.services.media_dir / new[0].path) == 640
            await wait_for(lambda: len(server.paths["a"].clients) == 0, 15, "the first source let go")
            before = [x for x in await rows(r, "cam1") if x.started_at < edited_at]
            assert before and all(x.sha256 for x in before)  # the old session's last segment was closed and hashed
            gaps = await rows(r, "cam1", "gap")
            assert any(g.started_at <= new[0].started_at <= g.ended_at for g in gaps)  # the switch is a recorded gap

            # removed (DELETE disables): not listed at once, stopped, its last segment closed with a hash
            assert (await r.client.delete("/api/devices/cam1", headers=h)).status_code == 204
            assert (await r.client.get("/api/cameras", headers=h)).json() == []
            await area.settled()
            await wait_for(lambda: len(server.paths["b"].clients) == 0, 15, "the second source let go")
            segs = await rows(r, "cam1")
            assert segs and all(x.sha256 for x in segs), [(x.path, x.sha256) for x in segs]
            # nothing is connected any more, so nothing more can be recorded
            assert sum(len(p.clients) for p in server.paths.values()) == 0
            assert len(await rows(r, "cam1")) == len(segs)
    finally:
        await server.close()


async def test_a_password_given_through_the_api_is_used_and_never_returned(gst_server: Any, make_config: Any) -> None:
    srv = gst_server("high", auth=("admin", "pa:ss word"))
    async with running(make_config(recording=REC)) as r:
        area = r.areas.cameras
        h = await r.login()
        body = {"id": "cam1", "kind": "camera", "settings": {"url": srv.url, "username": "admin"}, "password": "pa:ss word"}
        created = await r.client.post("/api/devices", headers=h, json=body)
        assert created.status_code == 201, created.text
        segs = await wait_for(lambda: closed_since(r, "cam1", EPOCH), 30, "a segment through digest auth")
        assert playable_frames(r.services.media_dir / segs[0].path) > 0
        # a new password through the API is used at once: the wrong one is refused...
        assert (await r.client.patch("/api/devices/cam1", headers=h, json={"password": "wrong"})).status_code == 200
        await wait_for(lambda: area.cameras["cam1"].session.state == "auth_failed", 20, "auth_failed with the wrong password")
        # ...and the right one again accepted
        assert (await r.client.patch("/api/devices/cam1", headers=h, json={"password": "pa:ss word"})).status_code == 200
        await wait_for(lambda: area.cameras["cam1"].session.state == "online", 20, "online with the right password")
        # never returned, nor audited, nor in an error detail
        texts = [(await r.client.get(u, headers=h)).text for u in ("/api/devices/cam1", "/api/devices", "/api/cameras")]
        assert all("pa:ss" not in t and "wrong" not in t for t in texts)
        assert (await r.client.get("/api/devices/cam1", headers=h)).json()["has_password"] is True
        async with r.services.db.session() as s:
            audit = " ".join(str(e.details) for e in (await s.scalars(select(AuditEntry))).all())
        assert "pa:ss" not in audit and "wrong" not in audit


async def test_credentials_in_a_camera_url_are_refused(make_config: Any) -> None:
    with pytest.raises(ConfigError) as e:
        load_config_text("devices:\n  - {id: c1, kind: camera, url: 'rtsp://admin:hunter2@10.0.0.5/s'}\n", "<t>", env={})
    assert "username and password" in str(e.value) and "hunter2" not in str(e.value)
    async with running(make_config()) as r:
        h = await r.login()
        bad = await r.client.post("/api/devices", headers=h, json={"id": "c1", "kind": "camera", "settings": {"url": "rtsp://admin:hunter2@10.0.0.5/s"}})
        assert bad.status_code == 422 and "settings.url" in bad.text and "username and password" in bad.text and "hunter2" not in bad.text
        ok = await r.client.post("/api/devices", headers=h, json={"id": "c1", "kind": "camera", "settings": {"url": "rtsp://10.0.0.5/s", "record": False}})
        assert ok.status_code == 201, ok.text
        bad = await r.client.patch("/api/devices/c1", headers=h, json={"settings": {"url": "rtsp://admin@10.0.0.5/s"}})
        assert bad.status_code == 422 and "username and password" in bad.text


def test_stored_camera_urls_with_credentials_are_moved_to_their_fields(any_db_url: str) -> None:
    """Migration 0007: a camera stored with credentials in its URL keeps working."""
    from gateway.db.engine import sync_url, upgrade
    from gateway.db.types import UTCDateTime

    upgrade(any_db_url, "0006")
    engine = sa.create_engine(sync_url(any_db_url))
    devices = sa.table("devices", sa.column("id"), sa.column("kind"), sa.column("settings", sa.JSON), sa.column("secret"),
                       sa.column("state"), sa.column("enabled"), sa.column("source"), sa.column("created_at", UTCDateTime()),
                       sa.column("updated_at", UTCDateTime()))
    now = datetime.now().astimezone()
    with engine.begin() as c:
        for id_, url, secret in (("c1", "rtsp://admin:p%40ss@10.0.0.5:554/s", None), ("c2", "rtsp://viewer@10.0.0.6/s", "kept"),
                                 ("c3", "rtsp://10.0.0.7/s", None)):
            c.execute(devices.insert().values(id=id_, kind="camera", settings={"url": url}, secret=secret, state="unknown", enabled=True,
                                              source="api", created_at=now, updated_at=now))
    upgrade(any_db_url)
    with engine.connect() as c:
        got = {row.id: (row.settings, row.secret) for row in c.execute(sa.select(devices.c.id, devices.c.settings, devices.c.secret))}
    engine.dispose()
    assert got == {"c1": ({"url": "rtsp://10.0.0.5:554/s", "username": "admin"}, "p@ss"),
                   "c2": ({"url": "rtsp://10.0.0.6/s", "username": "viewer"}, "kept"),
                   "c3": ({"url": "rtsp://10.0.0.7/s"}, None)}
