"""Recorded video is evidence: a segment held by a sealed proceeding goes only to roles
that may read evidence, and every viewing of a recording or an evidence item is logged
(audit for recordings, custody for evidence), whichever way the Range header is written:
the request that serves byte 0 is a viewing (`bytes=00-` and `bytes=-N` as long as the
file used to slip through). On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db.models import AuditEntry, Custody, Evidence, Recording
from tests.conftest import running

BODY = bytes(range(256)) * 40  # 10,240 bytes
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

# (Range header, whether the answer serves byte 0)
RANGES = [
    (None, True), ("bytes=0-", True), ("bytes=00-", True), ("bytes=0-99", True), ("bytes= 0-99", True), ("bytes=-99999999", True),
    ("bytes=-10240", True), ("bytes=5000-6000,0-10", True), ("bytes=100-200", False), ("bytes=-100", False), ("bytes=10240-", False),
    ("items=0-", False),
]


async def _recordings(r: Any) -> tuple[int, int]:
    ids = []
    async with r.services.db.session() as s:
        for name, hold in (("plain", False), ("held", True)):
            rel = f"recordings/cam1/{name}.mp4"
            path = r.services.media_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(BODY)
            row = Recording(camera_id="cam1", kind="segment", path=rel, started_at=T0, ended_at=T0 + timedelta(seconds=60),
                            sha256="0" * 64, size=len(BODY), hold=hold)
            s.add(row)
            await s.flush()
            ids.append(row.id)
        await s.commit()
    return ids[0], ids[1]


async def _count(r: Any, model: Any, *where: Any) -> int:
    async with r.services.db.session() as s:
        return int((await s.scalar(select(func.count()).select_from(model).where(*where))) or 0)


@pytest.mark.postgres
async def test_held_segments_need_the_evidence_permission_and_every_viewing_is_audited(make_config: Any, any_db_url: str) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as r:
        plain, held = await _recordings(r)
        monitor, officer = await r.login("mon", role="monitor"), await r.login("off", role="officer")
        res = await r.client.get(f"/api/recordings/{held}/file", headers=monitor)
        assert res.status_code == 403 and "evidence" in res.text
        assert (await r.client.get(f"/api/recordings/{held}/file", headers=officer)).content == BODY
        assert (await r.client.get(f"/api/recordings/{plain}/file", headers=monitor)).content == BODY
        viewed = AuditEntry.action == "recording.viewed"
        assert await _count(r, AuditEntry, viewed) == 2
        expected = 2
        for rng, starts in RANGES:
            res = await r.client.get(f"/api/recordings/{plain}/file", headers={**monitor, **({"Range": rng} if rng else {})})
            expected += starts
            assert await _count(r, AuditEntry, viewed) == expected, (rng, res.status_code)
        async with r.services.db.session() as s:
            last = (await s.scalars(select(AuditEntry).where(viewed).order_by(AuditEntry.id.desc()).limit(1))).one()
        assert last.actor == "mon" and last.target == f"recording:{plain}" and last.details["held"] is False


@pytest.mark.postgres
async def test_every_evidence_viewing_is_in_the_custody_log(make_config: Any, any_db_url: str) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as r:
        rel = "evidence/uploads/ab/clip.mp4"
        (r.services.media_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (r.services.media_dir / rel).write_bytes(BODY)
        async with r.services.db.session() as s:
            ev = Evidence(kind="upload", sha256="a" * 64, size=len(BODY), path=rel, filename="clip.mp4", device_id="bc-1", state="stored",
                          received_at=T0)
            s.add(ev)
            await s.commit()
        officer = await r.login("off", role="officer")
        viewed = (Custody.evidence_id == ev.id, Custody.action == "viewed")
        expected = 0
        for rng, starts in RANGES:
            res = await r.client.get(f"/api/evidence/{ev.id}/file", headers={**officer, **({"Range": rng} if rng else {})})
            expected += starts
            assert await _count(r, Custody, *viewed) == expected, (rng, res.status_code)
