"""What an OTLP collector receives from a running proxy, request by request: one trace
per proxied request, its SERVER span with the decision, the legacy call's CLIENT span
with the GenAI attributes, and for shadow and divert the orchestrator's workflow span,
its model calls and the comparison, all in the same trace (W3C trace context reaches
the model servers). Requests come from the official `openai` and `anthropic` SDKs."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.e2e_telemetry.stack import (
    Stack,
    Trace,
    chat,
    echo,
    message,
    new_request_id,
    traceparent_ids,
)
from tests.fakes.models import ModelBehaviour
from tests.fakes.otlp_receiver import ReceivedSpan

pytestmark = pytest.mark.integration

WORKFLOW = "invoke_workflow orchestrator"
PROMPT = "what is a sidecar proxy"
# The fake upstream's usage: prompt words + 7 in, answer words out.
INPUT_TOKENS = len(PROMPT.split()) + 7
OUTPUT_TOKENS = len(echo(PROMPT).split())


def ask(stack: Stack, prefix: str, provider: str, stream: bool) -> tuple[str, str]:
    if provider == "openai":
        return chat(stack.url(prefix), PROMPT, stream=stream, include_usage=stream)
    return message(stack.url(prefix), PROMPT, stream=stream)


def request_model(provider: str) -> str:
    return "gpt-4o-mini" if provider == "openai" else "claude-e2e"


# --- shared checks ----------------------------------------------------------------------


def check_one_trace(stack: Stack, trace: Trace, request_id: str) -> None:
    """One SERVER span for the request, the root of a connected tree holding every span
    of the trace; no other request shares the trace."""
    servers = [s for s in stack.receiver.find_spans() if s.kind == "SERVER"
               and s.attributes.get("llm_shadow.request.id") == request_id]
    assert len(servers) == 1
    assert trace.server.parent_span_id == ""
    assert [s for s in trace.spans if s.kind == "SERVER"] == [trace.server]
    by_id = {span.span_id: span for span in trace.spans}
    for span in trace.spans:
        node = span
        while node is not trace.server:
            assert node.parent_span_id in by_id, f"{span.name} is cut off:\n{trace.render()}"
            node = by_id[node.parent_span_id]
    assert trace.server.resource["service.name"] == "llm-shadow-e2e"


def check_server(stack: Stack, server: ReceivedSpan, prefix: str, *, decision: str,
                 reason: str, answered_by: str, status: int = 200) -> None:
    attrs = server.attributes
    assert server.name == f"POST {prefix}"
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.route"] == prefix
    assert attrs["http.response.status_code"] == status
    assert attrs["llm_shadow.decision"] == decision
    assert attrs["llm_shadow.decision.reason"] == reason
    assert attrs["llm_shadow.answered_by"] == answered_by
    assert isinstance(attrs["llm_shadow.bucket"], int)
    assert 0 <= attrs["llm_shadow.bucket"] <= 9999
    assert attrs["llm_shadow.flags.version"] == stack.flag_version
    assert attrs["llm_shadow.flags.state"] == "ready"


def check_legacy_client(stack: Stack, span: ReceivedSpan, parent: ReceivedSpan, *,
                        provider: str, role: str, stream: bool, route: str) -> None:
    """The conventions' inference CLIENT span for a legacy upstream call."""
    model = request_model(provider)
    attrs = span.attributes
    assert (span.kind, span.name, span.parent_span_id) == ("CLIENT", f"chat {model}",
                                                           parent.span_id)
    assert span.status == "UNSET"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == provider
    assert attrs["gen_ai.request.model"] == model
    assert attrs["gen_ai.response.model"] == model
    assert attrs["gen_ai.response.id"]
    assert attrs["gen_ai.usage.input_tokens"] == INPUT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert "llm_shadow.usage.estimated" not in attrs
    assert attrs["gen_ai.response.finish_reasons"] == (
        ["stop"] if provider == "openai" else ["end_turn"])
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == stack.upstream_port
    assert attrs["llm_shadow.role"] == role
    assert attrs["llm_shadow.route"] == route
    if role == "legacy":  # the client's own call happened inside its request
        check_within(span, parent)
    assert "error.type" not in attrs
    assert attrs["llm_shadow.cost.usd"] > 0
    assert attrs["gen_ai.usage.cost.amount"] == attrs["llm_shadow.cost.usd"]
    assert attrs["gen_ai.usage.cost.currency"] == "USD"
    if stream:
        assert attrs["gen_ai.request.stream"] is True
        first_chunk = attrs["gen_ai.response.time_to_first_chunk"]
        assert 0 < first_chunk <= (span.end_unix_nano - span.start_unix_nano) / 1e9
    else:
        assert "gen_ai.request.stream" not in attrs
        assert "gen_ai.response.time_to_first_chunk" not in attrs


