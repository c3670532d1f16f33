"""The embedded MQTT broker (amqtt) for `gateway demo` when no broker is configured.

Bound to 127.0.0.1 only; anonymous access is acceptable there and nowhere else.
Production sites use Mosquitto or EMQX.
"""

from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedBroker:
    def __init__(self, port: int = 1883) -> None:
        if not port_free(port):
            # Another broker (often Mosquitto) already owns the port: take any free one.
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                new = s.getsockname()[1]
            log.info("port %d is taken; embedded broker uses %d", port, new)
            port = new
        self.port = port
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = self._broker = Broker(config)
        await broker.start()
        log.info("embedded MQTT broker on %s", self.url)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
