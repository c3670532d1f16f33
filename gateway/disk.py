"""The disks the gateway writes to, watched: one `disk_full` alert per incident.

A full disk stops everything that writes: recordings, uploads and, when the SQLite
database shares the disk, every row, including the alert that would tell someone. So
the disk is watched here, once, not by each writer:

- every `check_s` the free space of data_dir, media_dir and the SQLite database's folder
  (grouped by file system) is read; below `full_below_bytes` the disk is full;
- a writer that hits ENOSPC (a recorder, an upload, a database write) calls `report`, from
  any thread: the disk is full at once, whatever the free space says (reserved blocks,
  quotas and inodes run out too);
- an incident opens ONE `disk_full` alert per file system (dedup key per mount point,
  `opened_at` = when the incident began). When the alert cannot be written (the database
  is on the full disk) it is written as soon as it can be, with that start time, and
  until then the log says so at error level (rate-limited) and `/healthz` fails;
- the incident ends when the free space has stayed above twice the threshold, and nobody
  reported ENOSPC, for `clear_after_s` (hysteresis: a disk hovering at the threshold
  makes one incident, not one per check); then the alert is resolved.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gateway.alerts.service import AlertService
from gateway.clock import Clock
from gateway.logs import Throttled
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(e: BaseException | None) -> bool:
    """ENOSPC (or a quota) from the OS, SQLite's "database or disk is full", PostgreSQL's
    disk_full (53100); looked for through SQLAlchemy's wrapping and exception chains."""
    seen = 0
    while e is not None and seen < 5:
        if getattr(e, "errno", None) in _FULL_ERRNOS or getattr(e, "sqlstate", None) == "53100":
            return True
        text = str(e)
        if "No space left on device" in text or "database or disk is full" in text or "Disk quota exceeded" in text:
            return True
        e = getattr(e, "orig", None) or e.__cause__ or e.__context__
        seen += 1
    return False


def mount_point(path: Path) -> Path:
    p = path.resolve()
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _existing(path: Path) -> Path:
    p = path.resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@dataclass
class _Disk:
    mount: Path
    dev: int
    names: list[str]
    free: int = -1
    since: datetime | None = None  # when the incident began; None: not full
    alert_written: bool = False  # this incident's alert is in the database
    ok_since: float | None = None  # monotonic: free space back since
    last_report: float = float("-inf")  # monotonic: a writer's ENOSPC
    reports: int = 0  # ENOSPC reports during the incident

    @property
    def key(self) -> str:
        return f"disk_full|{self.mount}"

    @property
    def label(self) -> str:
        return f"{' and '.join(self.names)} ({self.mount})"