def check_within(child: ReceivedSpan, parent: ReceivedSpan, slack_ns: int = 20_000_000) -> None:
    """A child's time lies inside its parent's (Jaeger flags anything else as clock skew);
    the slack allows for converting the orchestrator's wall-clock times."""
    assert child.start_unix_nano >= parent.start_unix_nano - slack_ns, (child.name, "start")
    assert child.end_unix_nano <= parent.end_unix_nano + slack_ns, (child.name, "end")


def check_workflow(stack: Stack, trace: Trace, role: str) -> tuple[ReceivedSpan,
                                                                   list[ReceivedSpan]]:
    """The orchestrator: one INTERNAL workflow span under the SERVER span, its model
    calls as CLIENT spans under it, each priced, pointing at its fake model server."""
    workflow = trace.one(WORKFLOW)
    attrs = workflow.attributes
    assert (workflow.kind, workflow.parent_span_id) == ("INTERNAL", trace.server.span_id)
    assert attrs["gen_ai.operation.name"] == "invoke_workflow"
    assert attrs["gen_ai.provider.name"] == "llm_shadow"
    assert attrs["llm_shadow.role"] == role
    assert "llm_shadow.cost.usd" not in attrs  # cost lives on the leaves only
    calls = trace.children(workflow)
    assert calls, trace.render()
    for call in calls:
        check_within(call, workflow)
        model = call.attributes["gen_ai.request.model"]
        assert (call.kind, call.name) == ("CLIENT", f"chat {model}")
        assert call.attributes["llm_shadow.role"] == "orchestrator"
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.provider.name"] == "fake"
        assert call.attributes["server.address"] == "127.0.0.1"
        assert call.attributes.get("server.port") == stack.model_port(model), trace.render()
    return workflow, calls


def check_comparison(trace: Trace, label: str = "identical") -> ReceivedSpan:
    comparison = trace.one("comparison")
    attrs = comparison.attributes
    assert (comparison.kind, comparison.parent_span_id) == ("INTERNAL", trace.server.span_id)
    assert attrs["llm_shadow.divergence.label"] == label
    assert isinstance(attrs["llm_shadow.latency.delta"], float)
    event = comparison.event("gen_ai.evaluation.result")
    assert event.attributes["gen_ai.evaluation.name"] == "llm_shadow.divergence"
    assert event.attributes["gen_ai.evaluation.score.label"] == label
    assert event.attributes["gen_ai.evaluation.score.value"] == \
        attrs["llm_shadow.divergence.score"]
    return comparison


def check_trace_context_reached_models(stack: Stack, trace: Trace, calls: int) -> None:
    """Every model request of this test carried a W3C traceparent of this trace."""
    received = [request for model in stack.fleet for request in model.requests]
    assert len(received) == calls
    ids = list(traceparent_ids(request.header("traceparent") for request in received))
    assert ids == [trace.server.trace_id] * len(received)


# --- legacy only --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_legacy_only(stack: Stack, provider: str, stream: bool) -> None:
    prefix = f"/{provider}"
    request_id, text = ask(stack, prefix, provider, stream)
    assert text == echo(PROMPT)
    trace = stack.trace(request_id, expect=["role:legacy"])
    check_one_trace(stack, trace, request_id)
    check_server(stack, trace.server, prefix, decision="legacy", reason="outside_bands",
                 answered_by="legacy")
    assert trace.server.attributes["llm_shadow.shadow.skip_reason"] == "sampled_out"
    assert trace.server.status == "UNSET"
    [legacy] = trace.role("legacy")
    check_legacy_client(stack, legacy, trace.server, provider=provider, role="legacy",
                        stream=stream, route=prefix)
    assert len(trace.spans) == 2, trace.render()


