"""Options and loading shared by every subcommand that reads the configuration."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from proxy.config import ConfigError, Settings, load_config
from proxy.config.proxy import MEMORY_URL


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help="configuration file (default: $LLM_SHADOW_CONFIG, else ./config.json)")


def load_for_redis(args: argparse.Namespace, command: str) -> Settings:
    """The configuration of a command that works on the shared Redis (`--redis-url`
    overrides it); refused with status 2 when that store is in-process (`memory://`,
    also what the obsolete `flags.store: "memory"` means), since it would be this
    command's own, empty, not the serving process's."""
    settings = load_or_exit(args, overrides={"redis.url": getattr(args, "redis_url", None)})
    if settings.config.redis.url.startswith(MEMORY_URL):
        print(f"llm-shadow {command}: redis.url is in-process ({MEMORY_URL}): the flags "
              "live inside the serving process, which this command cannot reach; "
              "use a Redis URL (or the serving process's admin API)", file=sys.stderr)
        raise SystemExit(2)
    return settings


def load_or_exit(args: argparse.Namespace, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Load the configuration; on error print what is wrong and exit with status 2."""
    try:
        return load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"llm-shadow: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
