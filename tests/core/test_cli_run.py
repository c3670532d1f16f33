"""`gateway run` serves, applies migrations, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.waiting import wait_for_blocking

ROOT = Path(__file__).resolve().parents[2]


def test_run_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"gateway: {{port: {port}, data_dir: {tmp_path / 'data'}, log_format: json}}\n")
    up = subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade", "-c", str(cfg)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert up.returncode == 0 and "newest schema" in up.stdout
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        def health() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return None

        r = wait_for_blocking(health, 60, "the gateway to answer /healthz")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert "date" in r.headers  # uvicorn's once-a-second tick runs (our main loop replaces its 10 Hz poll)
        assert httpx.get(f"http://127.0.0.1:{port}/api/persons").status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        err = proc.stderr.read() if proc.stderr else ""
        # JSON logs: every line parses.
        import json

        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and all(json.loads(line)["level"] for line in lines)
        assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600
    finally:
        if proc.poll() is None:
            proc.kill()
