"""`gateway demo` (the README's first command, minus the install) in a subprocess, for the
tests that use the demo as a user would: its console URL, the passwords it prints, its
embedded broker's URL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import free_port
from tests.waiting import wait_for_blocking

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_demo(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[SimpleNamespace]:
    """The demo on free ports until the block ends: `url`, `passwords` (admin, officer,
    monitor), `mqtt_url`, `output` (its lines so far). `args` go to `gateway demo`, `env`
    adds environment settings (GATEWAY_SECTION__KEY overrides, as for any gateway)."""
    port, mqtt_port = free_port(), free_port()
    full_env = {**os.environ, "GATEWAY_DEMO_MQTT_PORT": str(mqtt_port), "GATEWAY_DEMO_RTSP_PORT": str(free_port()), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--data-dir", str(data_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=full_env)
    output: list[str] = []

    def read() -> None:  # all along: a demo whose pipe is full blocks
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        def printed_passwords() -> dict[str, str] | None:
            found = {m.group(1): m.group(2) for line in list(output) if (m := re.match(r"\s+(admin|officer|monitor):\s+(\S+)$", line))}
            assert proc.poll() is None, "demo exited early:\n" + "".join(output[-40:])
            return found if len(found) == 3 else None

        passwords = wait_for_blocking(printed_passwords, 90, "the demo to print its passwords", interval=0.2)
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", passwords=passwords, mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}", output=output)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
