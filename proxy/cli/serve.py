"""`llm-shadow serve` and `llm-shadow check-config`."""

from __future__ import annotations

import argparse
import sys

from proxy.cli.common import add_config_option, load_or_exit


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = commands.add_parser("serve", help="run the sidecar proxy")
    add_config_option(serve)
    serve.add_argument("--host", help="proxy listen address (default from config)")
    serve.add_argument("--port", type=int, help="proxy listen port")
    serve.add_argument("--admin-host", help="admin listen address")
    serve.add_argument("--admin-port", type=int, help="admin listen port")
    serve.set_defaults(func=run_serve)

    check = commands.add_parser("check-config", help="validate the configuration and exit")
    add_config_option(check)
    check.set_defaults(func=run_check)


def run_serve(args: argparse.Namespace) -> int:
    from proxy.config import ConfigError
    from proxy.orchestrator.validation import PolicyError
    from proxy.server import run

    settings = load_or_exit(args, overrides={
        "proxy.listen.host": args.host,
        "proxy.listen.port": args.port,
        "proxy.admin.host": args.admin_host,
        "proxy.admin.port": args.admin_port,
    })
    try:
        run(settings)
    except (ConfigError, PolicyError) as exc:  # a policy file or OTEL_* setting
        print(f"llm-shadow: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    return 0


def run_check(args: argparse.Namespace) -> int:
    settings = load_or_exit(args)
    config = settings.config
    print(f"{settings.source}: OK ({len(config.proxy.routes)} routes, "
          f"{len(config.models)} models)")
    return 0
