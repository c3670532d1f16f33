"""The deployment files (deploy/, docs/cluster.md) say what the code reads: they fail here
when a configuration key is renamed or the broker settings lose what nodes rely on."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel

from config.loader import load_config_text
from config.schema import GatewayConfig

ROOT = Path(__file__).resolve().parents[2]


def _has_key(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    sub = field.annotation
    return isinstance(sub, type) and issubclass(sub, BaseModel) and _has_key(sub, path[1:])


def test_the_node_configuration_in_the_guide_is_valid() -> None:
    text = (ROOT / "docs/cluster.md").read_text()
    block = text.split("## The configuration of a node", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    cfg = load_config_text(block, "docs/cluster.md", env={"GATEWAY_GATEWAY__NODE_ID": "gw2"})
    assert cfg.database_url.startswith("postgresql://") and cfg.mqtt.url and cfg.gateway.node_id == "gw2"


def test_compose_nodes_share_what_they_must_and_name_real_keys() -> None:
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    nodes = {name: svc for name, svc in compose["services"].items() if "GATEWAY_GATEWAY__NODE_ID" in svc.get("environment", {})}
    assert len(nodes) >= 2
    assert len({svc["environment"]["GATEWAY_GATEWAY__NODE_ID"] for svc in nodes.values()}) == len(nodes), "distinct node ids"
    assert len({tuple(svc["volumes"]) for svc in nodes.values()}) == 1, "the same media volume at the same path"
    for svc in nodes.values():
        env = svc["environment"]
        assert {"GATEWAY_STORAGE__DATABASE_URL", "GATEWAY_MQTT__URL", "GATEWAY_GATEWAY__SECRET_KEY"} <= set(env)
        for name in env:
            assert _has_key(GatewayConfig, name.removeprefix("GATEWAY_").lower().split("__")), f"{name} is no configuration key"


def test_the_broker_keeps_what_nodes_miss() -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    settings = dict(line.split(None, 1) for line in conf.splitlines() if line.strip() and not line.startswith("#"))
    assert settings["persistence"].strip() == "true"
    assert int(settings["max_queued_messages"]) >= 100_000


def test_the_systemd_unit_runs_a_node_and_the_proxy_upgrades_the_websocket() -> None:
    unit = (ROOT / "deploy/systemd/gateway@.service").read_text()
    assert re.search(r"^ExecStart=\S+/gateway run -c ", unit, re.M) and "Restart=always" in unit
    assert "GATEWAY_GATEWAY__NODE_ID=%i" in unit and "RestartPreventExitStatus=2" in unit
    nginx = (ROOT / "deploy/nginx.conf").read_text()
    events = nginx.split("location /api/events", 1)[1].split("}", 1)[0]
    assert "proxy_set_header Upgrade $http_upgrade" in events and "proxy_set_header Connection" in events
