"""Fixtures for telemetry tests: a real OTLP/HTTP receiver for the session, the `OTEL_*`
environment pointing at it, and in-memory telemetry for the unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from proxy.config.telemetry import BatchSettings, TelemetrySection, read_otel_environment
from proxy.telemetry.batching import BoundedBatchSpanProcessor
from proxy.telemetry.lifecycle import Providers
from proxy.telemetry.recorder import Telemetry
from proxy.telemetry.setup import build_telemetry
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.servers import ThreadedServer

SENTINELS = (b"sk-TEST-SENTINEL", b"SENTINEL2", b"SENTINEL3", b"SENTINEL4", b"SENTINEL5")


@pytest.fixture(scope="session")
def otlp_server() -> Iterator[tuple[OtlpReceiver, ThreadedServer]]:
    receiver = OtlpReceiver()
    with ThreadedServer(receiver) as server:
        yield receiver, server


@pytest.fixture
def receiver(otlp_server: tuple[OtlpReceiver, ThreadedServer]) -> OtlpReceiver:
    otlp_server[0].reset()
    return otlp_server[0]


@pytest.fixture
def otlp_env(monkeypatch: pytest.MonkeyPatch,
             otlp_server: tuple[OtlpReceiver, ThreadedServer]) -> Callable[..., None]:
    """Point the standard variables at the receiver (OTLP/HTTP); extra ones as kwargs."""
    def apply(**extra: str) -> None:
        values = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                  "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_server[1].url,
                  "OTEL_METRIC_EXPORT_INTERVAL": "3600000", **extra}
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    apply()
    return apply


@pytest.fixture
def build(otlp_env: Callable[..., None]) -> Iterator[Callable[..., Telemetry]]:
    """Build `Telemetry` from the (patched) environment; closed after the test."""
    built: list[Telemetry] = []

    def make(section: TelemetrySection | None = None) -> Telemetry:
        telemetry = build_telemetry(section or TelemetrySection(), read_otel_environment())
        built.append(telemetry)
        return telemetry

    yield make
    for telemetry in built:
        telemetry.close(timeout=10)


class Memory:
    """Telemetry recording into memory: finished spans and collected metrics."""

    def __init__(self, **options: Any):
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        processor = BoundedBatchSpanProcessor(self.spans, BatchSettings())
        tracer_provider = TracerProvider(shutdown_on_exit=False)
        tracer_provider.add_span_processor(processor)
        meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        providers = Providers(tracer_provider, meter_provider, (processor,))
        self.telemetry = Telemetry(tracer_provider.get_tracer("test"),
                                   meter_provider.get_meter("test"), providers=providers,
                                   **options)

    def finished(self) -> list[Any]:
        self.telemetry.flush()
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        out = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        out.extend(metric.data.data_points)
        return out


@pytest.fixture
def memory() -> Iterator[Callable[..., Memory]]:
    made: list[Memory] = []

    def make(**options: Any) -> Memory:
        made.append(Memory(**options))
        return made[-1]

    yield make
    for item in made:
        item.telemetry.close(timeout=5)
