"""Options and loading shared by every subcommand that reads the configuration."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from proxy.cli import logformat
from proxy.cli.preamble import preamble
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
    print(preamble(settings, redis_flag=bool(getattr(args, "redis_url", None))),
          file=sys.stderr, flush=True)
    if settings.config.redis.url.startswith(MEMORY_URL):
        print(f"llm-shadow {command}: redis.url is in-process ({MEMORY_URL}): the flags "
              "live inside the serving process, which this command cannot reach; "
              "use a Redis URL (or the serving process's admin API)", file=sys.stderr)
        raise SystemExit(2)
    return settings


def require_extra(command: str, modules: tuple[str, ...], extra: str) -> None:
    """The sidecar image installs only what serving needs; the demo's SDK client and the
    HTML report's plotly come with extras. Missing ones stop the command with status 2
    and the install line, instead of a traceback."""
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        print(f"llm-shadow {command} needs {', '.join(missing)}, which this installation "
              f"lacks: pip install 'llm-shadow[{extra}]'", file=sys.stderr)
        raise SystemExit(2)


def load_or_exit(args: argparse.Namespace, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Load the configuration, and log as it says; on error print what is wrong and exit
    with status 2."""
    try:
        settings = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"llm-shadow: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logformat.apply(args, settings.config.log)
    return settings
