"""`llm-shadow`: the entry point; each subcommand lives in the module named for it.

Layer: composition. Exit codes: 0 success, 1 the operation failed (e.g. Redis
unreachable), 2 bad usage or bad configuration. `--log-level` and `--log-format` are
accepted before or after the subcommand (`proxy.cli.logformat`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence

from proxy.cli import compare, demo, flags, logformat, ramp, report, serve

COMMAND_MODULES = [serve, flags, report, ramp, compare, demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-shadow",
        description="Sidecar proxy that shadows or diverts LLM calls to an orchestrator.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    logformat.add_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    for sub in _subcommands(parser):
        logformat.add_options(sub, suppress=True)
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones (`ramp start`) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subcommands(sub)


class _Version(argparse.Action):
    """`--version`, looked up only when asked (the version lives with the telemetry,
    which reports it as `service.version`)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from proxy.telemetry.setup import service_version

        print(f"llm-shadow {service_version()}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logformat.configure(logformat.level_for(args.command, args.log_level, None),
                        args.log_format or "text")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
