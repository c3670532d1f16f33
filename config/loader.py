"""Load YAML with line numbers, apply GATEWAY_* environment overrides, validate.

ruamel.yaml's round-trip loader keeps the line of every key, so a validation
error can be walked back to the line that caused it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from config.schema import GatewayConfig

ENV_PREFIX = "GATEWAY_"
ENV_IGNORED = {"GATEWAY_CONFIG"}


class ConfigError(Exception):
    """Every problem found in one configuration, one line each."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} configuration error(s)\n" + "\n".join(f"  {p}" for p in problems))


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> GatewayConfig:
    if path is None:
        return load_config_text("{}", "<defaults>", env)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(p), [f"cannot read: {e.strerror}"]) from None
    return load_config_text(text, str(p), env)


def load_config_text(text: str, source: str = "<string>", env: Mapping[str, str] | None = None) -> GatewayConfig:
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(io.StringIO(text))
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(source, [f"{where}not valid YAML: {getattr(e, 'problem', None) or e}"]) from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, Mapping):
        raise ConfigError(source, ["line 1: the top level must be a mapping of sections"])
    overridden = _apply_env(data, os.environ if env is None else env)
    try:
        cfg = GatewayConfig.model_validate(_plain(data))
    except ValidationError as e:
        raise ConfigError(source, [_describe(err, data, overridden) for err in e.errors()]) from None
    problems = cfg.reference_problems()
    if problems:
        raise ConfigError(
            source,
            [_describe({"loc": loc, "msg": msg, "type": "reference"}, data, overridden) for loc, msg in problems],
        )
    return cfg


def _apply_env(data: Any, env: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """GATEWAY_MQTT__URL=... sets mqtt.url; values are parsed as YAML scalars."""
    done: dict[tuple[str, ...], str] = {}
    yaml = YAML(typ="safe")
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_IGNORED:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__") if part)
        if len(path) < 2:
            continue
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), Mapping):
                node[key] = CommentedMap()
            node = node[key]
        try:
            value = yaml.load(raw) if raw.strip() else ""
        except YAMLError:
            value = raw
        # Secrets stay strings even when they look like numbers.
        node[path[-1]] = raw if isinstance(value, (dict, list)) or path[-1] in ("password", "secret_key", "secret") else value
        done[path] = name
    return done


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _describe(err: Mapping[str, Any], data: Any, overridden: dict[tuple[str, ...], str]) -> str:
    loc = list(err["loc"])
    path_parts: list[str] = []
    node, line = data, None
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = _line(node, part, line)
            node = node[part]
            path_parts.append(part)
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
            path_parts.append(f"[{part}]")
        elif isinstance(part, str) and part in ("camera", "tracker", "kiosk", "bodycam") and isinstance(node, Mapping) and node.get("kind") == part:
            continue  # the discriminated union adds the kind to the path
        else:
            path_parts.append(f"[{part}]" if isinstance(part, int) else str(part))
            node = None
    key = ".".join(path_parts).replace(".[", "[") or "(top level)"
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see config/gateway.yaml for every key)"
    elif err["type"] == "missing":
        message = "required key is missing"
    value = err.get("input")
    shown = "" if err["type"] in ("missing", "reference") or isinstance(value, (dict, list)) else f" (got {_redact(key, value)!r})"
    env_name = overridden.get(tuple(p for p in path_parts))
    where = f"from environment {env_name}" if env_name else (f"line {line}" if line else "line ?")
    return f"{where}: {key}: {message}{shown}"


def _line(node: CommentedMap, key: str, fallback: int | None) -> int | None:
    try:
        return node.lc.key(key)[0] + 1
    except (KeyError, TypeError):  # inserted from the environment: no line
        return fallback


def _redact(key: str, value: Any) -> Any:
    if any(s in key for s in ("password", "secret", "key")):
        return "***"
    if isinstance(value, str) and "://" in value:
        return _USERINFO.sub(r"\1***@", value)  # a URL refused for its credentials must not print them
    return value


_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)
