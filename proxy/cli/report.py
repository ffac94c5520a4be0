"""`llm-shadow report`: the parallel run's comparison, from the aggregates in Redis.

Layer: composition. Redis comes from `--redis-url`, else `LLM_SHADOW_REDIS_URL`, else
the configuration (the usual precedence, applied by `proxy.config.load`). Exit 1 with a
one-line reason when Redis cannot be read (the URL is never printed: it may carry a
password), 2 for bad usage, a `--route` matching no route among the configuration's and
those with data in Redis included (a typo must not read as "no comparisons").
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

from proxy.cli.common import add_config_option, load_for_redis, require_extra
from proxy.config import Settings
from proxy.redisfailure import redis_failures
from proxy.report.aggregate import Report
from proxy.report.aggregate_store import ReportStore, ReportStoreError
from proxy.report.text import render_json, render_text

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `24h`, `7d`, `1w`, or a combination such as `1h30m`."""
    value = text.strip().lower()
    if not value or _DURATION.sub("", value):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r} (use e.g. 30m, 24h, 7d, 1h30m)")
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(value))
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return seconds


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = commands.add_parser(
        "report", help="print the comparison report (divergence, latency, cost)")
    add_config_option(report)
    report.add_argument("--since", type=parse_duration, default=parse_duration("24h"),
                        metavar="DURATION", help="window ending now (default: 24h)")
    report.add_argument("--format", choices=["text", "json", "html"], default="text")
    report.add_argument("--output", metavar="PATH",
                        help="write the report to this file instead of standard output")
    report.add_argument("--route", metavar="PREFIX", help="only routes under this prefix")
    report.add_argument("--jaeger-url", metavar="URL",
                        help="Jaeger UI base URL (e.g. http://localhost:16686): the HTML "
                             "report links each request id to its trace")
    report.add_argument("--redis-url", metavar="URL",
                        help="Redis holding the aggregates (default: $LLM_SHADOW_REDIS_URL, "
                             "else the configuration's redis.url)")
    report.set_defaults(func=run_report)


class UnknownRoute(Exception):
    pass


def run_report(args: argparse.Namespace) -> int:
    if args.format == "html":
        require_extra("report --format html", ("plotly",), "report")
    settings = load_for_redis(args, "report")
    try:
        report = asyncio.run(fetch(settings, args.since, args.route))
    except ReportStoreError as exc:
        print(f"llm-shadow report: {exc}; is Redis running and is redis.url right?",
              file=sys.stderr)
        return 1
    except UnknownRoute as exc:
        print(f"llm-shadow report: {exc}", file=sys.stderr)
        return 2
    text = render(report, args.format, jaeger_url=args.jaeger_url)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"llm-shadow report: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


async def fetch(settings: Settings, since_seconds: float, route: str | None) -> Report:
    config = settings.config
    store = ReportStore.from_config(config.redis, config.comparison, budget=2.0)
    try:
        if route:
            await check_route(settings, store, route)
        return await store.report(time.time() - since_seconds, route_prefix=route)
    finally:
        await store.aclose()


async def check_route(settings: Settings, store: ReportStore, prefix: str) -> None:
    """`UnknownRoute` unless `prefix` covers a configured route or one with data."""
    configured = [route.prefix for route in settings.config.proxy.routes]
    async with redis_failures("read the report's routes", ReportStoreError):
        with_data = await store.routes(0.0)
    if any(r == prefix or r.startswith(prefix) for r in (*configured, *with_data)):
        return
    raise UnknownRoute(f"--route {prefix} matches no route: configured "
                       f"{', '.join(configured) or 'none'}; with data in Redis "
                       f"{', '.join(with_data) or 'none'}")


def render(report: Report, fmt: str, *, jaeger_url: str | None = None) -> str:
    if fmt == "json":
        return render_json(report) + "\n"
    if fmt == "html":
        from proxy.report.html import render_html  # plotly is a heavy import

        return render_html(report, jaeger_url)
    return render_text(report)
