"""Body-worn camera uploads: a tus 1.0 server (tus.py: protocol rules,
service.py: upload sessions streaming to disk), the completion pipeline
(pipeline.py, probe.py) and the expiry sweep.

The HTTP routes live in gateway/api/uploads.py (auth) and call the area's
`UploadSessions`, which the composition root builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from drivers.bodycam.service import UploadSessions

log = logging.getLogger(__name__)


class ExpirySweeper:
    name = "bodycam-uploads"

    def __init__(self, sessions: UploadSessions) -> None:
        self.sessions = sessions
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sessions.resume_pending()
        await self.sessions.remove_leftovers()
        self._task = asyncio.create_task(self._run(), name="upload-expiry")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.sessions.settings.sweep_interval_s)
            try:
                await self.sessions.sweep()
            except Exception:  # one bad sweep must not stop the next
                log.exception("upload expiry sweep failed")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        drain = getattr(self.sessions.on_complete, "drain", None)
        if drain is not None:
            await drain()
