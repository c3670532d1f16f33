"""A gateway serving HTTP on a thread of its own, with its own event loop: what synchronous
code (a browser driven by Playwright, httpx) works against while the gateway runs, in the
end-to-end tests and the benches."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from config.schema import GatewayConfig


@dataclass
class ThreadedGateway:
    url: str
    core: Any  # gateway.core.Core
    areas: Any  # gateway.assembly.Areas
    loop: asyncio.AbstractEventLoop
    stop: Callable[[], None]

    def call(self, coro_fn: Callable[..., Awaitable[Any]], *args: Any, timeout: float = 30, **kw: Any) -> Any:
        """Run a coroutine on the gateway's own event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro_fn(*args, **kw), self.loop).result(timeout)  # type: ignore[arg-type]


def serve_in_thread(config: GatewayConfig, name: str = "gateway", start_timeout_s: float = 60) -> ThreadedGateway:
    """Build the gateway for `config` as `gateway run` does and serve it with uvicorn on
    127.0.0.1:`config.gateway.port`; RuntimeError when it does not start."""
    import uvicorn

    from gateway.app import create_app
    from gateway.assembly import build_gateway

    holder: dict[str, Any] = {}
    ready = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        gw = build_gateway(config)
        server = uvicorn.Server(uvicorn.Config(create_app(config, gw), host="127.0.0.1", port=config.gateway.port, log_config=None,
                                               access_log=False, lifespan="on"))
        holder.update(loop=loop, gateway=gw, server=server)

        async def main() -> None:
            task = asyncio.create_task(server.serve())
            deadline = time.monotonic() + start_timeout_s
            while not (server.started or task.done()) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            ready.set()
            await task

        try:
            loop.run_until_complete(main())
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    if not ready.wait(start_timeout_s + 30) or not holder["server"].started:
        raise RuntimeError("the gateway did not start (see its log)")

    def stop() -> None:
        holder["server"].should_exit = True
        thread.join(30)

    gw = holder["gateway"]
    return ThreadedGateway(f"http://127.0.0.1:{config.gateway.port}", gw.core, gw.areas, holder["loop"], stop)
