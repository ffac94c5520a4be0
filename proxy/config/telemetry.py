"""The `telemetry` section, and the standard `OTEL_*` variables the SDK leaves to us.

Layer: pure core (plus one environment read, like the rest of `proxy.config`).

Who reads which variable, so that nothing is read twice or in two ways:

- The OpenTelemetry SDK and its exporters read their own variables when the telemetry
  adapter builds them: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (resource),
  `OTEL_TRACES_SAMPLER`/`_ARG` (sampler), `OTEL_EXPORTER_OTLP_*` endpoints, headers,
  timeouts, compression and certificates (exporters), `OTEL_METRIC_EXPORT_INTERVAL`,
  `OTEL_SPAN_*_LIMIT` and `OTEL_ATTRIBUTE_*_LIMIT`. Users get exactly the SDK's behaviour.
- This module reads what only an SDK *auto-configuration* would read, because the proxy
  builds its own (non-global) providers: `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`,
  `OTEL_METRICS_EXPORTER`, `OTEL_EXPORTER_OTLP_PROTOCOL` (and the per-signal
  `..._TRACES_PROTOCOL`/`..._METRICS_PROTOCOL`), the `OTEL_BSP_*` batch settings (the
  proxy's batch processor counts its drops, the SDK's does not), the GenAI content
  capture switch `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` and
  `OTEL_SEMCONV_STABILITY_OPT_IN`.

When nothing is exported, on purpose: the specification makes `otlp` the default
exporter, towards `localhost:4317`. A sidecar started with no collector in mind would then
retry into the void, log a warning every few seconds and wait at shutdown for exports
that cannot succeed. So a signal is exported only when the operator asked for it: its
`OTEL_{TRACES,METRICS}_EXPORTER` names an exporter, or an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, or the signal's own `..._TRACES_ENDPOINT` /
`..._METRICS_ENDPOINT`). Then the standard rules apply unchanged: `otlp` without a
protocol means gRPC (the Python SDK's choice; set `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`
for port 4318), `none` turns a signal off. Spans can also go to a file
(`telemetry.traces_file`, JSON Lines), with or without an OTLP exporter; Prometheus
`/metrics` on the admin port needs no variable at all. Errors name the variable but never
echo its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NoReturn

from pydantic import Field, field_validator

from proxy.config.base import Section
from proxy.telemetry.redaction import is_sensitive_name

Exporter = Literal["otlp_grpc", "otlp_http", "console", "prometheus"]
CaptureMode = Literal["none", "span", "event", "span_and_event"]

OTLP_PROTOCOLS: dict[str, Exporter] = {"grpc": "otlp_grpc", "http/protobuf": "otlp_http"}
TRACE_EXPORTERS = frozenset({"otlp", "otlp_proto_grpc", "otlp_proto_http", "console"})
METRIC_EXPORTERS = TRACE_EXPORTERS | {"prometheus"}
CAPTURE_VALUES: dict[str, CaptureMode] = {
    "": "none", "false": "none", "no_content": "none",
    "true": "span", "span_only": "span",
    "event_only": "event", "span_and_event": "span_and_event",
}
LATEST_EXPERIMENTAL = "gen_ai_latest_experimental"


class TelemetrySection(Section):
    """What the `OTEL_*` variables do not cover."""

    # Record prompts and completions on model-call spans (also enabled by
    # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT). Off by default: they may hold PII.
    capture_message_content: bool = False
    # Request headers recorded on the SERVER span as `http.request.header.<name>`; an
    # allow-list, and credential-like names are refused outright.
    capture_request_headers: tuple[str, ...] = ()
    # Continue the caller's trace when the legacy service sends a W3C `traceparent`.
    trust_incoming_trace_context: bool = True
    # Serve `GET /metrics` (Prometheus text format) on the admin port.
    prometheus: bool = True
    # Bound on flushing spans and metrics at shutdown.
    shutdown_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Also write every span to this file, one JSON object per line (relative to the
    # configuration file's folder); `LLM_SHADOW_TRACES_FILE`.
    traces_file: str | None = Field(default=None, min_length=1)

    @field_validator("capture_request_headers")
    @classmethod
    def _no_credentials(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        lowered = tuple(name.strip().lower() for name in names)
        for name in lowered:
            if not name or is_sensitive_name(name):
                raise ValueError(f"header {name!r} may carry a credential and is never recorded")
        return lowered


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """The span batch processor's bounds (`OTEL_BSP_*`, same defaults as the SDK)."""

    max_queue_size: int = 2048
    schedule_delay_seconds: float = 5.0
    max_export_batch_size: int = 512


