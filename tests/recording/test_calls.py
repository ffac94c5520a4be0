"""How the proxy's own records become telemetry and report records (pure): usage from a
captured answer, the legacy call's attributes, the orchestrator's workflow and model
calls, and what an external orchestrator's answer costs."""

from __future__ import annotations

import gzip
import time
from typing import Any

import orjson
import pytest

from proxy.comparison import Comparison
from proxy.config.pricing import Price
from proxy.exchange import Captured
from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.result import CallRecord, OrchestratorAnswer
from proxy.orchestrator.target import TargetCall
from proxy.recording.calls import (
    comparison_record,
    endpoint_cost,
    legacy_call,
    orchestrator_calls,
    orchestrator_costs,
    price,
    usage_of,
)
from proxy.report.entry import RoleCost
from proxy.routing import Destination
from proxy.usage.meter import UsageRecord
from proxy.usage.prices import PriceTable
from tests.fakes.records import destination
from tests.usage.streams import DONE, chat_usage, chunk

JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream")]
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
PRICES = PriceTable.from_sections({"gpt-4o-mini": Price(input_per_1m=1.0, output_per_1m=2.0)})


def answer_body(content: str = "Hello there", *, usage: Any = None,
                finish: str = "stop", **message: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-9", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content,
                                             **message}, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def captured(body: bytes, *, status: int = 200, headers: list[tuple[bytes, bytes]] = JSON,
             truncated: bool = False, completed: bool = True,
             first_byte: float | None = 10.25) -> Captured:
    return Captured(status, headers, body, truncated, 10.0, first_byte, 11.0,
                    completed=completed)


STREAM = chunk("Hel") + chunk("lo") + chunk(finish="stop") + \
    chunk(choices=False, usage=chat_usage(7, 3)) + DONE


# --- usage_of ---------------------------------------------------------------------

def test_usage_of_a_path_the_proxy_does_not_read_is_none() -> None:
    assert usage_of(None, captured(answer_body()), REQUEST) is None


def test_usage_as_reported_in_a_json_answer() -> None:
    usage = usage_of("openai_chat", captured(answer_body(usage=chat_usage(12, 4, cached=2))),
                     REQUEST)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (12, 4, 2)
    assert not usage.estimated and not usage.truncated
    assert usage.response_model == "gpt-4o-mini-2024-07-18"
    assert usage.finish_reasons == ("stop",)


def test_usage_of_a_compressed_answer() -> None:
    body = gzip.compress(answer_body(usage=chat_usage(5, 6)))
    usage = usage_of("openai_chat", captured(
        body, headers=[*JSON, (b"content-encoding", b"gzip")]), REQUEST)
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (5, 6)


def test_missing_usage_is_estimated_and_marked_so() -> None:
    usage = usage_of("openai_chat", captured(answer_body()), REQUEST)
    assert usage is not None and usage.estimated
    assert usage.input_tokens and usage.output_tokens


@pytest.mark.parametrize("status", [400, 429, 500, 502, 504])
def test_an_error_answer_consumed_nothing(status: int) -> None:
    body = b'{"error": {"message": "slow down", "type": "rate_limit"}}'
    assert usage_of("openai_chat", captured(body, status=status), REQUEST) == \
        UsageRecord(input_tokens=0, output_tokens=0)


def test_a_stream_is_folded_event_by_event() -> None:
    usage = usage_of("openai_chat", captured(STREAM, headers=SSE), REQUEST)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (7, 3)
    assert not usage.estimated and not usage.truncated
    assert usage.finish_reasons == ("stop",)


@pytest.mark.parametrize("cut", [{"truncated": True}, {"completed": False}],
                         ids=["copy capped", "stream aborted"])
def test_a_cut_stream_is_marked_truncated(cut: dict[str, bool]) -> None:
    body = chunk("Hel") + chunk("lo")
    usage = usage_of("openai_chat", captured(body, headers=SSE, **cut), REQUEST)
    assert usage is not None and usage.truncated and usage.estimated


def test_a_capped_json_answer_is_marked_truncated() -> None:
    body = answer_body(usage=chat_usage(5, 6))[:40]
    usage = usage_of("openai_chat", captured(body, truncated=True), REQUEST)
    assert usage is not None and usage.truncated


# --- legacy_call ------------------------------------------------------------------

def where(path: bytes = b"/openai/v1/chat/completions",
          upstream: str = "https://api.example.test", **route: Any) -> Destination:
    return destination(path, upstream=upstream, **route)


