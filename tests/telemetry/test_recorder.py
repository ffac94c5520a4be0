"""The recording API: spans and metrics it produces, counters and gauges, and the
lifecycle (bounded close)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from proxy.config.telemetry import BatchSettings
from proxy.telemetry import names as n
from proxy.telemetry.batching import BoundedBatchSpanProcessor
from proxy.telemetry.lifecycle import Providers
from proxy.telemetry.recorder import Telemetry
from proxy.telemetry.records import Comparison, FlagObservation, ModelCall
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.telemetry.conftest import Memory


def call(**changes: object) -> ModelCall:
    now = time.monotonic()
    fields: dict[str, object] = {"role": "legacy", "operation": "chat", "provider": "openai",
                                 "request_model": "gpt-4o", "start": now, "end": now + 0.5}
    fields.update(changes)
    return ModelCall(**fields)  # type: ignore[arg-type]


def test_end_request_twice_records_once(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    trace = recorder.telemetry.start_request("POST", "/openai", "/openai/v1/x", "r")
    recorder.telemetry.end_request(trace, 200, "shadow", decision_reason="shadow_band")
    recorder.telemetry.end_request(trace, 500, "legacy")
    (span,) = recorder.finished()
    assert span.attributes["http.response.status_code"] == 200
    (point,) = recorder.points(n.METRIC_DECISIONS)
    assert point.value == 1
    assert dict(point.attributes) == {"llm_shadow.decision": "shadow",
                                      "llm_shadow.decision.reason": "shadow_band",
                                      "llm_shadow.route": "/openai"}


def test_unknown_method_is_other(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    trace = recorder.telemetry.start_request("BREW", None, "/x", "r")
    recorder.telemetry.end_request(trace, 405)
    (span,) = recorder.finished()
    assert span.name == "_OTHER" and span.kind is SpanKind.SERVER
    assert span.attributes["http.request.method"] == "_OTHER"


def test_model_call_without_parent_starts_a_trace(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    ref = recorder.telemetry.record_model_call(None, call(role="noise"))
    (span,) = recorder.finished()
    assert span.parent is None and format(span.context.trace_id, "032x") == ref.trace_id
    assert span.name == "chat gpt-4o" and span.kind is SpanKind.CLIENT


def test_model_call_without_model_is_named_by_operation(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    recorder.telemetry.record_model_call(None, call(request_model=None, operation="embeddings"))
    (span,) = recorder.finished()
    assert span.name == "embeddings"


def test_explicit_timestamps_are_kept(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    before = time.time_ns()
    recorder.telemetry.record_model_call(None, call(start=time.monotonic() - 2.0,
                                                    end=time.monotonic() - 1.0))
    (span,) = recorder.finished()
    assert span.end_time - span.start_time == pytest.approx(1e9, rel=1e-2)
    assert span.end_time < before


def test_cost_counter_by_role(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    recorder.telemetry.record_model_call(None, call(cost_usd=0.25, route="/openai"))
    recorder.telemetry.record_model_call(None, call(cost_usd=0.5, role="orchestrator",
                                                    request_model="qwen-max"))
    recorder.telemetry.record_model_call(None, call(cost_usd=None, role="noise"))
    by_role = {dict(p.attributes)["llm_shadow.role"]: p.value
               for p in recorder.points(n.METRIC_COST)}
    assert by_role == {"legacy": 0.25, "orchestrator": 0.5}


def test_tokens_by_type(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    recorder.telemetry.record_model_call(None, call(input_tokens=100, output_tokens=5))
    points = {dict(p.attributes)["gen_ai.token.type"]: p
              for p in recorder.points(n.GEN_AI_CLIENT_TOKEN_USAGE)}
    assert (points["input"].sum, points["output"].sum) == (100, 5)
    assert tuple(points["input"].explicit_bounds) == n.TOKEN_BUCKETS


def test_counters_and_flag_gauge(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    telemetry = recorder.telemetry
    telemetry.count_shadow_skipped("budget")
    telemetry.count_shadow_skipped("budget")
    telemetry.count_shadow_skipped("pool_full", "/openai")
    telemetry.count_divert_fallback("validation_failed")
    telemetry.observe_flags(lambda: FlagObservation(version=12, state="stale",
                                                    age_seconds=2.5))
    skipped = {dict(p.attributes)["llm_shadow.shadow.skip_reason"]: p.value
               for p in recorder.points(n.METRIC_SHADOW_SKIPPED)}
    assert skipped == {"budget": 2, "pool_full": 1}
    (fallback,) = recorder.points(n.METRIC_DIVERT_FALLBACKS)
    assert fallback.value == 1
    (version,) = recorder.points(n.METRIC_FLAGS_VERSION)
    assert (version.value, dict(version.attributes)) == (12, {"llm_shadow.flags.state": "stale"})
    (age,) = recorder.points(n.METRIC_FLAGS_AGE)
    assert age.value == 2.5


def test_comparison_metrics(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    recorder.telemetry.record_comparison(None, Comparison(route="/openai", score=0.0,
                                                          label="identical", above_noise=False))
    (span,) = recorder.finished()
    assert span.name == "comparison" and span.events[0].name == "gen_ai.evaluation.result"
    (count,) = recorder.points(n.METRIC_COMPARISONS)
    assert dict(count.attributes) == {"llm_shadow.route": "/openai",
                                      "llm_shadow.divergence.label": "identical",
                                      "llm_shadow.divergence.above_noise": False}


def test_metrics_over_otlp_use_the_convention_buckets(
        receiver: OtlpReceiver, build: Callable[..., Telemetry]) -> None:
    telemetry = build()
    telemetry.record_model_call(None, call(input_tokens=3, output_tokens=4, stream=True,
                                           time_to_first_chunk=0.1))
    telemetry.observe_flags(lambda: FlagObservation(version=3, state="ready"))
    telemetry.flush()
    duration = receiver.wait_for_metric("gen_ai.client.operation.duration")
    assert (duration.kind, duration.unit) == ("histogram", "s")
    assert tuple(duration.points[0].explicit_bounds) == n.DURATION_BUCKETS
    assert duration.points[0].attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o", "llm_shadow.role": "legacy"}
    tokens = receiver.wait_for_metric("gen_ai.client.token.usage")
    assert tokens.unit == "{token}"
    assert tuple(tokens.points[0].explicit_bounds) == tuple(float(b) for b in n.TOKEN_BUCKETS)
    first_chunk = receiver.wait_for_metric("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.points[0].sum == 0.1
    flags = receiver.wait_for_metric("llm_shadow.flags.version")
    assert flags.kind == "gauge" and flags.points[0].value == 3
    dropped = receiver.wait_for_metric("llm_shadow.telemetry.spans.dropped")
    assert {p.attributes["llm_shadow.telemetry.drop_reason"] for p in dropped.points} == {
        "queue_full", "export_failed"}


class HangingExporter(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait()
        return SpanExportResult.SUCCESS


def test_close_is_bounded_when_the_exporter_hangs() -> None:
    exporter = HangingExporter()
    processor = BoundedBatchSpanProcessor(exporter, BatchSettings(schedule_delay_seconds=3600))
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(shutdown_on_exit=False)
    telemetry = Telemetry(tracer_provider.get_tracer("t"), meter_provider.get_meter("t"),
                          providers=Providers(tracer_provider, meter_provider, (processor,)))
    telemetry.record_model_call(None, call())
    try:
        assert telemetry.close(timeout=0.2) is False
        assert telemetry.close() is True  # already closing: returns at once
        telemetry.record_model_call(None, call())  # harmless after close
    finally:
        exporter.release.set()


def test_aclose_from_the_event_loop(memory: Callable[..., Memory]) -> None:
    recorder = memory()
    assert asyncio.run(recorder.telemetry.aclose(timeout=5)) is True
