"""Proceedings: a named span over the recorded segments of some cameras, sealed as evidence.

Start stores who/what/when. Stop closes each camera's open segment (at its next keyframe),
collects every segment overlapping [start - pre_roll, stop], puts them under hold (retention
never deletes them) and seals a manifest: segments with their SHA-256, start/stop, who, and
`prev_manifest_sha256`, the hash of the previously sealed manifest. `manifest["seq"]` is the
seal order, which `gateway.evidence.verify_all` follows (proceedings can overlap, so seal
order is not id order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import av
from sqlalchemy import or_, select

from gateway.db.models import Proceeding, Recording
from gateway.events import ProceedingChanged
from gateway.evidence import canonical_json, confined, manifest_hash

log = logging.getLogger(__name__)

KINDS = ("reception", "announcement", "warning", "talk", "mediation", "education", "release")


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


def naive(dt: datetime) -> datetime:
    """Aware UTC, as the database layer requires."""
    return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class ProceedingError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Proceedings:
    def __init__(self, area: Any, *, db: Any, audit: Any, bus: Any, clock: Any, pre_roll_s: int) -> None:
        self.area = area
        self.db, self.audit, self.bus, self.clock, self.pre_roll_s = db, audit, bus, clock, pre_roll_s
        self._seal_lock = asyncio.Lock()

    async def start(self, camera_ids: list[str], person_id: str | None, kind: str, case_ref: str | None, user: str, unit_id: str = "root") -> Proceeding:
        if kind not in KINDS:
            raise ProceedingError(422, f"kind must be one of {', '.join(KINDS)}")
        if not camera_ids:
            raise ProceedingError(422, "camera_ids must name at least one camera")
        # every enabled camera, whichever node of a cluster records it
        unknown = [c for c in camera_ids if c not in self.area.configs]
        if unknown:
            raise ProceedingError(404, f"unknown camera(s): {', '.join(unknown)}")
        norec = [c for c in camera_ids if not self.area.configs[c].record]
        if norec:
            raise ProceedingError(409, f"camera(s) not recording: {', '.join(norec)}")
        now = self.clock.now()
        row = Proceeding(kind=kind, person_id=person_id, case_ref=case_ref, camera_ids=list(camera_ids), state="recording",
                         started_at=naive(now), started_by=user, pre_roll_s=self.pre_roll_s, unit_id=unit_id)
        return await self._begin(row, user, {"camera_ids": camera_ids})

    async def _begin(self, row: Proceeding, user: str, details: dict[str, Any]) -> Proceeding:
        """Store a new proceeding, audited, and say so on the bus."""
        async with self.audit.tx() as s:
            s.add(row)
            await s.flush()
            await self.audit.add(s, user, "proceeding.started", f"proceeding:{row.id}",
                                 {"kind": row.kind, "person_id": row.person_id, "case_ref": row.case_ref, **details})
        await self.bus.publish(ProceedingChanged(proceeding_id=row.id, state="recording", person_id=row.person_id, kind=row.kind,
                                                 camera_ids=list(row.camera_ids)))
        return row

    async def stop(self, proceeding_id: int, user: str) -> Proceeding:
        async with self.db.session() as s:
            row = await s.get(Proceeding, proceeding_id)
        if row is None:
            raise ProceedingError(404, "no such proceeding")
        if row.state != "recording":
            raise ProceedingError(409, "the proceeding is already sealed")
        stopped = naive(self.clock.now())
        # the open segments hold the last seconds: close them so they can be hashed (those of
        # cameras another node records are closed there first: gateway/api/proceedings.py)
        await asyncio.gather(*(self.area.cameras[c].recorder.rotate_now() for c in row.camera_ids
                               if c in self.area.cameras and self.area.cameras[c].recorder))
        async with self._seal_lock, self.audit.tx() as s:
            row = await s.get(Proceeding, proceeding_id)
            if row is None or row.state != "recording":
                raise ProceedingError(409, "the proceeding is already sealed")
            begin = row.started_at - timedelta(seconds=row.pre_roll_s)
            segs = (await s.scalars(select(Recording).where(
                Recording.camera_id.in_(row.camera_ids), Recording.started_at <= stopped,
                or_(Recording.ended_at.is_(None), Recording.ended_at >= begin)).order_by(Recording.camera_id, Recording.started_at))).all()
            items, gaps = [], []
            for r in segs:
                if r.kind == "gap":
                    gaps.append({"camera_id": r.camera_id, "started_at": iso(r.started_at), "ended_at": iso(r.ended_at), "duration_s": r.duration_s})
                    continue
                if r.sha256 is None:
                    continue  # still open (the camera produced no keyframe in time): not sealable
                r.hold = True
                items.append({"recording_id": r.id, "camera_id": r.camera_id, "path": r.path, "sha256": r.sha256, "size": r.size,
                              "started_at": iso(r.started_at), "ended_at": iso(r.ended_at)})
            await self._seal(s, row, stopped, user, items, gaps)
        await self.bus.publish(ProceedingChanged(proceeding_id=row.id, state="sealed", person_id=row.person_id, kind=row.kind, camera_ids=list(row.camera_ids)))
        return row

    async def _seal(self, s: Any, row: Proceeding, stopped: datetime, user: str, items: list[dict[str, Any]], gaps: list[dict[str, Any]],
                    extra: dict[str, Any] | None = None) -> None:
        """The manifest, chained to the last one sealed (in the caller's transaction, under the seal lock)."""
        prev_rows = (await s.scalars(select(Proceeding).where(Proceeding.manifest.is_not(None)))).all()
        last = max(prev_rows, key=lambda p: ((p.manifest or {}).get("seq", 0), p.id), default=None)
        manifest = {
            "proceeding_id": row.id, "seq": ((last.manifest or {}).get("seq", 0) + 1) if last else 1,
            "kind": row.kind, "person_id": row.person_id, "case_ref": row.case_ref, "camera_ids": row.camera_ids,
            "started_at": iso(row.started_at), "stopped_at": iso(stopped), "pre_roll_s": row.pre_roll_s,
            "started_by": row.started_by, "stopped_by": user, "segments": items, "gaps": gaps,
            "prev_manifest_sha256": last.manifest_sha256 if last else None, **(extra or {}),
        }
        row.manifest = manifest
        row.manifest_sha256 = manifest_hash(manifest)
        row.prev_manifest_sha256 = manifest["prev_manifest_sha256"]
        row.stopped_at, row.stopped_by, row.state = stopped, user, "sealed"
        await s.flush()
        await self.audit.add(s, user, "proceeding.sealed", f"proceeding:{row.id}", {"manifest_sha256": row.manifest_sha256, "segments": len(items)})

    async def start_remote(self, kind: str, person_id: str | None, case_ref: str | None, user: str, unit_id: str, session_id: str) -> Proceeding:
        """A remote video session's proceeding: no camera; its recording is the session's file."""
        if kind not in KINDS:
            raise ProceedingError(422, f"kind must be one of {', '.join(KINDS)}")
        row = Proceeding(kind=kind, person_id=person_id, case_ref=case_ref, camera_ids=[], state="recording",
                         started_at=naive(self.clock.now()), started_by=user, pre_roll_s=0, unit_id=unit_id)
        return await self._begin(row, user, {"call_session": session_id})

    async def seal_remote(self, proceeding_id: int, user: str, items: list[dict[str, Any]], gaps: list[dict[str, Any]], extra: dict[str, Any],
                          attendance: list[dict[str, Any]]) -> Proceeding:
        """Seal a remote session's proceeding over its recording (`items`, hashed by the caller)."""
        stopped = naive(self.clock.now())
        async with self._seal_lock, self.audit.tx() as s:
            row = await s.get(Proceeding, proceeding_id)
            if row is None or row.state != "recording":
                raise ProceedingError(409, "the proceeding is already sealed")
            row.attendance = attendance
            await self._seal(s, row, stopped, user, items, gaps, extra)
        await self.bus.publish(ProceedingChanged(proceeding_id=row.id, state="sealed", person_id=row.person_id, kind=row.kind))
        return row


def concat_segments(media_dir: Path, paths: list[str], out_path: Path) -> None:
    """Join segments into one MP4 by stream copy, timestamps made continuous."""
    out = av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"})
    streams: dict[str, Any] = {}
    offset_s = 0.0
    try:
        for rel in paths:
            with av.open(str(confined(media_dir, rel))) as src:
                wanted = [s for s in src.streams if s.type in ("video", "audio")]
                end_s = offset_s
                for st in wanted:
                    if st.type not in streams:
                        streams[st.type] = out.add_stream_from_template(st)
                for p in src.demux(wanted):
                    if p.dts is None:
                        continue
                    off = round(offset_s / p.time_base)
                    end_s = max(end_s, float((p.dts + (p.duration or 0)) * p.time_base) + offset_s)
                    p.dts += off
                    p.pts = (p.pts if p.pts is not None else p.dts - off) + off
                    p.stream = streams[p.stream.type]
                    out.mux(p)
                offset_s = end_s
    finally:
        out.close()


EXPORT_MAX_AGE_S = 24 * 3600  # an export folder left behind (a crash while sending) goes after this


async def export_zip(media_dir: Path, row: Proceeding) -> Path:
    """A zip with one MP4 per camera and the sealed manifest (+ its hash), built on disk in
    a folder of its own under media/tmp (two exports at once never share a file; a
    proceeding's video never sits in memory) and off the event loop. The caller sends it
    and then removes its folder (`remove_export`)."""
    tmp = media_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_sweep_exports, tmp)
    folder = Path(tempfile.mkdtemp(prefix=f"export-{row.id}-", dir=tmp))
    try:
        return await asyncio.to_thread(_build_zip, media_dir, folder, row.id, row.manifest or {}, row.manifest_sha256)
    except BaseException:
        remove_export(folder)
        raise


