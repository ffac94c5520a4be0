"""`llm-shadow demo`: the whole loop on this machine in about a minute, with no API keys
and nothing else running: fake legacy and orchestrator models, the proxy, a client on
the official openai SDK, the auto-ramp, an injected regression and the automatic
rollback, then the comparison report and the traces.

Layer: composition. Redis comes from `--redis-url`, else `LLM_SHADOW_REDIS_URL`, else
redis://127.0.0.1:6379/0; when it does not answer, the demo runs on the in-process
store and says so. The demo brings its own configuration (written to its folder), so a
config.json in the current directory plays no part. Exit status: 0 the story happened,
1 it did not (the message says what was missing), 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from proxy.cli.common import require_extra
from proxy.cli.preamble import redacted_url
from proxy.config import ConfigError

QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "httpx", "httpcore", "openai", "opentelemetry")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = commands.add_parser(
        "demo", help="see the whole thing work in about a minute (fakes, no API keys)",
        description="Shadow, divert and auto-ramp against fake LLMs on loopback, break the "
                    "orchestrator, watch the automatic rollback, read the report.")
    demo.add_argument("--step-seconds", type=_positive, default=5.0, metavar="S",
                      help="minimum time in each ramp step (default 5; steps also need 30 "
                           "comparisons)")
    demo.add_argument("--rate", type=_positive, default=25.0, metavar="N",
                      help="client requests per second (default 25)")
    demo.add_argument("--regression", choices=["wrong", "error", "slow"], default="wrong",
                      help="what breaks in the orchestrator's models: wrong answers "
                           "(default), HTTP 500s, or 3 s of extra latency")
    demo.add_argument("--redis-url", metavar="URL",
                      help="Redis to use if it answers (default: $LLM_SHADOW_REDIS_URL, "
                           "else redis://127.0.0.1:6379/0); memory:// for the in-process "
                           "store")
    demo.add_argument("--keep-keys", action="store_true",
                      help="leave the demo's Redis keys for `llm-shadow report` and friends")
    demo.add_argument("--out", metavar="DIR", type=Path,
                      help="folder for the configuration, report.html and traces "
                           "(default: a new temporary folder)")
    demo.add_argument("--timeout", type=_positive, default=300.0, metavar="S",
                      help="give up (exit 1) if the ramp has not reached its last step "
                           "after this long (default 300)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the fakes and the client")
    demo.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    require_extra("demo", ("openai", "plotly"), "demo")
    from proxy.demo.run import DEFAULT_REDIS_URL, Options, run_demo
    from proxy.orchestrator.validation import PolicyError

    _quiet_logs(args.log_level)
    url = args.redis_url or os.environ.get("LLM_SHADOW_REDIS_URL") or DEFAULT_REDIS_URL
    options = Options(step_seconds=args.step_seconds, rate=args.rate,
                      regression=args.regression, redis_url=url, redis_shown=redacted_url(url),
                      keep_keys=args.keep_keys, folder=args.out, seed=args.seed,
                      timeout=args.timeout)
    try:
        return asyncio.run(run_demo(options, os.environ, _print))
    except KeyboardInterrupt:
        print("\nllm-shadow demo: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, PolicyError) as exc:  # an OTEL_* setting the SDK refused
        print(f"llm-shadow demo: invalid configuration:\n{exc}", file=sys.stderr)
        return 2


def _print(line: str) -> None:
    print(line, flush=True)


def _quiet_logs(level: str) -> None:
    """The demo tells its own story on stdout; logs (stderr) keep to warnings from this
    project, and to errors from libraries, unless `--log-level debug` asks for more. The
    ramp's own log lines repeat what the demo prints, so they are left out."""
    if level == "debug":
        return
    logging.getLogger().setLevel(logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("llm_shadow.ramp").setLevel(logging.ERROR)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value