def test_a_legacy_calls_attributes() -> None:
    answer = captured(answer_body(usage=chat_usage(12, 4)))
    usage = usage_of("openai_chat", answer, REQUEST)
    call = legacy_call(role="legacy", destination=where(), captured=answer, payload=REQUEST,
                       usage=usage, cost_usd=0.5)
    assert (call.role, call.operation, call.provider) == ("legacy", "chat", "openai")
    assert (call.request_model, call.response_model) == ("gpt-4o-mini",
                                                         "gpt-4o-mini-2024-07-18")
    assert (call.server_address, call.server_port) == ("api.example.test", 443)
    assert (call.start, call.end, call.route) == (10.0, 11.0, "/openai")
    assert (call.input_tokens, call.output_tokens, call.cost_usd) == (12, 4, 0.5)
    assert call.response_id == "chatcmpl-9"
    assert not call.stream and call.time_to_first_chunk is None
    assert call.error_type is None and not call.usage_estimated
    assert call.input_messages is None and call.output_messages is None


@pytest.mark.parametrize(("upstream", "host", "port"), [
    ("http://127.0.0.1:8080", "127.0.0.1", 8080),
    ("http://[::1]:9000/v1", "::1", 9000),  # the host without brackets
    ("http://localhost", "localhost", 80),
])
def test_server_address_and_port_come_from_the_destination(upstream: str, host: str,
                                                           port: int) -> None:
    call = legacy_call(role="legacy", destination=where(upstream=upstream),
                       captured=captured(b"{}"), payload=REQUEST, usage=None, cost_usd=None)
    assert (call.server_address, call.server_port) == (host, port)


def test_embeddings_are_their_own_operation() -> None:
    call = legacy_call(role="legacy", destination=where(b"/openai/v1/embeddings"),
                       captured=captured(b"{}"), payload={"model": "e"}, usage=None,
                       cost_usd=None)
    assert call.operation == "embeddings"


def test_an_anthropic_route_is_its_provider() -> None:
    call = legacy_call(role="legacy",
                       destination=where(b"/anthropic/v1/messages", provider="anthropic"),
                       captured=captured(b"{}"), payload={"model": "claude"}, usage=None,
                       cost_usd=None)
    assert (call.provider, call.operation) == ("anthropic", "chat")


def test_a_stream_has_its_time_to_first_chunk() -> None:
    payload = {**REQUEST, "stream": True}
    answer = captured(STREAM, headers=SSE)
    call = legacy_call(role="legacy", destination=where(), captured=answer, payload=payload,
                       usage=usage_of("openai_chat", answer, payload), cost_usd=None)
    assert call.stream and call.time_to_first_chunk == 0.25
    assert not call.stream_truncated


def test_a_cut_stream_is_flagged() -> None:
    payload = {**REQUEST, "stream": True}
    answer = captured(chunk("Hel"), headers=SSE, completed=False)
    call = legacy_call(role="legacy", destination=where(), captured=answer, payload=payload,
                       usage=usage_of("openai_chat", answer, payload), cost_usd=None)
    assert call.stream_truncated and call.usage_estimated


@pytest.mark.parametrize(("status", "given", "error_type"), [
    (200, None, None),
    (429, None, "429"),  # an upstream error status is its own error type
    (502, "upstream_unreachable", "upstream_unreachable"),  # the proxy's code wins
    (200, "upstream_timeout", "upstream_timeout"),  # aborted mid-stream after a 200
])
def test_error_type(status: int, given: str | None, error_type: str | None) -> None:
    call = legacy_call(role="legacy", destination=where(), captured=captured(b"{}",
                                                                            status=status),
                       payload=REQUEST, usage=None, cost_usd=None, error_type=given)
    assert call.error_type == error_type


def test_a_stream_error_event_is_the_error_type() -> None:
    body = b'data: {"error": {"type": "server_error", "message": "boom"}}\n\n'
    answer = captured(body, headers=SSE)
    usage = usage_of("openai_chat", answer, REQUEST)
    call = legacy_call(role="legacy", destination=where(), captured=answer, payload=REQUEST,
                       usage=usage, cost_usd=None)
    assert usage is not None and call.error_type == usage.error_type is not None


