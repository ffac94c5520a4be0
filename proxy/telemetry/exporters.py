"""Building the span exporters and metric readers the `OTEL_*` selection asks for.

Layer: adapter (OpenTelemetry exporters). The OTLP exporters are built with no
arguments on purpose: they read their endpoint, headers, timeout, compression and
certificates from the standard variables themselves, exactly as users configure any
OpenTelemetry SDK. The gRPC and HTTP exporter modules are imported only when selected
(importing gRPC costs start-up time and memory that an HTTP-only deployment never needs).

Failures to build an exporter become `ConfigError` naming the exporter and the error
class only: the SDK's messages can quote `OTEL_EXPORTER_OTLP_HEADERS`, which carries
collector credentials.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import TypeVar

from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from proxy.config.load import ConfigError
from proxy.config.telemetry import Exporter

T = TypeVar("T")

# Loggers of the SDK that may quote header values (invalid OTEL_EXPORTER_OTLP_HEADERS).
QUOTING_LOGGERS = ("opentelemetry.util.re",)


def span_exporter(name: Exporter) -> SpanExporter:
    return _build(name, "traces", _SPAN_EXPORTERS)


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
