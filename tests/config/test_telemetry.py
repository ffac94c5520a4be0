"""`proxy.config.telemetry`: the `telemetry` section and the `OTEL_*` variables the
proxy interprets itself (table-driven)."""

from __future__ import annotations

import pytest

from proxy.config import ConfigError, parse_config
from proxy.config.telemetry import (
    OtelEnvironment,
    TelemetrySection,
    capture_mode,
    read_otel_environment,
)


def test_nothing_is_exported_until_an_exporter_or_an_endpoint_is_set() -> None:
    """A sidecar with no collector configured must not retry into localhost:4317."""
    otel = read_otel_environment({})
    assert otel == OtelEnvironment()
    assert otel.traces_exporters == () == otel.metrics_exporters and not otel.sdk_disabled


@pytest.mark.parametrize("env, traces, metrics", [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, ("otlp_grpc",), ("otlp_grpc",)),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces",
      "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ("otlp_http",), ()),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4317"}, (), ("otlp_grpc",)),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRICS_EXPORTER": "none"},
     ("otlp_grpc",), ()),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp_grpc",), ()),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, (), ()),
])
def test_an_endpoint_or_an_exporter_name_turns_a_signal_on(
        env: dict[str, str], traces: tuple[str, ...], metrics: tuple[str, ...]) -> None:
    otel = read_otel_environment(env)
    assert (otel.traces_exporters, otel.metrics_exporters) == (traces, metrics)


@pytest.mark.parametrize("value, expected", [
    ("none", ()), ("NONE", ()), ("console", ("console",)),
    ("otlp,console", ("otlp_grpc", "console")),
    ("otlp_proto_http", ("otlp_http",)), ("otlp, otlp_proto_grpc", ("otlp_grpc",)),
    ("console,none", ()),
])
def test_traces_exporter(value: str, expected: tuple[str, ...]) -> None:
    assert read_otel_environment({"OTEL_TRACES_EXPORTER": value}).traces_exporters == expected


def test_prometheus_is_a_metrics_exporter_only() -> None:
    otel = read_otel_environment({"OTEL_METRICS_EXPORTER": "prometheus"})
    assert otel.metrics_exporters == ("prometheus",)
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER"):
        read_otel_environment({"OTEL_TRACES_EXPORTER": "prometheus"})


@pytest.mark.parametrize("variable, value", [
    ("OTEL_TRACES_EXPORTER", "zipkin"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "ture"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
    ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
])
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        read_otel_environment({variable: value})
    assert value not in str(caught.value)


@pytest.mark.parametrize("env_value, config, expected", [
    ("", False, "none"), ("", True, "span"), ("false", True, "span"),
    ("EVENT_ONLY", False, "event"), ("EVENT_ONLY", True, "event"),
    ("span_and_event", False, "span_and_event"), ("True", False, "span"),
])
def test_capture_mode(env_value: str, config: bool, expected: str) -> None:
    otel = read_otel_environment(
        {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": env_value})
    assert capture_mode(TelemetrySection(capture_message_content=config), otel) == expected


def test_semconv_opt_in_is_one_of_a_list() -> None:
    assert read_otel_environment(
        {"OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup, gen_ai_latest_experimental"}
    ).semconv_latest
    assert not read_otel_environment({"OTEL_SEMCONV_STABILITY_OPT_IN": "http"}).semconv_latest


def test_section_in_config_json() -> None:
    config = parse_config({"telemetry": {"capture_request_headers": ["X-Request-Id"],
                                         "shutdown_timeout_seconds": 2}})
    assert config.telemetry.capture_request_headers == ("x-request-id",)
    with pytest.raises(ConfigError, match=r"telemetry\.capture_request_headers"):
        parse_config({"telemetry": {"capture_request_headers": ["x-api-key"]}})
    with pytest.raises(ConfigError, match=r"telemetry\.promethues"):
        parse_config({"telemetry": {"promethues": False}})
