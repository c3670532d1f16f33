"""Run the gateway: services + HTTP server in one event loop, clean shutdown on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from config.schema import GatewayConfig
from gateway.app import create_app
from gateway.assembly import Gateway, build_gateway
from gateway.logs import setup_logging
from gateway.nodes import NodeIdInUse, probe_node_id

log = logging.getLogger(__name__)


class Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its shutdown, so the process would end
    'killed by signal' even after a clean stop; we handle signals ourselves.

    uvicorn also wakes ten times a second to look at `should_exit`, which at rest was the
    largest share of the event loop's CPU; here a stop request wakes the loop, and the tick
    (the Date header, the request limit) runs once a second as uvicorn's own does.
    """

    _nap: asyncio.Future[None] | None = None

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not await self.on_tick(0):  # counter 0: uvicorn's once-a-second work
            # a bare future and timer: asyncio.wait_for would make a task every second
            self._nap = nap = loop.create_future()
            timer = loop.call_later(1.0, _settle, nap)
            await nap
            timer.cancel()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_exit)
        yield

    def request_exit(self) -> None:
        log.info("stopping")
        self.should_exit = True
        if self._nap is not None:
            _settle(self._nap)


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def make_server(cfg: GatewayConfig, gateway: Gateway) -> Server:
    app = create_app(cfg, gateway)
    return Server(uvicorn.Config(app, host=cfg.gateway.host, port=cfg.gateway.port, log_config=None, access_log=False))


async def run_gateway(cfg: GatewayConfig, gateway: Gateway | None = None) -> int:
    setup_logging(cfg.gateway.log_level, cfg.gateway.log_format)
    if cfg.mqtt.url:
        try:
            await probe_node_id(cfg.mqtt, cfg.gateway.node_id)
        except NodeIdInUse as e:
            log.error("not starting: %s", e)
            return 2
    gateway = gateway or build_gateway(cfg)
    try:  # the database's view too, before the server starts (a clean exit 2, not a failed lifespan)
        await gateway.core.db.upgrade()
        await gateway.core.cluster.register()
    except NodeIdInUse as e:
        log.error("not starting: %s", e)
        await gateway.core.db.close()
        return 2
    server = make_server(cfg, gateway)
    await server.serve()
    return 0
