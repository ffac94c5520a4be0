"""`llm-shadow serve` and `llm-shadow check-config`.

`check-config` checks what `serve` would load, the same way: the configuration, every
policy file it names (`proxy.config.policyfiles`) and the `OTEL_*` variables; any error
exits 2 naming the file (or variable) and the key. It also says which policies are
built-in because their file is missing, and warns (exit status still 0) about models
whose API key variable is unset: `serve` would not select them.
"""

from __future__ import annotations

import argparse
import sys

from proxy.cli.common import add_config_option, load_or_exit
from proxy.config import ConfigError


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
    from proxy.config.policyfiles import check
    from proxy.config.telemetry import read_otel_environment

    settings = load_or_exit(args)
    config = settings.config
    policies = check(settings)
    errors = [error for _, error in policies if error]
    try:
        read_otel_environment()
    except ConfigError as exc:
        errors.append(str(exc))
    if errors:
        print("llm-shadow: invalid configuration:\n" + "\n".join(errors), file=sys.stderr)
        return 2
    name = settings.source if settings.has_file else "no config file: built-in defaults"
    print(f"{name}: OK ({len(config.proxy.routes)} routes, {len(config.models)} models)")
    for file, _ in policies:
        print(f"  {file.describe()}")
    missing = settings.missing_keys()
    if missing:
        print("llm-shadow: warning: models not selected, their API key variable is unset: "
              + ", ".join(f"{name} ({variable})" for name, variable in sorted(missing.items())),
              file=sys.stderr)
    judge = config.comparison.judge
    variable = settings.missing_keys(disabled_too=True).get(judge.model or "")
    if judge.enabled and variable:
        print(f"llm-shadow: warning: the judge does not run, its model's API key variable "
              f"is unset: {judge.model} ({variable})", file=sys.stderr)
    return 0
