"""Configuration: typed tree, every error with its key path and YAML line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_config, load_config_text

ROOT = Path(__file__).resolve().parents[2]


def errors(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config_text(text, "site.yaml", env or {})
    return e.value.problems


def test_defaults_run_out_of_the_box() -> None:
    cfg = load_config_text("", env={})
    assert cfg.gateway.port == 8080
    assert cfg.database_url.startswith("sqlite:///")
    assert cfg.mqtt.url is None


@pytest.mark.parametrize("name", ["gateway.yaml", "example-site.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(ROOT / "config" / name, env={})
    if name == "example-site.yaml":
        kinds = {d.kind for d in cfg.devices}
        assert kinds == {"camera", "tracker", "kiosk", "bodycam"}
        assert cfg.zones and cfg.persons


def test_every_error_names_line_and_key_path() -> None:
    problems = errors(
        "gateway:\n"
        "  port: 99999\n"
        "  colour: red\n"
        "devices:\n"
        "  - id: cam1\n"
        "    kind: camera\n"
        "    url: http://not-rtsp\n"
        "  - id: t1\n"
        "    kind: tracker\n"
        "    report_interval_s: 0\n"
    )
    assert len(problems) == 4
    assert problems[0].startswith("line 2: gateway.port:")
    assert problems[1].startswith("line 3: gateway.colour: unknown key")
    assert problems[2].startswith("line 7: devices[0].url:")
    assert problems[3].startswith("line 10: devices[1].report_interval_s:")


def test_missing_key_points_at_its_parent() -> None:
    problems = errors("zones:\n  - id: home\n    kind: inclusion\n")
    assert problems == ["line 2: zones[0].geometry: required key is missing"]


def test_cross_references_are_checked_with_lines() -> None:
    problems = errors(
        "persons: [{id: p1, name: A}]\n"
        "devices:\n"
        "  - {id: t1, kind: tracker, person_id: p2}\n"
        "  - {id: t1, kind: kiosk}\n"
    )
    assert "line 4: devices[1].id: id 't1' appears more than once in devices" in problems
    assert "line 3: devices[0].person_id: device 't1' names person 'p2', who is not in persons" in problems


def test_yaml_syntax_error_has_a_line() -> None:
    problems = errors("gateway:\n  port: [1, 2\n")
    assert problems[0].startswith("line ") and "not valid YAML" in problems[0]


def test_environment_overrides_and_their_errors() -> None:
    cfg = load_config_text("mqtt: {keepalive_s: 30}\n", env={"GATEWAY_MQTT__KEEPALIVE_S": "45", "GATEWAY_STORAGE__DATABASE_URL": "postgresql://x@h/db"})
    assert cfg.mqtt.keepalive_s == 45
    assert cfg.database_url == "postgresql://x@h/db"
    problems = errors("", env={"GATEWAY_GATEWAY__PORT": "0"})
    assert problems[0].startswith("from environment GATEWAY_GATEWAY__PORT: gateway.port:")


def test_secrets_come_from_environment_and_are_not_echoed() -> None:
    cfg = load_config_text("", env={"GATEWAY_MQTT__PASSWORD": "12345678"})
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "12345678"
    assert "12345678" not in repr(cfg)
    problems = errors("", env={"GATEWAY_GATEWAY__SECRET_KEY": "short-secret-9"})
    assert len(problems) == 1
    assert problems[0].startswith("from environment GATEWAY_GATEWAY__SECRET_KEY: gateway.secret_key: ")
    assert "short-secret-9" not in problems[0]


def test_check_config_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway:\n  prot: 1\n")
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert "line 2: gateway.prot: unknown key" in r.stderr
    good = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", str(ROOT / "config" / "example-site.yaml")], capture_output=True, text=True, cwd=ROOT)
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout


def test_gateway_refuses_to_start_on_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage:\n  database_url: 5\n  wal: true\n")
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "run", "-c", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2
    assert "line 3: storage.wal: unknown key" in r.stderr


async def test_a_password_set_through_the_api_survives_a_restart_of_a_config_camera(make_config) -> None:
    """The configuration names the camera but no password: the one an admin set through the
    API stays (before, every start wrote the file's absent password over it)."""
    from gateway.db.models import Device
    from tests.conftest import running

    cfg = make_config(devices=[{"id": "cam-1", "kind": "camera", "url": "rtsp://127.0.0.1:9/room", "enabled": False}])
    async with running(cfg) as r:
        admin = await r.login()
        res = await r.client.patch("/api/devices/cam-1", json={"password": "s3cret-pass"}, headers=admin)
        assert res.status_code == 200 and res.json()["has_password"] is True
    async with running(cfg) as r:
        async with r.services.db.session() as s:
            assert (await s.get(Device, "cam-1")).secret == "s3cret-pass"