@dataclass
class DiskMonitor:
    paths: dict[str, Path]  # what is written where: {"data_dir": ..., "media_dir": ..., "database": ...}
    alerts: AlertService
    clock: Clock
    metrics: Metrics
    full_below_bytes: int = 64 * 1024 * 1024
    check_s: float = 5.0
    clear_after_s: float = 30.0
    _disks: list[_Disk] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)  # report() runs on writers' threads
    _checking: asyncio.Lock = field(default_factory=asyncio.Lock)  # the periodic check and one a report asked for

    def __post_init__(self) -> None:
        self._loud = Throttled(log, every_s=60)
        self._free = self.metrics.gauge("gateway_disk_free_bytes", "Free space of a disk the gateway writes to", ("mount",))
        self._full = self.metrics.gauge("gateway_disk_full", "1 during a disk-full incident", ("mount",))

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        by_dev: dict[int, _Disk] = {}
        for name, path in self.paths.items():
            p = _existing(path)
            dev = p.stat().st_dev
            d = by_dev.get(dev)
            if d is None:
                d = by_dev[dev] = _Disk(mount_point(p), dev, [])
            d.names.append(name)
        self._disks = list(by_dev.values())
        await self.check()
        self._task = asyncio.create_task(self._run(), name="disk-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for d in self._disks:
            if d.since is not None and not d.alert_written:
                log.error("DISK FULL on %s since %s: stopping before its disk_full alert could be written", d.label, d.since.isoformat())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            try:
                await self.check()
            except Exception:
                log.exception("disk check")

    # --- what writers and the health check call -----------------------------------------
    def report(self, error: BaseException, path: Path | str | None = None) -> bool:
        """A write failed with `error` (any thread). True when it was the disk being full:
        the incident of the disk holding `path` (default: the database's) begins now."""
        if not is_disk_full(error):
            return False
        disk = self._disk_of(Path(path) if path is not None else None)
        if disk is None:
            return True
        with self._lock:
            disk.last_report = time.monotonic()
            disk.reports += 1
        loop = self._loop
        if loop is not None and disk.since is None:
            try:
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.check()))
            except RuntimeError:
                pass  # the loop is closed: stopping anyway
        return True

    def full(self, path: Path | str | None = None) -> bool:
        """Whether the disk holding `path` (any disk when None) is in an incident."""
        if path is None:
            return any(d.since is not None for d in self._disks)
        d = self._disk_of(Path(path))
        return d is not None and d.since is not None

    def health(self) -> dict[str, str]:
        """{"disk": "ok" | "full: ..."} and, when the database's disk is full,
        {"database": "error: cannot write: ..."}; the free space read now."""
        problems, db_full = [], False
        for d in self._disks:
            free = self._statvfs(d)
            if d.since is not None or free < self.full_below_bytes:
                problems.append(f"full: {_mb(max(free, 0))} free of {d.label}")
                db_full = db_full or "database" in d.names
        out = {"disk": "; ".join(problems) if problems else "ok"}
        if db_full:
            out["database"] = "error: cannot write: its disk is full"
        return out

    def _disk_of(self, path: Path | None) -> _Disk | None:
        if not self._disks:
            return None
        if path is None:
            return next((d for d in self._disks if "database" in d.names), None)
        try:
            dev = _existing(path).stat().st_dev
        except OSError:
            return None
        return next((d for d in self._disks if d.dev == dev), None)

    def _statvfs(self, d: _Disk) -> int:
        try:
            st = os.statvfs(d.mount)
        except OSError:
            return -1
        d.free = st.f_bavail * st.f_frsize
        self._free.labels(str(d.mount)).set(d.free)
        return d.free

    # --- the incident ---------------------------------------------------------------
    async def check(self) -> None:
        async with self._checking:
            for d in self._disks:
                await self._check(d)

    async def _check(self, d: _Disk) -> None:
        free = self._statvfs(d)
        mono = time.monotonic()
        with self._lock:
            reported = mono - d.last_report < max(self.check_s, 1.0) * 2
        low = 0 <= free < self.full_below_bytes
        if d.since is None:
            if not (low or reported):
                return
            d.since, d.alert_written, d.ok_since = self.clock.now(), False, None
            self._full.labels(str(d.mount)).set(1)
            log.error("DISK FULL on %s: %s free (%s); recordings, uploads and database writes fail until space is freed",
                      d.label, _mb(max(free, 0)), "writes failing" if reported else f"below {_mb(self.full_below_bytes)}")
        if not d.alert_written:
            d.alert_written = await self._raise(d, free)
            if not d.alert_written:
                self._loud.log(logging.ERROR, str(d.mount), "DISK FULL on %s since %s: %s free; the disk_full alert cannot be written "
                               "yet (the database is on this disk?): it will be when space returns", d.label, d.since.isoformat(), _mb(max(free, 0)))
        back = free >= 2 * self.full_below_bytes and not reported
        if not back:
            d.ok_since = None
            if d.alert_written:
                self._loud.log(logging.ERROR, str(d.mount), "DISK FULL on %s since %s: %s free", d.label, d.since.isoformat(), _mb(max(free, 0)))
            return
        if d.ok_since is None:
            d.ok_since = mono
        if mono - d.ok_since < self.clear_after_s or not d.alert_written:
            return
        try:
            await self.alerts.clear("disk_full", key=d.key, note=f"{_mb(free)} free again")
        except Exception as e:  # noqa: BLE001 - tried again at the next check
            log.warning("disk space returned on %s, but its disk_full alert could not be resolved yet: %s", d.label, e)
            return
        log.warning("disk space returned on %s: %s free; the incident began %s, %d writes failed", d.label, _mb(free),
                    d.since.isoformat(), d.reports)
        d.since, d.ok_since, d.reports = None, None, 0
        self._full.labels(str(d.mount)).set(0)

    async def _raise(self, d: _Disk, free: int) -> bool:
        assert d.since is not None
        try:
            await self.alerts.raise_alert(
                "disk_full", key=d.key, at=d.since,
                message=f"disk full: {d.label}; recordings, uploads and database writes stopped",
                details={"mount": str(d.mount), "paths": {n: str(self.paths[n]) for n in d.names}, "free_bytes_at_check": free})
        except Exception as e:  # noqa: BLE001 - retried at the next check
            if not is_disk_full(e):
                log.warning("disk_full alert for %s not written: %s", d.label, e)
            return False
        return True
