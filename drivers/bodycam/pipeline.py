"""What happens to an upload once its last byte is on disk.

probe → (playable) content-addressed evidence store, catalogue, custody
      → (not playable or hash differs from the recorder's claim) quarantine,
        with the reason on the row and an `upload_quarantined` yellow alert.

The store is content-addressed: evidence/uploads/ab/<sha256><ext>. The file is
moved with os.replace (same file system, atomic), so the store only ever holds
complete files whose hash was computed while receiving; a duplicate (same
SHA-256 already stored) is recognised, its partial file dropped, and a
`received` custody entry recorded on the existing evidence.

Who a recording is filed under comes from the device, not from the uploader: the
evidence's `person_id` and `officer` are the body-cam's binding (its row's `person_id`,
`settings.officer`) when the upload completes. Upload-Metadata that names someone else is
ignored, and what it claimed is kept in the `received` custody entry (`metadata_ignored`)
and the audit log, so a spoofed claim is visible rather than silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from drivers.bodycam.probe import NotPlayable, Probe, probe
from drivers.bodycam.tus import valid_metadata_value
from gateway.alerts.service import AlertService
from gateway.audit import Audit
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.db.models import Custody, Device, Evidence, UploadRow
from gateway.events import DeviceState, UploadCompleted
from gateway.metrics import Metrics

log = logging.getLogger(__name__)
_EXT = re.compile(r"^\.[a-z0-9]{1,5}$")


def store_path(sha256: str, filename: str | None) -> str:
    ext = Path(filename or "").suffix.lower()
    return f"evidence/uploads/{sha256[:2]}/{sha256}{ext if _EXT.match(ext) else ''}"


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself must survive a power cut
    finally:
        os.close(fd)


def bound_fields(device: Device | None, meta: dict[str, Any]) -> tuple[str | None, str | None, str | None, dict[str, str]]:
    """(person_id, officer, case_ref, ignored): the person and officer of the device's own
    binding, whatever the metadata says; metadata values that differ from it (or, for uploads
    created before values were checked at creation, that are not valid) in `ignored`."""
    person, officer = None, None
    if device is not None:  # a device removed while its upload was in flight is bound to nobody
        person = device.person_id or None
        officer = str((device.settings or {}).get("officer") or "") or None
    ignored: dict[str, str] = {}
    for key, bound in (("person_id", person), ("officer", officer)):
        claimed = str(meta.get(key) or "")
        if claimed and claimed != bound:
            ignored[key] = claimed
    case_ref = str(meta.get("case_ref") or "") or None
    if case_ref is not None and not valid_metadata_value("case_ref", case_ref):
        ignored["case_ref"], case_ref = case_ref, None
    return person, officer, case_ref, ignored


class Pipeline:
    def __init__(self, *, audit: Audit, bus: EventBus, alerts: AlertService, clock: Clock, metrics: Metrics, media_dir: Path) -> None:
        self.audit, self.bus, self.alerts, self.clock, self.media_dir = audit, bus, alerts, clock, media_dir
        m = metrics
        self.completed = m.counter("gateway_uploads_completed_total", "Uploads finished, by outcome", ("outcome",))
        self._removals: set[asyncio.Task[None]] = set()

    def _remove_later(self, path: Path) -> None:
        """A redundant copy (its content is already kept) goes after the client has its
        answer: unlinking gigabytes with dirty pages takes seconds of kernel time. A crash
        before it leaves the file to `UploadSessions.remove_leftovers` at the next start."""
        task = asyncio.create_task(asyncio.to_thread(path.unlink, True), name=f"remove:{path.name}")
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def drain(self) -> None:
        if self._removals:
            await asyncio.wait(set(self._removals), timeout=30)

    async def __call__(self, row: UploadRow, sha256: str, partial: Path) -> None:
        meta: dict[str, Any] = dict(row.meta or {})
        reason: str | None = None
        result: Probe | None = None
        claimed = (meta.get("sha256") or "").lower()
        if claimed and claimed != sha256:
            reason = f"SHA-256 {sha256} differs from the recorder's {claimed}"
        else:
            try:
                result = await asyncio.to_thread(probe, partial)
            except NotPlayable as e:
                reason = str(e)
            except Exception as e:  # a decoder bug must quarantine, never lose the file
                log.exception("probe failed for upload %s", row.id)
                reason = f"probe failed: {type(e).__name__}: {e}"
        media_root = self.media_dir
        recorded_at = datetime.fromisoformat(meta["recorded_at"]) if meta.get("recorded_at") else None
        duplicate = False
        async with self.audit.tx() as s:
            person_id, officer, case_ref, ignored = bound_fields(await s.get(Device, row.device_id), meta)
            if ignored:
                log.warning("upload %s from %s: metadata %s ignored (the device's binding wins)", row.id, row.device_id, ignored)
            # the evidence belongs to the body-cam's unit (its officer's office)
            unit_id = await s.scalar(select(Device.unit_id).where(Device.id == row.device_id)) or "root"
            common = dict(kind="upload", unit_id=unit_id, sha256=sha256, size=row.length, filename=meta.get("filename"), device_id=row.device_id,
                          officer=officer, person_id=person_id, case_ref=case_ref, recorded_at=recorded_at, received_at=self.clock.now())
            received: dict[str, Any] = {"upload_id": row.id, "device_id": row.device_id, "sha256": sha256, "size": row.length, "filename": meta.get("filename")}
            if ignored:
                received["metadata_ignored"] = ignored
            if reason is None:
                assert result is not None
                existing = (await s.scalars(select(Evidence).where(Evidence.sha256 == sha256, Evidence.kind == "upload", Evidence.state == "stored"))).first()
                if existing is not None and (media_root / existing.path).is_file():
                    ev, duplicate = existing, True
                    s.add(Custody(evidence_id=ev.id, at=self.clock.now(), action="received", actor=row.actor, details=dict(received, duplicate=True)))
                else:
                    rel = store_path(sha256, meta.get("filename"))
                    await asyncio.to_thread(_move, partial, media_root / rel)
                    thumb = None
                    if result.thumbnail_jpeg:
                        thumb = f"evidence/uploads/{sha256[:2]}/{sha256}.thumb.jpg"
                        await asyncio.to_thread((media_root / thumb).write_bytes, result.thumbnail_jpeg)
                    ev = Evidence(path=rel, media=result.media, thumbnail=thumb, state="stored", **common)
                    s.add(ev)
                    await s.flush()
                    s.add(Custody(evidence_id=ev.id, at=self.clock.now(), action="received", actor=row.actor, details=received))
                    checks = ["sha256 computed while receiving", "length equals Upload-Length", "playable video (PyAV)"]
                    if claimed:
                        checks.append("sha256 equals the recorder's claim")
                    s.add(Custody(evidence_id=ev.id, at=self.clock.now(), action="verified", actor="gateway", details={"sha256": sha256, "checks": checks}))
            else:
                rel = f"quarantine/uploads/{sha256}.bin"
                if (media_root / rel).exists():
                    duplicate = True
                else:
                    await asyncio.to_thread(_move, partial, media_root / rel)
                ev = Evidence(path=rel, media={}, state="quarantined", quarantine_reason=reason, **common)
                s.add(ev)
                await s.flush()
                s.add(Custody(evidence_id=ev.id, at=self.clock.now(), action="received", actor=row.actor, details=dict(received, quarantined=True, reason=reason)))
            up = await s.get(UploadRow, row.id)
            assert up is not None
            up.state, up.evidence_id, up.sha256, up.updated_at = "completed", ev.id, sha256, self.clock.now()
            await self.audit.add(s, row.actor, "evidence.quarantined" if reason else "evidence.received", f"evidence:{ev.id}",
                                          dict(received, duplicate=duplicate, reason=reason))
            evidence_id = ev.id
        if duplicate:
            self._remove_later(partial)  # only now that the row says completed
        self.completed.labels("quarantined" if reason else ("duplicate" if duplicate else "stored")).inc()
        if reason:
            log.warning("upload %s from %s quarantined: %s", row.id, row.device_id, reason)
            await self.alerts.raise_alert("upload_quarantined", person_id=person_id, device_id=row.device_id,
                                                   message=f"upload {meta.get('filename')!r} quarantined: {reason}",
                                                   details={"evidence_id": evidence_id, "upload_id": row.id, "sha256": sha256, "reason": reason},
                                                   key=f"upload_quarantined:{evidence_id}")
        await self.bus.publish(UploadCompleted(evidence_id=evidence_id, device_id=row.device_id, sha256=sha256, size=row.length,
                                                        quarantined=reason is not None, reason=reason))
        # A body-cam is only reachable while it uploads: its last upload is its last sign of life.
        await self.bus.publish(DeviceState(device_id=row.device_id, kind="bodycam", state="online", reason="upload received"))