def test_upstream_error_status_is_the_error_type(stack: Stack) -> None:
    """A 429 passes through untouched; the CLIENT span records it as its error type.
    The provider billed nothing, so neither tokens nor cost are made up for it."""
    request_id = new_request_id("429")
    with pytest.raises(openai.RateLimitError):
        chat(stack.url("/openai"), PROMPT, headers={"x-fake-status": "429"},
             request_id=request_id)
    trace = stack.trace(request_id, expect=["role:legacy"])
    assert trace.server.attributes["http.response.status_code"] == 429
    assert trace.server.status == "UNSET"  # a 4xx is the client's, not the server's error
    [legacy] = trace.role("legacy")
    assert legacy.status == "ERROR"
    assert legacy.attributes["error.type"] == "429"
    assert legacy.attributes.get("gen_ai.usage.input_tokens", 0) == 0, trace.render()
    assert legacy.attributes.get("gen_ai.usage.output_tokens", 0) == 0
    assert legacy.attributes.get("llm_shadow.cost.usd", 0.0) == 0.0
    assert "llm_shadow.usage.estimated" not in legacy.attributes


def test_unreachable_upstream_is_a_server_error(stack: Stack) -> None:
    request_id = new_request_id("502")
    response = httpx.post(stack.url("/dead/openai/v1/chat/completions"), timeout=30,
                          headers={"x-request-id": request_id},
                          json={"model": "gpt-4o", "messages": [{"role": "user",
                                                                 "content": PROMPT}]})
    assert response.status_code == 502
    code = response.json()["error"]["code"]
    trace = stack.trace(request_id, expect=["role:legacy"])
    server = trace.server
    assert server.status == "ERROR"
    assert server.attributes["error.type"] == code
    assert server.attributes["http.response.status_code"] == 502
    [legacy] = trace.role("legacy")
    assert legacy.status == "ERROR"
    assert legacy.attributes["error.type"] == code
    assert legacy.attributes["server.port"] == _dead_port(stack)
    assert legacy.attributes.get("llm_shadow.cost.usd", 0.0) == 0.0


def _dead_port(stack: Stack) -> int:
    routes = json.loads(stack.proxy.config_path.read_text())["proxy"]["routes"]
    [dead] = [route for route in routes if route["prefix"] == "/dead/openai"]
    return int(dead["upstream"].rsplit(":", 1)[1])


def test_incoming_trace_context_is_continued(stack: Stack) -> None:
    """A legacy service that traces its own calls sees the proxy's spans in its trace."""
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    request_id = new_request_id("tp")
    response = httpx.post(stack.url("/openai/v1/chat/completions"), timeout=30,
                          headers={"x-request-id": request_id,
                                   "traceparent": f"00-{trace_id}-{parent_id}-01"},
                          json={"model": "gpt-4o-mini",
                                "messages": [{"role": "user", "content": PROMPT}]})
    assert response.status_code == 200
    trace = stack.trace(request_id, expect=["role:legacy"])
    assert (trace.server.trace_id, trace.server.parent_span_id) == (trace_id, parent_id)


# --- shadow -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_shadow(stack: Stack, provider: str, stream: bool) -> None:
    prefix = f"/shadow/{provider}"
    request_id, text = ask(stack, prefix, provider, stream)
    assert text == echo(PROMPT)
    trace = stack.trace(request_id, expect=["role:legacy", WORKFLOW, "role:orchestrator",
                                            "comparison"])
    check_one_trace(stack, trace, request_id)
    check_server(stack, trace.server, prefix, decision="shadow", reason="shadow_band",
                 answered_by="legacy")
    [legacy] = trace.role("legacy")
    check_legacy_client(stack, legacy, trace.server, provider=provider, role="legacy",
                        stream=stream, route=prefix)
    _, calls = check_workflow(stack, trace, role="shadow")
    for call in calls:
        assert call.attributes["gen_ai.usage.input_tokens"] > 0
        assert call.attributes["gen_ai.usage.output_tokens"] > 0
        assert call.attributes["llm_shadow.cost.usd"] > 0
        assert call.attributes["gen_ai.response.finish_reasons"]
    comparison = check_comparison(trace, "identical")
    assert comparison.attributes["llm_shadow.divergence.score"] == 0.0
    check_trace_context_reached_models(stack, trace, len(calls))


