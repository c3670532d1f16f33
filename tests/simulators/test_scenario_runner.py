"""The scenario runner checks expectations against a real gateway's API and
exits non-zero when one fails. Device kinds are tested in their own areas."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from simulators.scenario import ScenarioError, load_scenario
from tests.waiting import wait_for_blocking

ROOT = Path(__file__).resolve().parents[2]


def test_scenario_files_are_validated(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("devices: [{kind: toaster, id: x}]\n")
    with pytest.raises(ScenarioError, match="kind must be one of"):
        load_scenario(f)
    f.write_text("expect: [{within_s: 3}]\n")
    with pytest.raises(ScenarioError, match="must have alert, no_alert or device"):
        load_scenario(f)
    f.write_text("speeed: 3\n")
    with pytest.raises(ScenarioError, match="unknown keys"):
        load_scenario(f)


def test_bundled_scenarios_are_valid() -> None:
    files = sorted((ROOT / "simulators" / "scenarios").glob("*.yaml"))
    assert files, "no bundled scenarios"
    for f in files:
        load_scenario(f)


def test_expectations_pass_and_fail_with_exit_status(live_gateway, tmp_path: Path) -> None:
    live_gateway.add_user("tester", "monitor", "tester-password")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: runner-check\nspeed: 1\nexpect:\n"
        "  - alert: {kind: tamper, level: red, device_id: t-9}\n    within_s: 8\n"
        "  - no_alert: {kind: sos, device_id: t-9}\n    within_s: 2\n"
        "  - alert: {kind: curfew, device_id: t-9}\n    within_s: 2\n"
    )

    async def signed_in() -> bool:
        from sqlalchemy import select

        from gateway.db.models import AuditEntry

        async with live_gateway.services.db.session() as s:
            q = select(AuditEntry.id).where(AuditEntry.action == "auth.login", AuditEntry.actor == "tester")
            return (await s.scalars(q)).first() is not None

    failed: list[BaseException] = []

    def raise_once_watching() -> None:
        """The tamper alert comes while the runner watches (it has signed in), not before."""
        try:
            wait_for_blocking(lambda: live_gateway.call(signed_in), 60, "the scenario runner to sign in")
            live_gateway.call(live_gateway.services.alerts.raise_alert, "tamper", device_id="t-9")
        except BaseException as e:
            failed.append(e)

    t = threading.Thread(target=raise_once_watching)
    t.start()
    env = {**os.environ, "GATEWAY_SIM_PASSWORD": "tester-password"}
    r = subprocess.run([sys.executable, "-m", "simulators.cli", "scenario", str(scenario), "--gateway", live_gateway.url, "--user", "tester"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    t.join()
    assert not failed, failed
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("PASS  alert kind=tamper level=red device_id=t-9") for line in lines), r.stdout
    assert any(line.startswith("PASS  no alert kind=sos") for line in lines), r.stdout
    assert any(line.startswith("FAIL  alert kind=curfew") and "not raised" in line for line in lines), r.stdout
    assert "2 passed, 1 failed" in lines


def test_wrong_credentials_are_reported(live_gateway, tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("expect: [{alert: {kind: tamper}, within_s: 1}]\n")
    env = {**os.environ, "GATEWAY_SIM_PASSWORD": "nope"}
    r = subprocess.run([sys.executable, "-m", "simulators.cli", "scenario", str(scenario), "--gateway", live_gateway.url, "--user", "ghost"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "login as ghost failed: 401" in r.stderr