def test_content_only_when_asked() -> None:
    answer = captured(answer_body("Hi!", finish="tool_calls"))
    payload = {"model": "m", "messages": [{"role": "system", "content": "Be brief"},
                                          {"role": "user", "content": "Say hi"}]}
    kept = legacy_call(role="legacy", destination=where(), captured=answer, payload=payload,
                       usage=None, cost_usd=None, content=True)
    assert orjson.loads(kept.input_messages or "") == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}]
    assert orjson.loads(kept.system_instructions or "") == [
        {"type": "text", "content": "Be brief"}]
    output = orjson.loads(kept.output_messages or "")
    assert output == [{"role": "assistant", "parts": [{"type": "text", "content": "Hi!"}],
                       "finish_reason": "tool_call"}]
    plain = legacy_call(role="legacy", destination=where(), captured=answer, payload=payload,
                        usage=None, cost_usd=None)
    assert (plain.input_messages, plain.output_messages, plain.system_instructions) == \
        (None, None, None)


def test_an_error_answer_records_no_completion() -> None:
    call = legacy_call(role="legacy", destination=where(), captured=captured(b"{}",
                                                                            status=500),
                       payload=REQUEST, usage=None, cost_usd=None, content=True)
    assert call.input_messages is not None and call.output_messages is None


def test_only_calls_to_a_known_api_are_recorded() -> None:
    with pytest.raises(AssertionError):
        legacy_call(role="legacy", destination=where(b"/openai/v1/models"),
                    captured=captured(b"{}"), payload=None, usage=None, cost_usd=None)


# --- the orchestrator's calls -----------------------------------------------------

def record(model: str, **fields: Any) -> CallRecord:
    now = time.time()
    values: dict[str, Any] = {
        "model": model, "provider": "OpenAI", "api": "openai_chat", "host": "10.0.0.5",
        "started_at": now - 2.0, "ended_at": now - 1.5, "outcome": "valid",
        "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.01, "port": 8443,
        "finish_reason": "stop", "response_model": model + "-2024", "response_id": "r-" + model}
    return CallRecord(**{**values, **fields})


def orchestrated(*calls: CallRecord, contributing: tuple[str, ...] = ("a", "b")) -> \
        OrchestratorAnswer:
    return OrchestratorAnswer(status="ok", reason="", request_id="r1",
                              task_type=TaskType.SIMPLE_QUERY, contributing_models=contributing,
                              calls=calls)


def call_for(role: str = "shadow", capture: bool = False) -> TargetCall:
    return TargetCall(role=role, destination=where(), method="POST",  # type: ignore[arg-type]
                      body=orjson.dumps(REQUEST), payload=REQUEST, request_id="r1",
                      client_headers=[], capture_content=capture)


def test_the_workflow_and_its_model_calls() -> None:
    answer = orchestrated(record("a", api_model="gpt-a-api"), record("b", provider="Anthropic"))
    workflow, calls = orchestrator_calls(call_for("divert"), answer, start=1.0, end=3.0,
                                         failure=None)
    assert (workflow.role, workflow.operation, workflow.provider) == \
        ("divert", "invoke_workflow", "llm_shadow")
    assert (workflow.request_model, workflow.response_model) == ("orchestrator", "a,b")
    assert (workflow.start, workflow.end, workflow.route) == (1.0, 3.0, "/openai")
    assert workflow.in_process and workflow.cost_usd is None and workflow.error_type is None
    assert [c.request_model for c in calls] == ["gpt-a-api", "b"]  # the id sent, if any
    assert [c.provider for c in calls] == ["openai", "anthropic"]
    first = calls[0]
    assert first.role == "orchestrator" and first.route == "/openai"
    assert (first.server_address, first.server_port) == ("10.0.0.5", 8443)
    assert (first.input_tokens, first.output_tokens, first.cost_usd) == (10, 5, 0.01)
    assert first.finish_reasons == ("stop",) and first.response_id == "r-a"
    assert first.input_messages is None and first.output_messages is None


def test_model_call_times_move_to_the_monotonic_clock() -> None:
    _, calls = orchestrator_calls(call_for(), orchestrated(record("a")), start=0.0, end=1.0,
                                  failure=None)
    assert calls[0].end - calls[0].start == pytest.approx(0.5, abs=1e-3)
    assert abs(calls[0].start - (time.monotonic() - 2.0)) < 5.0


def test_a_failed_orchestrator_has_a_workflow_and_no_children() -> None:
    workflow, calls = orchestrator_calls(call_for(), None, start=1.0, end=2.0,
                                         failure="failed:no valid answer: a: error")
    assert calls == []
    assert workflow.error_type == "failed"  # the code; the detail is on the SERVER span
    assert workflow.response_model is None


