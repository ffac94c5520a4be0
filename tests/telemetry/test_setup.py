"""Building telemetry from the standard `OTEL_*` environment: exporter choice, protocol,
service name, sampler, SDK switch, and the gRPC path to a real OTLP/gRPC receiver."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from proxy.config.load import ConfigError
from proxy.config.telemetry import TelemetrySection, read_otel_environment
from proxy.telemetry.batching import BoundedBatchSpanProcessor
from proxy.telemetry.recorder import Telemetry
from proxy.telemetry.records import ModelCall
from proxy.telemetry.setup import build_telemetry
from tests.fakes.otlp_receiver import OtlpGrpcReceiver, OtlpReceiver
from tests.fakes.servers import ThreadedServer


def request(telemetry: Telemetry) -> str:
    trace = telemetry.start_request("POST", "/openai", "/openai/v1/chat/completions", "r")
    now = time.monotonic()
    telemetry.record_model_call(trace, ModelCall(
        role="legacy", operation="chat", provider="openai", request_model="gpt-4o",
        start=now, end=now + 0.05, input_tokens=3, output_tokens=2))
    telemetry.end_request(trace, 200, "legacy")
    telemetry.flush()
    return trace.trace_id


def sampled(traceparent: bytes) -> bool:
    return bool(int(traceparent.rsplit(b"-", 1)[1], 16) & 0x01)


def test_service_name_defaults_to_llm_shadow(receiver: OtlpReceiver,
                                             build: Callable[..., Telemetry]) -> None:
    request(build())
    (span, *_) = receiver.wait_for_spans(2)
    assert span.resource["service.name"] == "llm-shadow"
    assert receiver.wait_for_metric("gen_ai.client.operation.duration").resource[
        "service.name"] == "llm-shadow"


@pytest.mark.parametrize("env, expected", [
    ({"OTEL_SERVICE_NAME": "billing-sidecar"}, "billing-sidecar"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment=staging"},
     "from-attrs"),
])
def test_service_name_from_environment(env: dict[str, str], expected: str,
                                       receiver: OtlpReceiver, otlp_env: Callable[..., None],
                                       build: Callable[..., Telemetry]) -> None:
    otlp_env(**env)
    request(build())
    span = receiver.wait_for_spans(1)[0]
    assert span.resource["service.name"] == expected


def test_resource_attributes_pass_through(receiver: OtlpReceiver,
                                          otlp_env: Callable[..., None],
                                          build: Callable[..., Telemetry]) -> None:
    otlp_env(OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging,k8s.pod.name=p-1")
    request(build())
    resource = receiver.wait_for_spans(1)[0].resource
    assert resource["deployment.environment"] == "staging"
    assert resource["k8s.pod.name"] == "p-1"
    assert resource["service.name"] == "llm-shadow"


def test_traces_exporter_none_still_propagates(receiver: OtlpReceiver,
                                               otlp_env: Callable[..., None],
                                               build: Callable[..., Telemetry]) -> None:
    otlp_env(OTEL_TRACES_EXPORTER="none")
    telemetry = build()
    trace = telemetry.start_request("POST", "/openai", "/openai/v1/x", "r")
    assert not sampled(dict(trace.outgoing_headers())[b"traceparent"])  # valid, unsampled
    telemetry.end_request(trace, 200, "legacy")
    telemetry.flush()
    # Metrics still flow (proves the flush reached the receiver), spans never do.
    receiver.wait_for_metric("llm_shadow.decisions")
    assert receiver.find_spans() == []


def test_traces_exporter_none_honours_a_sampled_caller(
        receiver: OtlpReceiver, otlp_env: Callable[..., None],
        build: Callable[..., Telemetry]) -> None:
    otlp_env(OTEL_TRACES_EXPORTER="none")
    telemetry = build()
    incoming = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    trace = telemetry.start_request("POST", "/openai", "/openai/v1/x", "r",
                                    headers=[(b"traceparent", incoming)])
    traceparent = dict(trace.outgoing_headers())[b"traceparent"]
    assert traceparent.startswith(b"00-0af7651916cd43dd8448eb211c80319c-")
    assert sampled(traceparent)
    telemetry.end_request(trace, 200)


def test_console_exporter(receiver: OtlpReceiver, otlp_env: Callable[..., None],
                          build: Callable[..., Telemetry],
                          capsys: pytest.CaptureFixture[str]) -> None:
    otlp_env(OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none")
    telemetry = build()
    trace_id = request(telemetry)
    telemetry.close()
    out = capsys.readouterr().out
    assert '"name": "POST /openai"' in out and '"name": "chat gpt-4o"' in out
    assert f'"trace_id": "0x{trace_id}"' in out
    assert receiver.find_spans() == []


def test_sampler_from_environment(receiver: OtlpReceiver, otlp_env: Callable[..., None],
                                  build: Callable[..., Telemetry]) -> None:
    otlp_env(OTEL_TRACES_SAMPLER="always_off")
    request(build())
    receiver.wait_for_metric("gen_ai.client.operation.duration")
    assert receiver.find_spans() == []


def test_sdk_disabled_records_nothing(receiver: OtlpReceiver, otlp_env: Callable[..., None],
                                      build: Callable[..., Telemetry]) -> None:
    otlp_env(OTEL_SDK_DISABLED="true")
    telemetry = build()
    trace_id = request(telemetry)
    assert trace_id == "" and telemetry.providers.registry is None
    assert telemetry.close() is True


def test_batch_settings_from_environment(otlp_env: Callable[..., None],
                                         build: Callable[..., Telemetry]) -> None:
    otlp_env(OTEL_BSP_MAX_QUEUE_SIZE="7", OTEL_BSP_SCHEDULE_DELAY="250",
             OTEL_BSP_MAX_EXPORT_BATCH_SIZE="3")
    (processor,) = build().providers.processors
    assert isinstance(processor, BoundedBatchSpanProcessor)
    assert (processor._max_queue, processor._delay, processor._max_batch) == (7, 0.25, 3)


def test_grpc_exporter_to_a_real_grpc_receiver(otlp_env: Callable[..., None],
                                               build: Callable[..., Telemetry]) -> None:
    with OtlpGrpcReceiver() as grpc_receiver:
        otlp_env(OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                 OTEL_EXPORTER_OTLP_ENDPOINT=grpc_receiver.endpoint,
                 OTEL_EXPORTER_OTLP_HEADERS="x-tenant=blue")
        telemetry = build()
        trace_id = request(telemetry)
        spans = grpc_receiver.wait_for_spans(2)
        assert {span.trace_id for span in spans} == {trace_id}
        assert grpc_receiver.wait_for_metric("gen_ai.client.token.usage").kind == "histogram"
        assert grpc_receiver.request_headers[0]["x-tenant"] == "blue"
        assert telemetry.close() is True  # while the receiver is still up


def test_otlp_without_protocol_is_grpc_like_the_python_sdk() -> None:
    otel = read_otel_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert otel.traces_exporters == ("otlp_grpc",) == otel.metrics_exporters


def test_per_signal_protocol_wins() -> None:
    otel = read_otel_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                                  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                                  "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert otel.traces_exporters == ("otlp_http",)
    assert otel.metrics_exporters == ("otlp_grpc",)


def test_unknown_exporter_stops_start_up_without_echoing_values() -> None:
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER") as caught:
        build_telemetry(TelemetrySection(),
                        read_otel_environment({"OTEL_TRACES_EXPORTER": "jaeger-SENTINEL"}))
    assert "SENTINEL" not in str(caught.value)


def test_http_json_protocol_is_refused() -> None:
    with pytest.raises(ConfigError, match="OTLP protocol"):
        read_otel_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_console_metrics_exporter(otlp_env: Callable[..., None],
                                  build: Callable[..., Telemetry],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    otlp_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="console")
    telemetry = build()
    request(telemetry)
    telemetry.close()  # before capsys closes the stream the exporter writes to
    printed = capsys.readouterr().out
    assert '"name": "gen_ai.client.operation.duration"' in printed


def test_per_signal_endpoint_and_gzip(receiver: OtlpReceiver, otlp_env: Callable[..., None],
                                      build: Callable[..., Telemetry],
                                      otlp_server: tuple[OtlpReceiver, ThreadedServer]) -> None:
    url = otlp_server[1].url
    otlp_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # closed: must not be used
             OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{url}/v1/traces",
             OTEL_METRICS_EXPORTER="none", OTEL_EXPORTER_OTLP_COMPRESSION="gzip")
    trace_id = request(build())
    spans = receiver.wait_for_spans(2)
    assert {span.trace_id for span in spans} == {trace_id}
    assert receiver.request_headers[0]["content-encoding"] == "gzip"
