"""Typed configuration: one pydantic tree loaded from one YAML file.

`load_config(path)` returns a validated `GatewayConfig` or raises `ConfigError`
whose message names the key path and YAML line of every problem.
"""

from config.loader import ConfigError, load_config, load_config_text
from config.schema import GatewayConfig

__all__ = ["ConfigError", "GatewayConfig", "load_config", "load_config_text"]
