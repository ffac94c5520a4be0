"""Logging for every subcommand: one handler on standard error, text or JSON lines.

Layer: composition. `main` configures logging from the command line before anything
else runs (so even a configuration error is logged in the chosen format), and again once
the configuration is loaded (`apply`), which may set `log.level` and `log.format`
(config.json, then `LLM_SHADOW_LOG_*`; the command line still wins).

Levels: `serve` logs at `info` by default. The one-shot commands print their own output,
so they log warnings only unless `--log-level` is given: an INFO line from a library
(`flags: version 7 written`) next to their own output would say the same thing twice.
JSON lines come from python-json-logger: `time`, `level`, `logger`, `message`, and
`exc_info` with the traceback when there is one. Python warnings are routed through
logging (`py.warnings`), so in JSON mode they are JSON lines too.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from proxy.config.log import LogSection

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log more than an operator needs at INFO; httpx logs whole URLs at INFO,
# and a query string may carry an API key.
QUIET_LIBRARIES = ("httpx", "httpcore")


def add_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """`--log-level` and `--log-format`, accepted before and after the subcommand; on a
    subcommand they default to SUPPRESS so they do not undo a value given before it."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--log-level", choices=LEVELS, default=default,
                        help="log level (default: info for serve, else warning; "
                             "$LLM_SHADOW_LOG_LEVEL and log.level apply to serve)")
    parser.add_argument("--log-format", choices=FORMATS, default=default,
                        help="text (default) or json: one JSON object per line "
                             "($LLM_SHADOW_LOG_FORMAT, log.format)")


def level_for(command: str | None, given: str | None, section: LogSection | None) -> str:
    """The level a command logs at: `--log-level`, else the configuration's for serve,
    else `warning` for the one-shot commands."""
    if given:
        return given
    if command == "serve":
        return section.level if section is not None else "info"
    return "warning"


def configure(level: str, fmt: str) -> None:
    """(Re)configure the root logger: one stderr handler in `fmt`, at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter("{levelname}{name}{message}", style="{",
                             rename_fields={"levelname": "level", "name": "logger"},
                             timestamp="time")
    return logging.Formatter(TEXT_FORMAT)


def apply(args: argparse.Namespace, section: LogSection) -> None:
    """Once the configuration is loaded: its format and (for serve) its level, unless the
    command line said otherwise."""
    given_level = getattr(args, "log_level", None)
    fmt = getattr(args, "log_format", None) or section.format
    configure(level_for(getattr(args, "command", None), given_level, section), fmt)
