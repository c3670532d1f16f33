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
from gateway.cluster.membership import Singletons

log = logging.getLogger(__name__)


class ExpirySweeper:
    name = "bodycam-uploads"

    def __init__(self, sessions: UploadSessions, singletons: Singletons) -> None:
        self.sessions = sessions
        self.singletons = singletons
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # one node of a cluster finishes interrupted uploads, removes leftovers and expires
        # uploads (two would finish the same upload twice)
        self.singletons.add("upload-expiry", self._run)

    async def _run(self) -> None:
        await self.sessions.resume_pending()
        await self.sessions.remove_leftovers()
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
