"""The tracker ingest worker: MQTT and decoding in a process of their own.

Receiving (paho is pure Python: tens of microseconds per message) and decoding took as
much of the gateway's one GIL as everything after them, and a gateway process never got
more than one core out of a two-core machine. The worker has its own MQTT connection
(client id `{client_id}-trackers`, persistent session, QoS 1, the same topics) and its own
GIL; it hands decoded batches (`Inbound`, pure data) to the gateway over a pipe. The
gateway filters, stores, runs the rules and pushes, then acknowledges the batch, and only
then does the worker send the PUBACKs: a position the gateway did not commit is
redelivered by the broker, as without the worker.

Wire (both directions length-framed on the worker's stdin/stdout; the worker's own stdout
is moved to stderr so a stray print cannot corrupt it):
  gateway -> worker: one setup frame (pickle), then 8-byte batch ids as they are done
  worker -> gateway: frames of pickle((batch id, [Inbound, ...]))
Pickle is safe here: both ends are this program, and nothing a device sends is unpickled
(payloads are decoded into plain values before they cross).

The worker exits when its stdin closes (the gateway stopped or died); the gateway
restarts a worker that exits, with backoff.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from itertools import count
from typing import Any

from config.schema import MqttSettings
from drivers.gps.inbound import Inbound, decode_batch
from drivers.gps.nmea import NmeaState

log = logging.getLogger(__name__)

_LEN = struct.Struct("!I")
_ACK = struct.Struct("!Q")
# Batches handed over and not yet acknowledged: the gateway always has the next one ready
PIPELINE = 8
HANDLERS = 2  # one filters while the other commits
MERGE_MAX = 2000  # messages handled as one batch at most
# Messages per batch handed over: small, so the next is decoded while the gateway commits
# (and under load the gateway merges whatever batches are waiting into one commit).
BATCH = 100


class IngestWorker:
    """Gateway side: runs the worker, feeds its batches to `handle` in order, acks them."""

    def __init__(self, handle: Callable[[list[Inbound]], Awaitable[None]], settings: MqttSettings, node_id: str, client_id: str,
                 topics: tuple[str, ...], metrics: Any, restart_max_s: float = 30.0) -> None:
        self.handle = handle
        self.setup = {"settings": settings, "node_id": node_id, "topics": topics, "client_id": client_id,
                      "log_level": logging.getLogger().getEffectiveLevel()}
        self.restart_max_s = restart_max_s
        self.proc: asyncio.subprocess.Process | None = None
        self.up = asyncio.Event()  # set while a worker is connected and subscribed
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._restarts = metrics.counter("gateway_gps_ingest_restarts_total", "Tracker ingest worker restarts")
        self._batches = metrics.counter("gateway_gps_ingest_batches_total", "Batches handed over by the tracker ingest worker")
        self._errors = metrics.counter("gateway_gps_ingest_errors_total", "Batches whose handling failed (logged; acknowledged all the same)")

    async def start(self, wait_s: float = 5.0) -> None:
        """Start the worker; returns once it is connected and subscribed, or after wait_s
        (it keeps trying in the background, as the gateway's own MQTT link does)."""
        self._task = asyncio.create_task(self._supervise(), name="gps-ingest")
        try:
            await asyncio.wait_for(self.up.wait(), wait_s)
        except TimeoutError:
            log.warning("tracker ingest worker not connected to the broker yet; it keeps trying")

    async def stop(self) -> None:
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()  # the worker's signal to stop: it disconnects and exits
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            began = time.monotonic()
            try:
                code = await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracker ingest worker failed")
                code = None
            finally:
                self.up.clear()
            if self._stopping:
                return
            if time.monotonic() - began > 60:
                delay = 1.0  # it ran for a while: come back fast
            self._restarts.inc()
            log.error("tracker ingest worker exited (code %s); restarting in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.restart_max_s)

    async def _run_once(self) -> int | None:
        proc = self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "drivers.gps.ingest", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            start_new_session=True)  # a terminal's Ctrl+C is for the gateway, which stops the worker itself
        assert proc.stdin is not None and proc.stdout is not None
        ready: deque[tuple[int, list[Inbound]]] = deque()
        more = asyncio.Event()
        handlers = [asyncio.create_task(self._handle(proc, ready, more), name="gps-ingest-handle") for _ in range(HANDLERS)]
        try:
            proc.stdin.write(_frame(self.setup))
            await proc.stdin.drain()
            while True:
                try:
                    n = _LEN.unpack(await proc.stdout.readexactly(_LEN.size))[0]
                    bid, items = pickle.loads(await proc.stdout.readexactly(n))
                except asyncio.IncompleteReadError:
                    break  # the worker is gone
                if bid == 0:  # the worker's MQTT connection is up and subscribed
                    self.up.set()
                    continue
                self._batches.inc()
                ready.append((bid, items))
                more.set()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            for h in handlers:
                h.cancel()  # between batches: what is not acknowledged comes again
            await asyncio.gather(*handlers, return_exceptions=True)
            if proc.returncode is None and not self._stopping:
                proc.kill()
        return await proc.wait()

    async def _handle(self, proc: asyncio.subprocess.Process, ready: deque[tuple[int, list[Inbound]]], more: asyncio.Event) -> None:
        """Take every batch that is waiting (group commit: the commit stage is serial, so
        under load fewer, larger commits) and acknowledge them once handled. Two of these
        run, so one filters while the other commits; the driver keeps commits in order."""
        assert proc.stdin is not None
        while True:
            while not ready:
                more.clear()
                await more.wait()
            bids: list[int] = []
            items: list[Inbound] = []
            while ready and len(items) < MERGE_MAX:
                bid, got = ready.popleft()
                bids.append(bid)
                items.extend(got)
            try:
                await self.handle(items)
            except Exception:
                # as MqttLink does: counted, logged and acknowledged; redelivering a batch
                # that fails every time would block the session for good
                self._errors.inc()
                log.exception("tracker batch of %d messages failed", len(items))
            if not proc.stdin.is_closing():
                proc.stdin.write(b"".join(_ACK.pack(b) for b in bids))


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


# --- the worker process ------------------------------------------------------------


def _read_exactly(fd: int, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        more = os.read(fd, n - len(buf))
        if not more:
            raise EOFError
        buf += more
    return buf


async def _serve(setup: dict[str, Any], out_fd: int) -> None:
    from gateway.metrics import Metrics
    from gateway.mqtt import Message, MqttLink

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    pending: dict[int, asyncio.Future[None]] = {}
    ids = count(1)
    nmea: dict[str, NmeaState] = {}

    async def forward(batch: list[Message]) -> None:
        items = decode_batch(batch, nmea, datetime.now(UTC).date())
        bid = next(ids)
        done = pending[bid] = loop.create_future()
        try:
            writer.write(_frame((bid, items)))
            await writer.drain()
        except (ConnectionError, BrokenPipeError):
            # The gateway is gone (killed). Returning or raising would let MqttLink
            # acknowledge the batch, which nobody stored: exit at once, acknowledging
            # nothing, and the broker gives the session's messages again.
            log.warning("the gateway is gone: exiting without acknowledging what it did not commit")
            os._exit(1)
        await done  # the gateway committed the batch: MqttLink acknowledges it now

    s = setup
    link = MqttLink(s["settings"], s["node_id"], Metrics(), batch_max=BATCH, pipeline=PIPELINE, client_id=s["client_id"], announce=False)
    for topic in s["topics"]:
        link.subscribe(topic, forward, qos=1)

    async def hello() -> None:
        """Tell the gateway once the broker has our subscriptions (it waits for that to start)."""
        await link.start(wait_s=3600)
        await _subscribed(link)
        writer.write(_frame((0, [])))

    # Acks are read from the start: a gateway that stops while the broker is still
    # unreachable closes our stdin, and that must end us at once.
    greeting = asyncio.create_task(hello())
    gc.freeze()  # as the gateway does after start-up (services.py): full collections stay short
    try:
        while True:
            bid = _ACK.unpack(await reader.readexactly(_ACK.size))[0]
            fut = pending.pop(bid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
    except asyncio.IncompleteReadError:
        pass  # the gateway closed our stdin: stop
    finally:
        greeting.cancel()
        for fut in pending.values():
            fut.cancel()  # not committed: no PUBACK, the broker redelivers them
        await link.stop()


async def _subscribed(link: Any) -> None:
    """Until the broker has the subscriptions sent on connect: it handles a connection's
    packets in order, so the PUBACK of a publish sent after them comes after their SUBACKs."""
    info = link.client.publish(f"gateway/nodes/{link.node_id}/ingest", b"", qos=1)
    await asyncio.to_thread(info.wait_for_publish, 10)


def main() -> None:
    # The gateway decides when its worker stops (it closes our stdin); a Ctrl+C or a
    # SIGTERM sent to the whole process group must not take the worker down first, or
    # the gateway would see it die and start another while shutting down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed goes to stderr; fd out_fd carries only frames
    setup = pickle.loads(_read_exactly(0, _LEN.unpack(_read_exactly(0, _LEN.size))[0]))
    logging.basicConfig(level=setup["log_level"], format="%(asctime)s %(levelname)-7s gps-ingest %(name)s: %(message)s")
    try:
        asyncio.run(_serve(setup, out_fd))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
