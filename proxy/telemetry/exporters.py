"""Building the span exporters and metric readers the `OTEL_*` selection asks for.

Layer: adapter (OpenTelemetry exporters). The OTLP exporters are built with no
arguments on purpose: they read their endpoint, headers, timeout, compression and
certificates from the standard variables themselves, exactly as users configure any
OpenTelemetry SDK. The gRPC and HTTP exporter modules are imported only when selected
(importing gRPC costs start-up time and memory that an HTTP-only deployment never needs).

Failures to build an exporter become `ConfigError` naming the exporter and the error
class only: the SDK's messages can quote `OTEL_EXPORTER_OTLP_HEADERS`, which carries
collector credentials.

`telemetry.traces_file` is the SDK's console exporter writing to a file instead of
standard output, one compact JSON object per line (JSON Lines: `grep` a request id, or
read it with `jq`). The file is opened for appending, so a restart adds to it.

An exporter whose collector is down logs the same warning on every attempt (every few
seconds per signal); `quiet_exporter_loggers` lets the first one through, then one a
minute saying how many were held back.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult

from proxy.config.load import ConfigError
from proxy.config.telemetry import Exporter

T = TypeVar("T")

# Loggers of the SDK that may quote header values (invalid OTEL_EXPORTER_OTLP_HEADERS).
QUOTING_LOGGERS = ("opentelemetry.util.re",)
# Loggers that report each failed export attempt (a collector that is down).
EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.sdk.metrics._internal.export",
)
REPEAT_WINDOW_SECONDS = 60.0
# What the exporters say when shutdown cuts their retries short: the lifecycle has said it.
SHUTDOWN_NOISE = ("Shutdown in progress", "Exporter already shutdown",
                  "Can't shutdown multiple times")


def span_exporter(name: Exporter) -> SpanExporter:
    return _build(name, "traces", _SPAN_EXPORTERS)


def file_span_exporter(path: Path) -> SpanExporter:
    """Spans appended to `path`, one JSON object per line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"telemetry.traces_file: cannot write {path}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    return FileSpanExporter(out)


class FileSpanExporter(ConsoleSpanExporter):
    """The console exporter on a file of its own, which it closes at shutdown."""

    def __init__(self, out: IO[str]):
        super().__init__(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.out.closed:
            return SpanExportResult.FAILURE
        try:
            return super().export(spans)
        except OSError:  # a full disk: the spans are counted as dropped, never raised
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.out.close()


def metric_reader(name: Exporter) -> MetricReader:
    """A push reader for `name` (the Prometheus pull reader is built by setup)."""
    return PeriodicExportingMetricReader(_build(name, "metrics", _METRIC_EXPORTERS))


def _build(name: Exporter, signal: str, table: Mapping[str, Callable[[], T]]) -> T:
    factory = table.get(name)
    if factory is None:
        raise ConfigError(f"environment: {signal} exporter {name!r} is not supported here")
    try:
        return factory()
    except Exception as exc:  # any SDK construction error: report it without its text
        raise ConfigError(f"environment: cannot build the {name} {signal} exporter "
                          f"({type(exc).__name__}); check OTEL_EXPORTER_OTLP_*") from None


def _otlp_grpc_spans() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_http_spans() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_grpc_metrics() -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _otlp_http_metrics() -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


_SPAN_EXPORTERS: dict[str, Callable[[], SpanExporter]] = {
    "otlp_grpc": _otlp_grpc_spans,
    "otlp_http": _otlp_http_spans,
    # `out` is passed at build time, not left to the default bound at import time, so
    # the exporter writes to whatever `sys.stdout` is now.
    "console": lambda: ConsoleSpanExporter(out=sys.stdout),
}
_METRIC_EXPORTERS: dict[str, Callable[[], MetricExporter]] = {
    "otlp_grpc": _otlp_grpc_metrics,
    "otlp_http": _otlp_http_metrics,
    "console": lambda: ConsoleMetricExporter(out=sys.stdout),
}


class QuoteFilter(logging.Filter):
    """Drops the arguments of SDK log records that would quote configuration values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = ("<value withheld>",) * _arg_count(record.args)
        return True


def _arg_count(args: object) -> int:
    return len(args) if isinstance(args, tuple) else 1


def guard_quoting_loggers() -> None:
    """Install `QuoteFilter` once on the SDK loggers that may quote header values."""
    for name in QUOTING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuoteFilter) for f in logger.filters):
            logger.addFilter(QuoteFilter())


class RepeatFilter(logging.Filter):
    """Lets the first record of each message through, then at most one per `window`
    seconds, which says how many like it were held back in between. The exporters'
    remarks while shutting down are dropped (`proxy.telemetry.lifecycle` reports a
    shutdown that did not finish)."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(SHUTDOWN_NOISE):
            return False
        key = (record.name, record.msg)
        now = self._clock()
        with self._lock:
            last, held = self._seen.get(key, (float("-inf"), 0))
            if now - last < self.window:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last " \
                         f"{self.window:g}s were not logged)"
        return True


def quiet_exporter_loggers() -> None:
    """Install one `RepeatFilter` on each exporter logger (once per process)."""
    for name in EXPORT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())