def test_shadow_divergence_is_scored_and_labelled(stack: Stack) -> None:
    for model in stack.fleet:
        model.behaviour = ModelBehaviour(answer="Bananas are an excellent source of potassium.")
    request_id, _ = chat(stack.url("/shadow/openai"), PROMPT)
    trace = stack.trace(request_id, expect=[WORKFLOW, "comparison"])
    comparison = trace.one("comparison")
    label = comparison.attributes["llm_shadow.divergence.label"]
    assert label in ("minor", "major"), trace.render()
    assert comparison.attributes["llm_shadow.divergence.score"] > 0
    check_comparison(trace, label)


def test_shadow_failure_is_traced_and_never_reaches_the_client(stack: Stack) -> None:
    for model in stack.fleet:
        model.behaviour = ModelBehaviour(status=503)
    request_id, text = chat(stack.url("/shadow/openai"), PROMPT)
    assert text == echo(PROMPT)
    trace = stack.trace(request_id, expect=["role:legacy", WORKFLOW, "role:orchestrator"])
    check_server(stack, trace.server, "/shadow/openai", decision="shadow",
                 reason="shadow_band", answered_by="legacy")
    assert trace.server.status == "UNSET"
    workflow, calls = check_workflow(stack, trace, role="shadow")
    assert (workflow.status, workflow.attributes["error.type"]) == ("ERROR", "failed")
    assert all(call.attributes["error.type"] == "http_503" for call in calls)
    stack.barrier()
    assert not Trace(trace.server, stack.receiver.trace(trace.server.trace_id)).named(
        "comparison")  # nothing to compare


# --- divert -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_divert(stack: Stack, provider: str, stream: bool) -> None:
    """The orchestrator answers; legacy runs as the divert's shadow and is compared."""
    prefix = f"/divert/{provider}"
    request_id, text = ask(stack, prefix, provider, stream)
    assert text == echo(PROMPT)
    trace = stack.trace(request_id, expect=[WORKFLOW, "role:orchestrator", "role:shadow",
                                            "comparison"])
    check_one_trace(stack, trace, request_id)
    check_server(stack, trace.server, prefix, decision="divert", reason="divert_band",
                 answered_by="orchestrator")
    assert "llm_shadow.fallback.reason" not in trace.server.attributes
    _, calls = check_workflow(stack, trace, role="divert")
    assert not trace.role("legacy")
    [mirrored] = trace.role("shadow")
    assert mirrored.kind == "CLIENT"
    check_legacy_client(stack, mirrored, trace.server, provider=provider, role="shadow",
                        stream=stream, route=prefix)
    check_comparison(trace, "identical")
    check_trace_context_reached_models(stack, trace, len(calls))


def test_divert_falls_back_to_legacy_when_the_models_fail(stack: Stack) -> None:
    for model in stack.fleet:
        model.behaviour = ModelBehaviour(status=503)
    request_id, text = chat(stack.url("/divert/openai"), PROMPT)
    assert text == echo(PROMPT)  # legacy answered, transparently
    trace = stack.trace(request_id, expect=[WORKFLOW, "role:legacy"])
    check_one_trace(stack, trace, request_id)
    check_server(stack, trace.server, "/divert/openai", decision="divert",
                 reason="divert_band", answered_by="legacy")
    reason = trace.server.attributes["llm_shadow.fallback.reason"]
    assert reason.startswith("failed"), reason
    workflow, calls = check_workflow(stack, trace, role="divert")
    assert workflow.status == "ERROR"
    assert workflow.attributes["error.type"] == "failed"  # the code, not "_OTHER"
    assert "gen_ai.response.model" not in workflow.attributes  # no model answered
    for call in calls:
        assert call.status == "ERROR"
        assert call.attributes["error.type"] == "http_503", trace.render()
    [legacy] = trace.role("legacy")
    check_legacy_client(stack, legacy, trace.server, provider="openai", role="legacy",
                        stream=False, route="/divert/openai")
