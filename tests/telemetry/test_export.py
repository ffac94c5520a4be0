"""End to end over real OTLP: what a collector or Jaeger receives for legacy-only, shadow
and divert requests, recorded through the API exactly as the request path calls it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from proxy.config.telemetry import TelemetrySection
from proxy.telemetry import names as n
from proxy.telemetry.recorder import RequestTrace, Telemetry
from proxy.telemetry.records import Comparison, ModelCall
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan

CLIENT_HEADERS = [(b"content-type", b"application/json"),
                  (b"authorization", b"Bearer sk-TEST-SENTINEL"),
                  (b"api-key", b"SENTINEL2"), (b"x-api-key", b"SENTINEL3"),
                  (b"x-request-id", b"req-1")]
TARGET = "/openai/v1/chat/completions?api-version=2024-10-21&key=SENTINEL4"


def legacy_call(start: float, *, stream: bool = False, role: str = "legacy") -> ModelCall:
    return ModelCall(
        role=role, operation="chat", provider="openai", request_model="gpt-4o-mini",
        start=start, end=start + 0.8, route="/openai",
        response_model="gpt-4o-mini-2024-07-18", response_id="chatcmpl-legacy",
        server_address="api.openai.com", server_port=443, stream=stream,
        time_to_first_chunk=0.2 if stream else None, input_tokens=42, output_tokens=7,
        cache_read_input_tokens=10, reasoning_output_tokens=0, finish_reasons=("stop",),
        cost_usd=0.000021, input_messages='[{"role":"user","parts":[{"type":"text",'
        '"content":"PROMPT-TEXT"}]}]', output_messages='[{"role":"assistant","parts":'
        '[{"type":"text","content":"COMPLETION-TEXT"}],"finish_reason":"stop"}]')


def orchestrator(telemetry: Telemetry, trace: RequestTrace, start: float, role: str,
                 *, stream: bool = False, error: str | None = None) -> None:
    """The in-process pipeline: one workflow span, two model calls inside it."""
    workflow = telemetry.record_model_call(trace, ModelCall(
        role=role, operation=n.OPERATION_INVOKE_WORKFLOW, provider="llm_shadow",
        request_model="orchestrator", start=start, end=start + 1.2, route="/openai",
        in_process=True, stream=stream, error_type=error))  # cost only on the leaves
    for index, model in enumerate(("qwen-max", "deepseek-chat")):
        telemetry.record_model_call(workflow, ModelCall(
            role="orchestrator", operation="chat", provider="openai", request_model=model,
            start=start + 0.01 * index, end=start + 1.1, route="/openai",
            server_address=f"{model}.example", server_port=443, stream=stream,
            time_to_first_chunk=0.3 if stream else None, input_tokens=40 + index,
            output_tokens=9, cache_creation_input_tokens=5, finish_reasons=("stop",),
            cost_usd=0.00015, error_type=error))


def compare(telemetry: Telemetry, trace: RequestTrace) -> None:
    telemetry.record_comparison(trace, Comparison(
        route="/openai", score=0.18, label="minor", reason="text_edit",
        response_id="chatcmpl-orch", noise_floor=0.05, above_noise=True, latency_delta=0.4))


def one_trace(receiver: OtlpReceiver, telemetry: Telemetry, trace: RequestTrace,
              count: int) -> dict[str, list[ReceivedSpan]]:
    telemetry.flush()
    receiver.wait_for_spans(count)
    spans = receiver.trace(trace.trace_id)
    assert len(spans) == count, [span.name for span in spans]
    by_name: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    return by_name


def start(telemetry: Telemetry) -> RequestTrace:
    return telemetry.start_request("POST", "/openai", TARGET, "req-1", "127.0.0.1", 8787,
                                   headers=CLIENT_HEADERS)


def test_legacy_only_request(receiver: OtlpReceiver, build: Callable[..., Telemetry]) -> None:
    telemetry = build()
    trace = start(telemetry)
    telemetry.record_model_call(trace, legacy_call(time.monotonic()))
    telemetry.end_request(trace, 200, "legacy", decision_reason="outside_bands", bucket=4321,
                          answered_by="legacy", flag_version=7, flag_state="ready")
    spans = one_trace(receiver, telemetry, trace, 2)

    server = spans["POST /openai"][0]
    assert server.kind == "SERVER" and server.parent_span_id == ""
    assert server.attributes == {
        "http.request.method": "POST", "url.path": "/openai/v1/chat/completions",
        "url.query": "api-version=2024-10-21&key=REDACTED", "url.scheme": "http",
        "http.route": "/openai", "server.address": "127.0.0.1", "server.port": 8787,
        "llm_shadow.request.id": "req-1", "http.response.status_code": 200,
        "llm_shadow.decision": "legacy", "llm_shadow.decision.reason": "outside_bands",
        "llm_shadow.bucket": 4321, "llm_shadow.answered_by": "legacy",
        "llm_shadow.flags.version": 7, "llm_shadow.flags.state": "ready"}
    assert server.resource["service.name"] == "llm-shadow"
    assert server.scope == "llm_shadow"

    client = spans["chat gpt-4o-mini"][0]
    assert client.kind == "CLIENT" and client.parent_span_id == server.span_id
    assert client.attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-legacy", "server.address": "api.openai.com",
        "server.port": 443, "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 7, "gen_ai.usage.cache_read.input_tokens": 10,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.response.finish_reasons": ["stop"], "llm_shadow.role": "legacy",
        "llm_shadow.route": "/openai", "llm_shadow.cost.usd": 0.000021,
        "gen_ai.usage.cost.amount": 0.000021, "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local"}
    assert client.end_unix_nano - client.start_unix_nano == pytest.approx(0.8e9, rel=1e-3)


def test_shadow_request_is_one_trace(receiver: OtlpReceiver,
                                     build: Callable[..., Telemetry]) -> None:
    telemetry = build()
    trace = start(telemetry)
    now = time.monotonic()
    telemetry.record_model_call(trace, legacy_call(now, stream=True))
    telemetry.end_request(trace, 200, "shadow", decision_reason="shadow_band", bucket=9990,
                          answered_by="legacy")
    # The shadow finishes after the client has its answer (a background task).
    orchestrator(telemetry, trace, now + 0.01, "shadow", stream=True)
    compare(telemetry, trace)
    spans = one_trace(receiver, telemetry, trace, 6)

    server = spans["POST /openai"][0]
    legacy = spans["chat gpt-4o-mini"][0]
    assert legacy.attributes["gen_ai.request.stream"] is True
    assert legacy.attributes["gen_ai.response.time_to_first_chunk"] == 0.2
    workflow = spans["invoke_workflow orchestrator"][0]
    assert workflow.kind == "INTERNAL" and workflow.parent_span_id == server.span_id
    assert workflow.attributes["llm_shadow.role"] == "shadow"
    for model in ("qwen-max", "deepseek-chat"):
        call = spans[f"chat {model}"][0]
        assert call.kind == "CLIENT" and call.parent_span_id == workflow.span_id
        assert call.attributes["llm_shadow.role"] == "orchestrator"
        assert call.attributes["gen_ai.usage.cache_creation.input_tokens"] == 5
    comparison = spans["comparison"][0]
    assert comparison.parent_span_id == server.span_id
    assert comparison.attributes == {
        "llm_shadow.route": "/openai", "llm_shadow.divergence.score": 0.18,
        "llm_shadow.divergence.label": "minor", "llm_shadow.noise_floor": 0.05,
        "llm_shadow.divergence.above_noise": True, "llm_shadow.latency.delta": 0.4,
        "llm_shadow.divergence.reason": "text_edit", "gen_ai.response.id": "chatcmpl-orch"}
    assert comparison.event("gen_ai.evaluation.result").attributes == {
        "gen_ai.evaluation.name": "llm_shadow.divergence",
        "gen_ai.evaluation.score.value": 0.18, "gen_ai.evaluation.score.label": "minor",
        "gen_ai.evaluation.explanation": "text_edit",
        "gen_ai.response.id": "chatcmpl-orch"}


def test_outgoing_headers_name_the_server_span(receiver: OtlpReceiver,
                                               build: Callable[..., Telemetry]) -> None:
    telemetry = build()
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    trace = telemetry.start_request("POST", "/openai", "/openai/v1/chat/completions", "r",
                                    headers=[(b"traceparent", incoming.encode()),
                                             (b"tracestate", b"vendor=x")])
    telemetry.end_request(trace, 200)
    server = one_trace(receiver, telemetry, trace, 1)["POST /openai"][0]
    assert server.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert server.parent_span_id == "b7ad6b7169203331"
    assert trace.outgoing_headers() == [
        (b"traceparent", f"00-{server.trace_id}-{server.span_id}-01".encode()),
        (b"tracestate", b"vendor=x")]


def test_divert_with_fallback(receiver: OtlpReceiver, build: Callable[..., Telemetry]) -> None:
    telemetry = build()
    trace = start(telemetry)
    now = time.monotonic()
    orchestrator(telemetry, trace, now, "divert", error="timeout")
    telemetry.count_divert_fallback("orchestrator_timeout", "/openai")
    telemetry.record_model_call(trace, legacy_call(now + 1.3))
    telemetry.end_request(trace, 200, "divert", decision_reason="divert_band", bucket=12,
                          answered_by="legacy", fallback_reason="orchestrator_timeout")
    spans = one_trace(receiver, telemetry, trace, 5)

    server = spans["POST /openai"][0]
    assert server.attributes["llm_shadow.fallback.reason"] == "orchestrator_timeout"
    assert server.status == "UNSET"
    workflow = spans["invoke_workflow orchestrator"][0]
    assert workflow.status == "ERROR" and workflow.attributes["error.type"] == "timeout"
    assert workflow.attributes["llm_shadow.role"] == "divert"
    fallbacks = receiver.wait_for_metric(n.METRIC_DIVERT_FALLBACKS)
    assert fallbacks.points[0].attributes == {"llm_shadow.fallback.reason":
                                              "orchestrator_timeout",
                                              "llm_shadow.route": "/openai"}


def test_divert_streaming_with_legacy_as_shadow(receiver: OtlpReceiver,
                                                build: Callable[..., Telemetry]) -> None:
    telemetry = build()
    trace = start(telemetry)
    now = time.monotonic()
    orchestrator(telemetry, trace, now, "divert", stream=True)
    telemetry.end_request(trace, 200, "divert", answered_by="orchestrator")
    telemetry.record_model_call(trace, legacy_call(now, stream=True, role="shadow"))
    compare(telemetry, trace)
    spans = one_trace(receiver, telemetry, trace, 6)
    assert spans["chat gpt-4o-mini"][0].attributes["llm_shadow.role"] == "shadow"
    assert spans["chat qwen-max"][0].attributes["gen_ai.response.time_to_first_chunk"] == 0.3
    assert spans["POST /openai"][0].attributes["llm_shadow.answered_by"] == "orchestrator"


def test_server_error_and_aborted_stream(receiver: OtlpReceiver,
                                         build: Callable[..., Telemetry]) -> None:
    telemetry = build()
    failed = telemetry.start_request("POST", "/openai", "/openai/v1/chat/completions", "a")
    telemetry.end_request(failed, 502, "legacy", error_type="upstream_unreachable")
    aborted = telemetry.start_request("POST", "/openai", "/openai/v1/chat/completions", "b")
    telemetry.end_request(aborted, None, "legacy", error_type="upstream_aborted",
                          client_gone=False)
    rejected = telemetry.start_request("POST", "/openai", "/openai/v1/chat/completions", "c")
    telemetry.end_request(rejected, 413, None, error_type="request_too_large")
    first = one_trace(receiver, telemetry, failed, 1)["POST /openai"][0]
    assert first.status == "ERROR" and first.attributes["error.type"] == "upstream_unreachable"
    second = receiver.trace(aborted.trace_id)[0]
    assert second.status == "ERROR" and "http.response.status_code" not in second.attributes
    third = receiver.trace(rejected.trace_id)[0]
    assert third.status == "UNSET" and third.attributes["error.type"] == "request_too_large"


@pytest.mark.parametrize("setting, expected", [
    (None, None), ("false", None), ("NO_CONTENT", None), ("true", "span"),
    ("SPAN_ONLY", "span"), ("EVENT_ONLY", "event"), ("SPAN_AND_EVENT", "both")])
def test_message_content_only_when_opted_in(
        setting: str | None, expected: str | None, receiver: OtlpReceiver,
        build: Callable[..., Telemetry], otlp_env: Callable[..., None]) -> None:
    if setting is not None:
        otlp_env(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=setting)
    telemetry = build()
    trace = start(telemetry)
    telemetry.record_model_call(trace, legacy_call(time.monotonic()))
    telemetry.end_request(trace, 200)
    client = one_trace(receiver, telemetry, trace, 2)["chat gpt-4o-mini"][0]
    on_span = "gen_ai.input.messages" in client.attributes
    on_event = any(e.name == n.OPERATION_DETAILS_EVENT for e in client.events)
    assert (on_span, on_event) == {None: (False, False), "span": (True, False),
                                   "event": (False, True), "both": (True, True)}[expected]
    assert receiver.contains(b"PROMPT-TEXT") is (expected is not None)
    if on_span:
        assert "COMPLETION-TEXT" in client.attributes["gen_ai.output.messages"]


def test_config_switch_captures_content(receiver: OtlpReceiver,
                                        build: Callable[..., Telemetry]) -> None:
    telemetry = build(TelemetrySection(capture_message_content=True))
    trace = start(telemetry)
    telemetry.record_model_call(trace, legacy_call(time.monotonic()))
    telemetry.end_request(trace, 200)
    client = one_trace(receiver, telemetry, trace, 2)["chat gpt-4o-mini"][0]
    assert "PROMPT-TEXT" in client.attributes["gen_ai.input.messages"]


def test_latest_experimental_names(receiver: OtlpReceiver, build: Callable[..., Telemetry],
                                   otlp_env: Callable[..., None]) -> None:
    otlp_env(OTEL_SEMCONV_STABILITY_OPT_IN="http,gen_ai_latest_experimental")
    telemetry = build()
    trace = start(telemetry)
    orchestrator(telemetry, trace, time.monotonic(), "shadow")
    telemetry.end_request(trace, 200)
    spans = one_trace(receiver, telemetry, trace, 4)
    attributes = spans["chat qwen-max"][0].attributes
    assert attributes["gen_ai.usage.cache_write.input_tokens"] == 5
    assert "gen_ai.usage.cache_creation.input_tokens" not in attributes
    assert receiver.wait_for_metric("gen_ai.client.inference.duration").kind == "histogram"
