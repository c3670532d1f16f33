"""tus upload sessions: state, streaming to disk with SHA-256 in stream, and
the hand-over to the completion pipeline.

Hash state across PATCHes is a `hashlib.sha256` object kept per upload in
memory together with the offset it covers. hashlib state cannot be persisted
portably, so after a gateway restart the first PATCH re-hashes the bytes
already on disk once (only then, and only the received prefix); the offset in
the database is advanced only after the bytes are written and fsynced, and the
partial file is truncated to that offset before each PATCH, so the two can
never disagree. Each PATCH hashes into a copy of the state, committed only
when the chunk is accepted: a chunk with a wrong Upload-Checksum (460) leaves
neither the file nor the hash changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import secrets
import shutil
from collections import deque
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from config.uploads import UploadSettings
from drivers.bodycam.tus import (
    METADATA_KEYS,
    METADATA_KEYS_REQUIRED,
    Checksum,
    TusError,
    safe_filename,
)
from gateway.audit import Audit
from gateway.bus import EventBus
from gateway.clock import Clock
from gateway.db.engine import Database
from gateway.db.models import Device, UploadRow
from gateway.disk import DiskMonitor, is_disk_full
from gateway.events import UploadProgress
from gateway.metrics import Metrics

log = logging.getLogger(__name__)
WRITE_BATCH = 1024 * 1024
MAX_PARTS = 512  # well under IOV_MAX (1024) for one writev
REHASH_CHUNK = 4 * 1024 * 1024


class Interrupted(Exception):
    """The client went away (or stalled) in the middle of a PATCH body."""


@dataclass(frozen=True)
class Uploader:
    """Who is talking: a body-cam (device_id set) or a user acting for a device."""

    actor: str
    device_id: str | None
    # a user acts for the body-cams of their units only: None for a root user (every one)
    devices: frozenset[str] | None = None


def _write(fd: int, parts: list[bytes]) -> None:
    # writev: the body's pieces go to the file as they came off the socket, never
    # copied into one buffer first (those copies were most of the loop's time)
    n = os.writev(fd, parts)
    if n < sum(len(p) for p in parts):  # a short write: finish it piece by piece
        view = memoryview(b"".join(parts))[n:]
        while view:
            view = view[os.write(fd, view):]


def _cut(fd: int, length: int) -> None:
    """Back to the committed offset (freeing what a failed PATCH wrote); best effort."""
    try:
        os.ftruncate(fd, length)
    except OSError:
        log.warning("cannot cut an upload back to %d bytes", length)


def _hash(parts: list[bytes], hashers: tuple[Any, ...]) -> None:
    for h in hashers:
        for p in parts:
            h.update(p)


class _Pipe:
    """Writes and hashes batches in two threads while the loop receives the next (hashlib
    and os.writev release the GIL): ingest runs at the speed of the slowest of network,
    disk and SHA-256, not their sum. Each side may fall `depth` batches behind before the
    loop waits, so a moment of CPU contention on one side does not stop the other two.
    Each side is a single-thread executor, so writes and hash updates keep their order."""

    def __init__(self, fd: int, hashers: tuple[Any, ...], depth: int = 4) -> None:
        self.fd, self.hashers, self.depth = fd, hashers, depth
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tus-write")
        self._hasher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tus-hash")
        self.futures: deque[concurrent.futures.Future[None]] = deque()

    async def put(self, parts: list[bytes]) -> None:
        while len(self.futures) >= 2 * self.depth:
            f = self.futures.popleft()
            await asyncio.wrap_future(f)
        self.futures.append(self._writer.submit(_write, self.fd, parts))
        self.futures.append(self._hasher.submit(_hash, parts, self.hashers))

    async def drain(self) -> None:
        while self.futures:
            await asyncio.wrap_future(self.futures.popleft())

    def settle(self) -> None:
        """Before the fd is closed, even on cancellation: a thread may still be writing."""
        concurrent.futures.wait(list(self.futures))
        self._writer.shutdown(wait=True)
        self._hasher.shutdown(wait=True)


def _rehash(path: Path, length: int) -> Any:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        remaining = length
        while remaining:
            chunk = f.read(min(REHASH_CHUNK, remaining))
            if not chunk:
                raise OSError(f"{path} is shorter than its recorded offset {length}")
            h.update(chunk)
            remaining -= len(chunk)
    return h


class UploadSessions:
    def __init__(self, *, settings: UploadSettings, db: Database, audit: Audit, bus: EventBus, clock: Clock, metrics: Metrics, media_dir: Path,
                 on_complete: Any, disk: DiskMonitor | None = None) -> None:
        self.settings = settings
        self.disk = disk
        self.db, self.audit, self.bus, self.clock, self.media_dir = db, audit, bus, clock, media_dir
        self.partial_dir = media_dir / "uploads" / "partial"
        self.on_complete = on_complete  # async (row, sha256_hex, path) -> None
        self._locks: dict[str, asyncio.Lock] = {}
        self._hashers: dict[str, tuple[int, Any]] = {}
        self._last_progress: dict[str, float] = {}
        m = metrics
        self.rejected = m.counter("gateway_uploads_rejected_total", "tus requests refused, by reason", ("reason",))
        self.bytes_in = m.counter("gateway_upload_bytes_total", "Bytes accepted by the tus endpoint")
        self.interrupted = m.counter("gateway_uploads_interrupted_total", "PATCH bodies cut short by the client or a stalled link")

    # -- helpers -------------------------------------------------------------
    def path_of(self, upload_id: str) -> Path:
        # ids are generated here (hex) and checked in `_get`, never taken raw from a URL into a path
        return self.partial_dir / f"{upload_id}.part"

    def lock(self, upload_id: str) -> asyncio.Lock:
        return self._locks.setdefault(upload_id, asyncio.Lock())

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.expire_after_s)

    async def _get(self, upload_id: str, who: Uploader) -> UploadRow:
        if not (len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)):
            raise TusError(404, "no such upload", "not_found")
        async with self.db.session() as s:
            row = await s.get(UploadRow, upload_id)
        if row is None or (who.devices is not None and row.device_id not in who.devices):
            raise TusError(404, "no such upload", "not_found")
        if who.device_id is not None and row.device_id != who.device_id:
            raise TusError(403, "this upload belongs to another device", "foreign_device")
        if row.state in ("terminated", "expired"):
            raise TusError(410, f"upload {row.state}", row.state)
        if row.state == "receiving" and row.expires_at <= self.clock.now():
            raise TusError(410, "upload expired", "expired")
        return row

    def _disk_full(self, e: BaseException, path: Path, offset: int) -> TusError:
        """ENOSPC while storing a chunk: nothing of it was kept (the offset did not move);
        507, and the disk monitor raises the one disk_full alert of the incident."""
        if self.disk is not None:
            self.disk.report(e, path)
        return TusError(507, f"the disk is full: this chunk was not stored; resume from offset {offset} once space is freed", "disk_full")

    def refuse(self, e: TusError) -> TusError:
        self.rejected.labels(e.reason).inc()
        return e

    # -- creation ------------------------------------------------------------
    async def create(self, who: Uploader, length: int, meta: dict[str, str]) -> UploadRow:
        missing = [k for k in METADATA_KEYS_REQUIRED if not meta.get(k)]
        if missing:
            raise TusError(400, f"Upload-Metadata lacks {', '.join(missing)}", "bad_metadata")
        unknown = sorted(set(meta) - set(METADATA_KEYS) - {"sha256"})
        if unknown:
            raise TusError(400, f"unknown Upload-Metadata keys: {', '.join(unknown)}", "bad_metadata")
        safe_filename(meta["filename"])
        try:
            recorded = datetime.fromisoformat(meta["recorded_at"].replace("Z", "+00:00"))
        except ValueError:
            raise TusError(400, "recorded_at must be an ISO 8601 date-time", "bad_metadata") from None
        meta = dict(meta, recorded_at=(recorded if recorded.tzinfo else recorded.replace(tzinfo=timezone.utc)).isoformat())
        if "sha256" in meta and (len(meta["sha256"]) != 64 or any(c not in "0123456789abcdef" for c in meta["sha256"].lower())):
            raise TusError(400, "sha256 metadata must be 64 hex digits", "bad_metadata")
        if length == 0:
            raise TusError(400, "a zero-byte file is not a recording", "empty")
        device_id = meta["device_id"]
        if who.device_id is not None and device_id != who.device_id:
            raise TusError(403, f"device_id {device_id!r} is not the authenticated device", "foreign_device")
        async with self.db.session() as s:
            dev = await s.get(Device, device_id)
        if dev is None or dev.kind != "bodycam" or (who.devices is not None and device_id not in who.devices):
            raise TusError(400, f"device_id {device_id!r} is not a registered body-cam", "unknown_device")
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.partial_dir).free
        if free < length + self.settings.min_free_bytes:
            raise TusError(507, f"not enough disk space for {length} bytes", "disk_full")
        meta.setdefault("person_id", dev.person_id or "")
        meta.setdefault("officer", str((dev.settings or {}).get("officer") or ""))
        now = self.clock.now()
        row = UploadRow(id=secrets.token_hex(16), device_id=device_id, actor=who.actor, length=length, offset=0, meta=meta,
                        state="receiving", created_at=now, updated_at=now, expires_at=self._expiry(now))
        try:
            self.path_of(row.id).touch(exist_ok=False)
            async with self.db.session() as s:
                s.add(row)
                await s.commit()
                await s.refresh(row)
        except Exception as e:
            if not is_disk_full(e):
                raise
            self.path_of(row.id).unlink(missing_ok=True)
            if self.disk is not None:
                self.disk.report(e, self.partial_dir)
            raise TusError(507, "the disk is full: the upload cannot be created", "disk_full") from None
        self._hashers[row.id] = (0, hashlib.sha256())
        return row

    async def head(self, upload_id: str, who: Uploader) -> UploadRow:
        row = await self._get(upload_id, who)
        lock = self.lock(upload_id)
        if lock.locked():
            # A PATCH cut by a dropped link may still be settling; wait briefly so
            # the client resumes from the offset that PATCH will commit.
            try:
                async with asyncio.timeout(2):
                    async with lock:
                        pass
            except TimeoutError:
                pass
            row = await self._get(upload_id, who)
        return row

    # -- PATCH ---------------------------------------------------------------
    async def patch(self, upload_id: str, who: Uploader, offset: int, checksum: Checksum | None, body: AsyncIterator[bytes]) -> UploadRow:
        """Append the body at `offset`; returns the row with the new offset."""
        async with self.lock(upload_id):
            row = await self._get(upload_id, who)
            if row.state != "receiving":
                raise TusError(409 if offset != row.offset else 400, f"upload already complete at offset {row.offset}", "offset_mismatch")
            if offset != row.offset:
                raise TusError(409, f"Upload-Offset {offset} does not match the server's offset {row.offset}", "offset_mismatch")
            path = self.path_of(upload_id)
            start = row.offset
            covered = self._hashers.get(upload_id)
            if covered is None or covered[0] != start:
                whole = await asyncio.to_thread(_rehash, path, start)
            else:
                whole = covered[1]
            trial = whole.copy()
            chunk_hash = checksum.new() if checksum else None
            hashers = (trial, chunk_hash) if chunk_hash else (trial,)
            fd = os.open(path, os.O_WRONLY)
            written, interrupted = 0, False
            full: OSError | None = None
            pipe = _Pipe(fd, hashers)
            try:
                os.ftruncate(fd, start)  # drop bytes a crash left beyond the committed offset
                os.lseek(fd, start, os.SEEK_SET)
                parts: list[bytes] = []
                pending = 0
                room = row.length - start
                try:
                    async for chunk in body:
                        if written + pending + len(chunk) > room:
                            await pipe.drain()
                            os.ftruncate(fd, start)
                            raise TusError(413, f"body runs past Upload-Length {row.length}", "past_length")
                        parts.append(chunk)
                        pending += len(chunk)
                        if pending >= WRITE_BATCH or len(parts) >= MAX_PARTS:
                            await pipe.put(parts)
                            written += pending
                            parts, pending = [], 0
                            self._progress(row, start + written)
                except Interrupted:
                    interrupted = True
                    self.interrupted.inc()
                if parts:
                    await pipe.put(parts)
                    written += pending
                await pipe.drain()
                if chunk_hash is not None and (interrupted or chunk_hash.digest() != checksum.digest):  # type: ignore[union-attr]
                    os.ftruncate(fd, start)
                    if interrupted:
                        raise TusError(400, "body interrupted; a checksummed chunk must arrive whole", "interrupted")
                    raise TusError(460, f"{checksum.algorithm} checksum mismatch; chunk discarded", "checksum_mismatch")  # type: ignore[union-attr]
                await asyncio.to_thread(os.fsync, fd)
            except OSError as e:
                if not is_disk_full(e):
                    raise
                full = e
            finally:
                pipe.settle()
                if full is not None:
                    _cut(fd, start)
                os.close(fd)
            if full is not None:
                raise self._disk_full(full, path, start)
            new_offset = start + written
            now = self.clock.now()
            try:
                async with self.db.session() as s:
                    fresh = await s.get(UploadRow, upload_id)
                    assert fresh is not None
                    fresh.offset, fresh.updated_at, fresh.expires_at = new_offset, now, self._expiry(now)
                    await s.commit()
                    await s.refresh(fresh)
            except Exception as e:
                if not is_disk_full(e):
                    raise
                # the offset stays where it was: so do the file's bytes
                fd = os.open(path, os.O_WRONLY)
                try:
                    _cut(fd, start)
                finally:
                    os.close(fd)
                raise self._disk_full(e, path, start) from None
            self._hashers[upload_id] = (new_offset, trial)
            self.bytes_in.inc(written)
            self._progress(fresh, new_offset, force=True)
            if new_offset == fresh.length:
                await self.finish(fresh)
                async with self.db.session() as s:
                    fresh = await s.get(UploadRow, upload_id)
            assert fresh is not None
            return fresh

    async def finish(self, row: UploadRow) -> None:
        entry = self._hashers.pop(row.id, None)
        whole = entry[1] if entry and entry[0] == row.length else await asyncio.to_thread(_rehash, self.path_of(row.id), row.length)
        await self.on_complete(row, whole.hexdigest(), self.path_of(row.id))
        self._locks.pop(row.id, None)
        self._last_progress.pop(row.id, None)

    def _progress(self, row: UploadRow, offset: int, force: bool = False) -> None:
        now = self.clock.monotonic()
        last = self._last_progress.get(row.id)
        if not force and last is not None and now - last < self.settings.progress_interval_s:
            return
        self._last_progress[row.id] = now
        self.bus.offer(UploadProgress(upload_id=row.id, device_id=row.device_id, filename=(row.meta or {}).get("filename"),
                                               offset=offset, length=row.length, state="complete" if offset == row.length else "receiving"))

    # -- termination and expiry ---------------------------------------------
    async def terminate(self, upload_id: str, who: Uploader) -> None:
        async with self.lock(upload_id):
            row = await self._get(upload_id, who)
            if row.state != "receiving":
                raise TusError(409, f"upload is {row.state}; only uploads in progress can be terminated", "not_receiving")
            await self._drop(upload_id, "terminated")
        await self.audit.log(who.actor, "upload.terminated", f"upload:{upload_id}", {"device_id": row.device_id, "offset": row.offset})

    async def _drop(self, upload_id: str, state: str) -> None:
        async with self.db.session() as s:
            row = await s.get(UploadRow, upload_id)
            if row is not None:
                row.state, row.updated_at = state, self.clock.now()
                await s.commit()
        self.path_of(upload_id).unlink(missing_ok=True)
        self._hashers.pop(upload_id, None)
        self._locks.pop(upload_id, None)
        self._last_progress.pop(upload_id, None)
        self.bus.offer(UploadProgress(upload_id=upload_id, device_id=row.device_id if row else "", filename=None,
                                               offset=row.offset if row else 0, length=row.length if row else 0, state=state))

    async def sweep(self) -> int:
        """Remove partial uploads past their Upload-Expires. Returns how many."""
        now = self.clock.now()
        async with self.db.session() as s:
            stale = (await s.scalars(select(UploadRow.id).where(UploadRow.state == "receiving", UploadRow.expires_at <= now))).all()
        n = 0
        for uid in stale:
            lock = self.lock(uid)
            if lock.locked():
                continue  # a PATCH is streaming right now; it renews the expiry
            async with lock:
                await self._drop(uid, "expired")
                n += 1
        if n:
            log.info("removed %d expired partial uploads", n)
        return n

    async def resume_pending(self) -> None:
        """Uploads whose last byte arrived but whose completion a crash interrupted."""
        async with self.db.session() as s:
            rows = (await s.scalars(select(UploadRow).where(UploadRow.state == "receiving"))).all()
        for row in rows:
            if row.offset == row.length and self.path_of(row.id).is_file():
                async with self.lock(row.id):
                    await self.finish(row)

    async def remove_leftovers(self) -> int:
        """Partial files of uploads that are no longer receiving (a crash between completion
        and the removal of a duplicate's copy), and files without an upload row."""
        files = {p.name[:-len(".part")]: p for p in self.partial_dir.glob("*.part")} if self.partial_dir.is_dir() else {}
        if not files:
            return 0
        async with self.db.session() as s:
            receiving = set((await s.scalars(select(UploadRow.id).where(UploadRow.id.in_(files), UploadRow.state == "receiving"))).all())
        gone = [p for uid, p in files.items() if uid not in receiving]
        for p in gone:
            await asyncio.to_thread(p.unlink, True)
        if gone:
            log.info("removed %d partial files of finished uploads", len(gone))
        return len(gone)

    async def in_flight(self, limit: int = 1000, devices: Collection[str] | None = None) -> list[dict[str, Any]]:
        """The uploads still receiving, oldest first: at most `limit`, of `devices` only when given."""
        stmt = select(UploadRow).where(UploadRow.state == "receiving").order_by(UploadRow.created_at, UploadRow.id).limit(limit)
        if devices is not None:
            stmt = stmt.where(UploadRow.device_id.in_(list(devices)))
        async with self.db.session() as s:
            rows = (await s.scalars(stmt)).all()
        return [{"id": r.id, "device_id": r.device_id, "filename": (r.meta or {}).get("filename"), "offset": r.offset, "length": r.length,
                 "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(), "expires_at": r.expires_at.isoformat()} for r in rows]
