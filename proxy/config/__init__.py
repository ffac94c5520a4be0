"""Configuration: one validated, frozen `Config` built from defaults, `config.json`,
`LLM_SHADOW_*` environment variables and CLI flags, in that order.

Layer: pure core. Only `proxy.config.load` reads files or the environment; every other
module receives the parts of `Config` it needs as arguments.
"""

from __future__ import annotations

from proxy.config.load import ConfigError, Settings, load_config, parse_config
from proxy.config.model import Config

__all__ = ["Config", "ConfigError", "Settings", "load_config", "parse_config"]
