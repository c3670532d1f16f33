"""The one executor interface for CPU-heavy face work.

dlib's HOG detector and ResNet hold the GIL for tens of milliseconds per call,
so they run in separate processes; the event loop only awaits futures. The
pool uses `spawn` because forking a process that runs asyncio, threads and
database connections copies their state in an undefined condition.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing as mp
import signal
from typing import Any

import numpy as np

from recognition.faces import (
    Analysis,
    Params,
    analyse,
    analyse_bytes,
    analyse_clip,
    analyse_sequence,
)


def _warm() -> None:
    # Ctrl-C and SIGTERM reach the whole process group: workers leave stopping to the
    # gateway, which shuts the pool down after the work that still needs it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Loads the dlib models once per worker, not on the first real request.
    import face_recognition

    face_recognition.face_locations(np.zeros((32, 32, 3), dtype=np.uint8))


def _analyse_many(items: list[bytes], p: Params) -> list[Analysis]:
    return [analyse_bytes(b, p) for b in items]


class WorkersStopped(RuntimeError):
    """A request came after the gateway began stopping."""


class FaceWorkers:
    """`await workers.analyse_bytes(data, params)`; started lazily, stopped with the gateway."""

    def __init__(self, processes: int = 1) -> None:
        self.processes = processes
        self._pool: cf.ProcessPoolExecutor | None = None
        self._closed = False

    def _get(self) -> cf.ProcessPoolExecutor:
        if self._closed:
            raise WorkersStopped("face workers are stopped")
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.processes, mp_context=mp.get_context("spawn"), initializer=_warm)
        return self._pool

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._get(), fn, *args)
        except cf.process.BrokenProcessPool:
            # A worker died (out of memory, killed): start a fresh pool for the next request.
            self._pool = None
            raise

    async def analyse_bytes(self, data: bytes, p: Params) -> Analysis:
        return await self._run(analyse_bytes, data, p)  # type: ignore[no-any-return]

    async def analyse_many(self, items: list[bytes], p: Params) -> list[Analysis]:
        return await self._run(_analyse_many, items, p)  # type: ignore[no-any-return]

    async def analyse_sequence(self, items: list[bytes], p: Params, encode: frozenset[int]) -> list[Analysis]:
        return await self._run(analyse_sequence, items, p, encode)  # type: ignore[no-any-return]

    async def analyse_clip(self, data: bytes, n: int, p: Params) -> list[Analysis]:
        return await self._run(analyse_clip, data, n, p)  # type: ignore[no-any-return]

    async def analyse_rgb(self, rgb: np.ndarray, p: Params) -> Analysis:
        return await self._run(analyse, rgb, p)  # type: ignore[no-any-return]

    def pids(self) -> list[int]:
        """The worker processes' ids (empty before the first request): for tests and diagnostics."""
        pool = self._pool
        return sorted(pool._processes or {}) if pool is not None else []  # type: ignore[attr-defined]

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