def _build_zip(media_dir: Path, folder: Path, proceeding_id: int, manifest: dict[str, Any], manifest_sha256: str | None) -> Path:
    path = folder / f"proceeding-{proceeding_id}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False))
        z.writestr("manifest.canonical.json", canonical_json(manifest))
        z.writestr("manifest.sha256", f"{manifest_sha256}  manifest.canonical.json\n")
        # a remote session's recording is a segment of its own, named call-<session id>
        for cam in dict.fromkeys([*manifest.get("camera_ids", []), *(seg["camera_id"] for seg in manifest.get("segments", []))]):
            paths = [seg["path"] for seg in manifest.get("segments", []) if seg["camera_id"] == cam]
            if not paths:
                continue
            out = folder / f"{cam}.mp4"
            concat_segments(media_dir, paths, out)
            z.write(out, f"proceeding-{proceeding_id}-{cam}.mp4")
            out.unlink()
    return path


def remove_export(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _sweep_exports(tmp: Path) -> None:
    now = time.time()
    for d in tmp.glob("export-*"):
        with contextlib.suppress(OSError):
            if d.is_dir() and now - d.stat().st_mtime > EXPORT_MAX_AGE_S:
                shutil.rmtree(d, ignore_errors=True)


def public(row: Proceeding) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "person_id": row.person_id, "case_ref": row.case_ref, "camera_ids": row.camera_ids,
            "state": row.state, "started_at": iso(row.started_at), "stopped_at": iso(row.stopped_at), "started_by": row.started_by,
            "stopped_by": row.stopped_by, "pre_roll_s": row.pre_roll_s, "manifest": row.manifest, "manifest_sha256": row.manifest_sha256,
            # who the 1:N sampler saw on the proceeding's cameras during it
            "attendance": row.attendance or []}
