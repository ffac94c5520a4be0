"""Where the demo's traces go, and how many spans went there.

Layer: adapter (OpenTelemetry SDK; the runtime builds its telemetry from the standard
`OTEL_*` variables and the `telemetry` section, `proxy.telemetry.setup`). If the user set
an exporter or an OTLP endpoint, the demo honours it exactly, as `llm-shadow serve` would.
Otherwise spans go to a file, the same way `serve` writes one: the demo's configuration
sets `telemetry.traces_file` (JSON Lines). Metrics stay on the admin port's `/metrics`
unless `OTEL_METRICS_EXPORTER` says otherwise: with only an endpoint set they would go
to it too, and Jaeger, for one, takes no OTLP metrics.

A span processor added to the runtime's tracer provider counts the spans that ended,
whatever the exporter.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

JAEGER_IMAGE = "jaegertracing/jaeger:2.21.0"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(frozen=True, slots=True)
class Destination:
    kind: Literal["file", "user", "disabled"]
    describe: str  # for the intro: where spans go
    path: Path | None = None
    environment: Mapping[str, str] = field(default_factory=dict)  # set while building


def choose_destination(env: Mapping[str, str], folder: Path) -> Destination:
    """The user's OTEL settings when there are any, else a file in `folder`."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Destination("disabled", "none (OTEL_SDK_DISABLED=true)")
    # Metrics stay on /metrics unless asked for: Jaeger, for one, takes no OTLP metrics.
    quiet = {} if env.get("OTEL_METRICS_EXPORTER") else {"OTEL_METRICS_EXPORTER": "none"}
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if chosen.lower() == "none":
        return Destination("disabled", "none (OTEL_TRACES_EXPORTER=none)")
    endpoint = next((env[name] for name in ENDPOINT_VARIABLES if env.get(name)), "")
    if chosen or endpoint:
        where = f"OTLP to {_without_credentials(endpoint)}" if endpoint and chosen in (
            "", "otlp") else f"OTEL_TRACES_EXPORTER={chosen}"
        return Destination("user", f"{where} (your OTEL_* settings)", environment=quiet)
    path = folder / "traces.json"
    return Destination("file", f"{path} (JSON Lines: one span per line)", path)


@contextlib.contextmanager
def exporting_to(destination: Destination) -> Iterator[None]:
    """Around building the runtime: the demo's exporter selection, undone afterwards."""
    saved = {name: os.environ.get(name) for name in destination.environment}
    os.environ.update(destination.environment)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class SpanCounter(SpanProcessor):
    """Counts the spans that ended (only sampled spans reach processors)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.count += 1


def count_spans(provider: TracerProvider | None) -> SpanCounter | None:
    if provider is None:
        return None
    counter = SpanCounter()
    provider.add_span_processor(counter)
    return counter


def jaeger_hint() -> list[str]:
    """How to see the traces in Jaeger (the README's command)."""
    return [f"docker run --rm -p 16686:16686 -p 4318:4318 {JAEGER_IMAGE}",
            "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 "
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf llm-shadow demo",
            "then open http://localhost:16686 (service llm-shadow; operation \"comparison\" "
            "holds the divergence of each compared request)"]


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = "***@" + host.rpartition("@")[2]
    return f"{scheme}{sep}{host}{slash}{path}"