def test_the_failed_models_of_an_answer_are_still_its_children() -> None:
    answer = orchestrated(record("a", outcome="error", error_type="http_503"),
                          contributing=())
    workflow, calls = orchestrator_calls(call_for(), answer, start=1.0, end=2.0,
                                         failure="low_confidence")
    assert workflow.error_type == "low_confidence"
    assert [c.error_type for c in calls] == ["http_503"]


def test_with_content_capture_each_model_call_carries_what_it_was_asked() -> None:
    answer = orchestrated(record("a", output_text="Hello"), record("b"))
    _, calls = orchestrator_calls(call_for(capture=True), answer, start=1.0, end=2.0,
                                  failure=None)
    asked = [{"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}]
    assert orjson.loads(calls[0].input_messages or "") == asked
    assert orjson.loads(calls[0].output_messages or "") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]}]
    # A model whose answer was not kept records neither side.
    assert calls[1].input_messages is None and calls[1].output_messages is None


def test_orchestrator_costs_are_one_per_model_call() -> None:
    answer = orchestrated(record("a", cost_usd=0.25), record("b", cost_usd=0.5))
    assert orchestrator_costs(answer) == (RoleCost("orchestrator", 0.25),
                                          RoleCost("orchestrator", 0.5))
    assert orchestrator_costs(None) == ()


# --- prices ---------------------------------------------------------------------------

def test_price_by_the_model_that_answered() -> None:
    usage = UsageRecord(input_tokens=1_000_000, output_tokens=1_000_000,
                        response_model="gpt-4o-mini-2024-07-18")
    assert price(PRICES, usage, {"model": "alias"}) == pytest.approx(3.0)
    assert price(PRICES, None, REQUEST) is None


def test_an_external_orchestrators_answer_is_priced_from_its_usage() -> None:
    answer = captured(answer_body(usage={"prompt_tokens": 1_000_000,
                                         "completion_tokens": 500_000}))
    assert endpoint_cost(PRICES, "openai_chat", answer, REQUEST, 0.05) == pytest.approx(2.0)


@pytest.mark.parametrize(("body", "payload"), [
    (answer_body(usage=chat_usage(10, 10)).replace(b"gpt-4o-mini-2024-07-18", b"mystery"),
     {"model": "unknown-model"}),  # a model with no price
    (b"not json", {"model": "unknown-model"}),
], ids=["unknown model", "unreadable answer"])
def test_an_unpriceable_answer_costs_its_reservation(body: bytes,
                                                     payload: dict[str, Any]) -> None:
    assert endpoint_cost(PRICES, "openai_chat", captured(body), payload, 0.05) == 0.05


def test_comparison_record_carries_the_reason_and_evidence_never_the_descriptions() -> None:
    result = Comparison("major", 1.0, reasons=("JSON answer differs at $.customer_email",),
                        reason="json_value_changed",
                        evidence=('$.customer_email: "a@x.io" → "b@x.io"',))
    made = comparison_record("/openai", result, latency_delta=-0.5, noise_floor=0.1,
                             above_noise=True, response_id=None, evidence=result.evidence)
    assert (made.route, made.label, made.score, made.latency_delta) == \
        ("/openai", "major", 1.0, -0.5)
    assert (made.reason, made.evidence) == ("json_value_changed", result.evidence)
    # The descriptive reasons name the answer's own keys: content, never recorded.
    assert "customer_email" not in repr(made).replace(repr(result.evidence), "")
    assert (made.noise_floor, made.above_noise) == (0.1, True)
    bare = comparison_record("/openai", Comparison("identical", 0.0), latency_delta=None,
                             noise_floor=None, above_noise=None, response_id=None)
    assert (bare.reason, bare.evidence) == ("identical", ())


def test_captured_content_has_credentials_redacted() -> None:
    answer = captured(answer_body("Set api_key: sk-live-1234abcd in the header."))
    payload = {"model": "m", "messages": [{"role": "user",
                                           "content": "my token=tok-5678efgh, what now?"}]}
    kept = legacy_call(role="legacy", destination=where(), captured=answer, payload=payload,
                       usage=None, cost_usd=None, content=True)
    recorded = (kept.input_messages or "") + (kept.output_messages or "")
    assert "sk-live-1234abcd" not in recorded and "tok-5678efgh" not in recorded
    assert "in the header" in recorded and "what now?" in recorded
