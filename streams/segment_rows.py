"""The `recordings` rows of every camera's segments and gaps, written on the event loop.

The disk writer thread (streams/segment_writer.py) writes every camera's files; if it
waited for the event loop for each row, a busy loop would stall every camera's disk
writes. So it only posts what it needs (`post`, from any thread) and goes on: the rows
are written here in the order they were posted (so a camera's rows keep their order),
whatever has queued meanwhile in one transaction, and answers that the writer needs (a
new segment's row id: its file is created only once its row exists, so a failed insert
leaves no file) come back to it through its own queue.

A row that cannot be written (a full disk under the database) is tried again every
`retry_s` until it can: a finished segment's size and hash, a gap (so a gap during a
disk-full outage is recorded when space returns). An insert is not retried: the writer
drops that segment and carries its gap to the next one. Stopping tries once more and
logs what is left (open rows are finished by `recover` at the next start).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Connection

from gateway.alerts.service import AlertService
from gateway.bus import EventBus
from gateway.clock import utc_at
from gateway.db.engine import Database
from gateway.db.models import Recording
from gateway.disk import DiskMonitor
from gateway.events import RecordingGap
from gateway.logs import Throttled
from gateway.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class InsertSegment:
    """A new segment's row (no hash yet); `done(row_id, error)` is called on the loop."""

    camera_id: str
    rel: str
    started: float
    codec: str
    has_audio: bool
    done: Callable[[int | None, BaseException | None], None]

    def run(self, c: Connection) -> int:
        stmt = insert(Recording).values(camera_id=self.camera_id, kind="segment", path=self.rel, started_at=utc_at(self.started),
                                        codec=self.codec, has_audio=self.has_audio, hold=False).returning(Recording.id)
        return int(c.execute(stmt).scalar_one())


@dataclass
class FinishSegment:
    """A closed segment: end, size, SHA-256. `waiters` (a proceeding closing the segment)
    are woken once the row says so."""

    camera_id: str
    row_id: int
    last_at: float
    duration: float
    size: int | None
    digest: str | None
    waiters: list[threading.Event] = field(default_factory=list)

    def run(self, c: Connection) -> None:
        c.execute(update(Recording).where(Recording.id == self.row_id).values(
            ended_at=utc_at(self.last_at), duration_s=round(self.duration, 3), size=self.size, sha256=self.digest))


@dataclass
class ForgetSegment:
    """A segment that kept nothing (its file is already gone)."""

    camera_id: str
    row_id: int
    waiters: list[threading.Event] = field(default_factory=list)

    def run(self, c: Connection) -> None:
        c.execute(delete(Recording).where(Recording.id == self.row_id))


@dataclass
class InsertGap:
    """An interruption, from the last frame recorded to the first after it."""

    camera_id: str
    start: float
    end: float
    reason: str

    def run(self, c: Connection) -> None:
        c.execute(insert(Recording).values(camera_id=self.camera_id, kind="gap", started_at=utc_at(self.start), ended_at=utc_at(self.end),
                                           duration_s=round(self.end - self.start, 3)))


@dataclass
class AlertChange:
    """A recording_failed alert raised or cleared, in order with the camera's rows."""

    raise_: bool
    kind: str
    kw: dict[str, Any]


@dataclass
class _Marker:
    """`idle`: resolved once everything posted before it was tried."""

    done: asyncio.Future[None]
    stop: bool = False


RowOp = InsertSegment | FinishSegment | ForgetSegment | InsertGap
Op = RowOp | AlertChange | _Marker


