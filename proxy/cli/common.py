"""Options and loading shared by every subcommand that reads the configuration."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from proxy.config import ConfigError, Settings, load_config


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help="configuration file (default: $LLM_SHADOW_CONFIG, else ./config.json)")


def load_or_exit(args: argparse.Namespace, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Load the configuration; on error print what is wrong and exit with status 2."""
    try:
        return load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"llm-shadow: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