@dataclass(frozen=True, slots=True)
class OtelEnvironment:
    """The standard variables the proxy interprets itself, validated once."""

    sdk_disabled: bool = False
    traces_exporters: tuple[Exporter, ...] = ()
    metrics_exporters: tuple[Exporter, ...] = ()
    capture_content: CaptureMode = "none"
    semconv_latest: bool = False
    batch: BatchSettings = BatchSettings()


def read_otel_environment(env: Mapping[str, str] | None = None) -> OtelEnvironment:
    """Interpret the `OTEL_*` variables listed in the module docstring.

    Raises `ConfigError` naming the variable when a value is not understood: a typo in
    an exporter name should stop start-up, not silently drop every trace.
    """
    env = os.environ if env is None else env

    def get(name: str) -> str:
        return env.get(name, "").strip()

    for variable in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                     "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"):
        if get(variable) and get(variable) not in OTLP_PROTOCOLS:  # a typo fails even unused
            _fail(f"{variable}: OTLP protocol must be one of {', '.join(OTLP_PROTOCOLS)}")

    def protocol(signal: str) -> str:
        """The signal's OTLP protocol (validated above), or "" for the default."""
        return get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or \
            get("OTEL_EXPORTER_OTLP_PROTOCOL")

    def chosen(signal: str) -> str:
        """The signal's exporter list; `otlp` when only an endpoint is set; else none."""
        named = get(f"OTEL_{signal}_EXPORTER")
        if named:
            return named
        endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT") or get(
            f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        return "otlp" if endpoint else "none"

    return OtelEnvironment(
        sdk_disabled=get("OTEL_SDK_DISABLED").lower() == "true",
        traces_exporters=_exporters("OTEL_TRACES_EXPORTER", chosen("TRACES"),
                                    TRACE_EXPORTERS, protocol("TRACES")),
        metrics_exporters=_exporters("OTEL_METRICS_EXPORTER", chosen("METRICS"),
                                     METRIC_EXPORTERS, protocol("METRICS")),
        capture_content=_capture(get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")),
        semconv_latest=LATEST_EXPERIMENTAL in _tokens(get("OTEL_SEMCONV_STABILITY_OPT_IN")),
        batch=BatchSettings(
            max_queue_size=_positive_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
            schedule_delay_seconds=_positive_int(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000,
            max_export_batch_size=_positive_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        ),
    )


def capture_mode(section: TelemetrySection, otel: OtelEnvironment) -> CaptureMode:
    """Either opt-in turns capture on; the variable also says where (span or event)."""
    if otel.capture_content == "none" and section.capture_message_content:
        return "span"
    return otel.capture_content


def _exporters(variable: str, value: str, known: frozenset[str],
               protocol: str) -> tuple[Exporter, ...]:
    names = _tokens(value)
    if "none" in names:
        return ()
    out: list[Exporter] = []
    for name in names:
        if name not in known:
            _fail(f"{variable}: unsupported exporter (supported: "
                  f"{', '.join(sorted(known | {'none'}))})")
        exporter = _resolve(name, protocol)
        if exporter not in out:
            out.append(exporter)
    return tuple(out)


def _resolve(name: str, protocol: str) -> Exporter:
    """The exporter for `name`; `protocol` is a valid OTLP protocol or "" (gRPC)."""
    if name == "otlp":
        return OTLP_PROTOCOLS[protocol] if protocol else "otlp_grpc"
    if name == "otlp_proto_grpc":
        return "otlp_grpc"
    if name == "otlp_proto_http":
        return "otlp_http"
    return "console" if name == "console" else "prometheus"


def _capture(value: str) -> CaptureMode:
    mode = CAPTURE_VALUES.get(value.lower())
    if mode is None:
        _fail("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: expected true, false, "
              "NO_CONTENT, SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT")
    return mode


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        _fail(f"{name}: expected a positive integer")
    return value


def _tokens(value: str) -> list[str]:
    return [token.strip().lower() for token in value.split(",") if token.strip()]


def _fail(message: str) -> NoReturn:
    from proxy.config.load import ConfigError  # load imports this module (via model)

    raise ConfigError(f"environment: {message}")