class SegmentRows:
    def __init__(self, *, db: Database, bus: EventBus, alerts: AlertService, metrics: Metrics, monitor: DiskMonitor | None = None,
                 retry_s: float = 2.0) -> None:
        self.db, self.bus, self.alerts, self.monitor, self.retry_s = db, bus, alerts, monitor, retry_s
        self._q: deque[Op] = deque()  # append and popleft are atomic: posted from any thread
        self._retry: list[RowOp] = []
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures = Throttled(log, every_s=60)
        self._m_gaps = metrics.counter("gateway_recording_gaps_total", "Recording interruptions", ("camera",))
        self._m_waiting = metrics.gauge("gateway_recording_rows_waiting", "Recording rows that could not be written yet (retried)")

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="recording-rows")

    def post(self, op: Op) -> None:
        """Queue `op` (any thread; never waits)."""
        self._q.append(op)
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:
            pass  # the loop is closed: nothing will write it any more

    async def idle(self) -> None:
        """Return once everything posted so far was tried (retries may remain)."""
        if self._task is None or self._task.done():
            return
        fut = asyncio.get_running_loop().create_future()
        self.post(_Marker(fut))
        await fut

    async def stop(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            fut = asyncio.get_running_loop().create_future()
            self.post(_Marker(fut, stop=True))
            await asyncio.wait({fut, self._task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    @property
    def waiting(self) -> int:
        """Rows not written yet and waiting to be tried again."""
        return len(self._retry)

    async def _run(self) -> None:
        while True:
            if self._retry and not self._q:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.retry_s)
                except TimeoutError:
                    pass
            elif not self._q:
                await self._wake.wait()
            self._wake.clear()
            ops: list[Op] = [*self._retry]
            self._retry.clear()
            while self._q:
                ops.append(self._q.popleft())
            stop = await self._apply(ops)
            self._m_waiting.set(len(self._retry))
            if stop:
                if self._retry:
                    log.error("stopping with %d recording rows not written (a full disk?); open segments are finished at the next start",
                              len(self._retry))
                return

    async def _apply(self, ops: list[Op]) -> bool:
        """Runs of row changes in one transaction each, alert changes and markers in
        between, all in order. True when a stop marker was reached."""
        batch: list[RowOp] = []
        stop = False
        for op in ops:
            if isinstance(op, (InsertSegment, FinishSegment, ForgetSegment, InsertGap)):
                batch.append(op)
                continue
            await self._write(batch)
            batch = []
            if isinstance(op, AlertChange):
                await self._alert(op)
            else:
                if op.stop and self._retry:
                    await self._write(self._take_retries())  # one last try
                if not op.done.done():
                    op.done.set_result(None)
                stop = stop or op.stop
        await self._write(batch)
        return stop

    def _take_retries(self) -> list[RowOp]:
        ops, self._retry = self._retry, []
        return ops

    async def _write(self, batch: list[RowOp]) -> None:
        if not batch:
            return
        try:
            results = await self.db.write(lambda c: [op.run(c) for op in batch])
        except Exception as e:  # noqa: BLE001 - each is tried on its own below
            if len(batch) == 1:
                self._failed(batch[0], e)
                return
            for op in batch:
                try:
                    result = await self.db.write(op.run)
                except Exception as e1:  # noqa: BLE001 - retried or handed back
                    self._failed(op, e1)
                else:
                    await self._written(op, result)
            del e
            return
        for op, result in zip(batch, results, strict=True):
            await self._written(op, result)

    async def _written(self, op: RowOp, result: Any) -> None:
        if isinstance(op, InsertSegment):
            op.done(result, None)
        elif isinstance(op, (FinishSegment, ForgetSegment)):
            for w in op.waiters:
                w.set()
        else:
            self._m_gaps.labels(op.camera_id).inc()
            await self.bus.publish(RecordingGap(camera_id=op.camera_id, started_at=utc_at(op.start), ended_at=utc_at(op.end),
                                                duration_s=round(op.end - op.start, 3), reason=op.reason))

    def _failed(self, op: RowOp, e: BaseException) -> None:
        full = self.monitor.report(e) if self.monitor is not None else False
        what = type(op).__name__
        self._failures.log(logging.ERROR, f"rows:{op.camera_id}", "camera %s: recording row (%s) not written%s: %s", op.camera_id, what,
                           "" if isinstance(op, InsertSegment) else ", tried again", "disk full" if full else e)
        if isinstance(op, InsertSegment):
            op.done(None, e)
        else:
            self._retry.append(op)

    async def _alert(self, op: AlertChange) -> None:
        try:
            if op.raise_:
                await self.alerts.raise_alert(op.kind, **op.kw)
            else:
                await self.alerts.clear(op.kind, **op.kw)
        except Exception as e:  # noqa: BLE001 - logged; a later change of the same alert goes on
            self._failures.log(logging.ERROR, f"alert:{op.kind}", "%s %s not written: %s", "raising" if op.raise_ else "clearing", op.kind, e)
