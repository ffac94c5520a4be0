"""Building a `Telemetry` from the `telemetry` section and the `OTEL_*` environment.

Layer: composition of the telemetry adapters (called once, from the runtime's lifespan).

What reads the environment: `proxy.config.telemetry.read_otel_environment` (exporter
choice, protocol, SDK switch, batch bounds, content capture, semconv version) and the
SDK itself (resource, sampler, exporter endpoints/headers/TLS, metric interval). Nothing
here reads `os.environ` directly.

What is exported, and why nothing is by default, is in `proxy.config.telemetry`; the
choice is logged once at start-up (INFO), so an operator can see where spans go.

The providers are not installed as the global ones: the proxy passes its `Telemetry`
to whoever records, so a test can build several side by side, and a library that
happens to use the global API cannot write into the proxy's traces by accident.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from prometheus_client import CollectorRegistry

from proxy.config.telemetry import OtelEnvironment, TelemetrySection, capture_mode
from proxy.config.telemetry import read_otel_environment as read_otel_environment
from proxy.telemetry import names
from proxy.telemetry.batching import BoundedBatchSpanProcessor
from proxy.telemetry.exporters import (
    file_span_exporter,
    guard_quoting_loggers,
    metric_reader,
    quiet_exporter_loggers,
    span_exporter,
)
from proxy.telemetry.lifecycle import Providers
from proxy.telemetry.recorder import Telemetry

DEFAULT_SERVICE_NAME = "llm-shadow"
SCOPE = "llm_shadow"

log = logging.getLogger("llm_shadow.telemetry")


def build_telemetry(section: TelemetrySection | None = None,
                    otel: OtelEnvironment | None = None, *,
                    base_dir: Path | None = None) -> Telemetry:
    """A ready `Telemetry`; raises `ConfigError` for an unusable `OTEL_*` setting or an
    unwritable `telemetry.traces_file` (relative to `base_dir`, else the working folder)."""
    section = section or TelemetrySection()
    otel = otel or read_otel_environment()
    guard_quoting_loggers()
    quiet_exporter_loggers()
    if otel.sdk_disabled:
        log.info("telemetry: off (OTEL_SDK_DISABLED=true)")
        return _telemetry(trace_api.NoOpTracer(), metrics_api.NoOpMeter(SCOPE), section, otel,
                          Providers(), tracing=False)
    traces_file = traces_path(section, base_dir)
    log.info("telemetry: %s", describe(section, otel, traces_file))
    providers = build_providers(section, otel, traces_file)
    tracer_provider, meter_provider = providers.tracer_provider, providers.meter_provider
    assert tracer_provider is not None and meter_provider is not None
    version = service_version()
    return _telemetry(tracer_provider.get_tracer(SCOPE, version),
                      meter_provider.get_meter(SCOPE, version), section, otel, providers)


def _telemetry(tracer: trace_api.Tracer, meter: metrics_api.Meter, section: TelemetrySection,
               otel: OtelEnvironment, providers: Providers, tracing: bool = True) -> Telemetry:
    return Telemetry(
        tracer, meter,
        semconv=names.semconv(otel.semconv_latest),
        capture=capture_mode(section, otel),
        header_allow=section.capture_request_headers,
        trust_incoming=section.trust_incoming_trace_context,
        tracing=tracing,
        providers=providers,
        shutdown_timeout=section.shutdown_timeout_seconds,
    )


def traces_path(section: TelemetrySection, base_dir: Path | None) -> Path | None:
    if section.traces_file is None:
        return None
    path = Path(section.traces_file)
    return path if path.is_absolute() or base_dir is None else base_dir / path


def describe(section: TelemetrySection, otel: OtelEnvironment,
             traces_file: Path | None) -> str:
    """Where spans and metrics go, in one line (no endpoint: it may carry credentials)."""
    traces = [*otel.traces_exporters, *([f"file {traces_file}"] if traces_file else [])]
    metrics = [*(name for name in otel.metrics_exporters if name != "prometheus"),
               *(["/metrics on the admin port"] if section.prometheus
                 or "prometheus" in otel.metrics_exporters else [])]
    spans = ("spans to " + ", ".join(traces)) if traces else (
        "spans not exported (set OTEL_EXPORTER_OTLP_ENDPOINT or telemetry.traces_file)")
    return f"{spans}; metrics {'to ' + ', '.join(metrics) if metrics else 'not exported'}"


def build_providers(section: TelemetrySection, otel: OtelEnvironment,
                    traces_file: Path | None = None) -> Providers:
    # Exporters first: they are what may fail, before any thread is started.
    span_exporters = [span_exporter(name) for name in otel.traces_exporters]
    readers: list[MetricReader] = [metric_reader(name) for name in otel.metrics_exporters
                                   if name != "prometheus"]
    if traces_file is not None:  # last: nothing after it can fail and leave it open
        span_exporters.append(file_span_exporter(traces_file))
    registry = None
    if section.prometheus or "prometheus" in otel.metrics_exporters:
        registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=registry))
    processors = tuple(BoundedBatchSpanProcessor(exporter, otel.batch)
                       for exporter in span_exporters)
    resource = build_resource()
    # With no span exporter, spans are still created (non-recording, ids only) so that
    # trace context keeps flowing to the orchestrator; a sampled caller is honoured.
    sampler = None if processors else ParentBased(ALWAYS_OFF)
    tracer_provider = TracerProvider(sampler=sampler, resource=resource,
                                     shutdown_on_exit=False)
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(metric_readers=readers, resource=resource,
                                   shutdown_on_exit=False)
    return Providers(tracer_provider, meter_provider, processors, registry)


def build_resource() -> Resource:
    """The SDK's resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, SDK attributes),
    with `service.name` defaulting to `llm-shadow` instead of `unknown_service`."""
    resource = Resource.create({SERVICE_VERSION: service_version()})
    if not OTELResourceDetector().detect().attributes.get(SERVICE_NAME):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def service_version() -> str:
    try:
        return metadata.version("llm-shadow")
    except metadata.PackageNotFoundError:
        return "0+unknown"
