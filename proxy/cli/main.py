"""`llm-shadow`: the entry point; each subcommand lives in the module named for it.

Layer: composition. Exit codes: 0 success, 1 the operation failed (e.g. Redis
unreachable), 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from proxy.cli import compare, demo, flags, ramp, report, serve

COMMAND_MODULES = [serve, flags, report, ramp, compare, demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-shadow",
        description="Sidecar proxy that shadows or diverts LLM calls to an orchestrator.",
    )
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs full URLs at INFO, and a query string may carry an API key.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
