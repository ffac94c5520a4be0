"""How the proxy's own records become telemetry and report records: one place for the
mapping, so the request path, the shadow and the divert describe calls the same way.

Layer: pure core (it builds records; recording them is the caller's). Times: the request
path uses `time.monotonic()`; the orchestrator's call records carry wall-clock epoch
seconds, converted here with the current offset between the two clocks.

Message content (prompts and completions, in the GenAI conventions' JSON schema) is
built only when the caller says the operator opted in (`content=True`): it costs a parse
of both bodies and may hold personal data, so nothing is built otherwise. Its size is
bounded by the SDK's `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` when the operator sets one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from proxy.apis import Api, request_model, wire_format
from proxy.comparison import Comparison as Divergence
from proxy.comparison import extract_answer
from proxy.exchange import Captured
from proxy.orchestrator.conversation import Message, parse_request
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.orchestrator.target import TargetCall
from proxy.report.entry import ModelUse, RoleCost
from proxy.routing import Destination
from proxy.telemetry import names as n
from proxy.telemetry.records import Comparison, ModelCall
from proxy.telemetry.redaction import reason_code, redact_json
from proxy.usage.meter import UsageMeter, UsageRecord, usage_from_body
from proxy.usage.prices import PriceTable


def operation_for(api: Api) -> str:
    """The GenAI operation name of a call to an API."""
    return n.OPERATION_EMBEDDINGS if api == "openai_embeddings" else n.OPERATION_CHAT


def usage_of(api: Api | None, captured: Captured,
             request: Mapping[str, Any] | None) -> UsageRecord | None:
    """Usage from a complete (or capped, or aborted) answer: SSE streams are folded
    event by event, whole bodies parsed; missing usage is estimated and marked so.

    An error answer (the provider's 4xx/5xx, or the proxy's own 502/504 when the
    upstream was unreachable) consumed nothing billable: providers do not charge for
    refused calls, so its usage is zero, never an estimate of the prompt (which would
    price every 429 of a rate-limited service as if it had been answered)."""
    if api is None:
        return None
    if captured.status >= 400:
        return UsageRecord(input_tokens=0, output_tokens=0)
    content_type = captured.header(b"content-type") or ""
    truncated = captured.truncated or not captured.completed
    if content_type.startswith("text/event-stream"):
        meter = UsageMeter(api)
        meter.feed(captured.body)
        record = meter.finish(request=request)
        if truncated and not record.truncated:
            record = replace(record, truncated=True)
        return record
    return usage_from_body(api, captured.body, truncated=truncated, request=request,
                           content_encoding=captured.header(b"content-encoding"))


def legacy_call(*, role: str, destination: Destination, captured: Captured,
                payload: Mapping[str, Any] | None, usage: UsageRecord | None,
                cost_usd: float | None, error_type: str | None = None,
                content: bool = False) -> ModelCall:
    """A call to the legacy upstream (the client's, a mirror or a noise sample) of an
    API the proxy reads; `content=True` (capture opted in) adds its prompts and
    completion."""
    api = destination.api
    assert api is not None, "only calls to a known API are recorded"
    stream = bool(payload and payload.get("stream"))
    ttfc = (captured.first_byte - captured.started
            if stream and captured.first_byte is not None else None)
    if error_type is None and captured.status >= 400:
        error_type = str(captured.status)
    if error_type is None and usage is not None:
        error_type = usage.error_type
    messages = call_messages(api, payload, captured) if content else NO_MESSAGES
    return ModelCall(
        role=role, operation=operation_for(api), provider=destination.provider,
        request_model=request_model(payload), start=captured.started, end=captured.finished,
        route=destination.prefix, response_model=usage.response_model if usage else None,
        response_id=usage.response_id if usage else None,
        server_address=destination.upstream.host, server_port=destination.upstream.port,
        stream=stream, time_to_first_chunk=ttfc,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cache_read_input_tokens=usage.cache_read_tokens if usage else None,
        cache_creation_input_tokens=usage.cache_creation_tokens if usage else None,
        reasoning_output_tokens=usage.reasoning_tokens if usage else None,
        usage_estimated=bool(usage and usage.estimated),
        stream_truncated=bool(usage and usage.truncated and stream),
        finish_reasons=usage.finish_reasons if usage else (),
        error_type=error_type, cost_usd=cost_usd, input_messages=messages.input,
        output_messages=messages.output, system_instructions=messages.system,
    )


# --- message content (opt-in) ----------------------------------------------------------

# The conventions' output finish reasons where ours (normalised across providers) differ.
_FINISH_REASONS = {"tool_calls": "tool_call"}


@dataclass(frozen=True, slots=True)
class Messages:
    """`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions`
    as JSON strings (a JSON string is what the conventions allow on span attributes)."""

    input: str | None = None
    output: str | None = None
    system: str | None = None


NO_MESSAGES = Messages()


def call_messages(api: Api | None, payload: Mapping[str, Any] | None,
                  captured: Captured) -> Messages:
    """The prompts the client sent and the completion it got, for chat completions and
    Anthropic messages (other endpoints record none). The request is read by the same
    parser the orchestrator uses, the answer by the comparison's extractor."""
    wire = wire_format(api)
    if wire is None or payload is None:
        return NO_MESSAGES
    conversation = parse_request(payload, wire)
    system = _json([_text(conversation.system)]) if conversation.system else None
    inputs = [_input_message(message) for message in conversation.messages]
    return Messages(_json(inputs) if inputs else None, _output_messages(wire, captured),
                    system)


def _input_message(message: Message) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if message.role == "tool":
        parts.append({"type": "tool_call_response", "id": message.tool_call_id,
                      "response": message.text})
    elif message.text:
        parts.append(_text(message.text))
    parts += [{"type": "tool_call", "id": call.id, "name": call.name,
               "arguments": call.parsed_arguments()} for call in message.tool_calls]
    return {"role": message.role, "parts": parts}


def _output_messages(api: Api | None, captured: Captured) -> str | None:
    if api is None or captured.status >= 400:
        return None
    answer = extract_answer(api, captured.body,
                            content_type=captured.header(b"content-type"),
                            content_encoding=captured.header(b"content-encoding"),
                            truncated=captured.truncated or not captured.completed)
    if answer.error is not None:
        return None
    parts = [_text(answer.text)] if answer.text else []
    parts += [{"type": "tool_call", "name": call.name,
               "arguments": call.parsed if call.is_json else call.arguments}
              for call in answer.tool_calls]
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if answer.finish_reason:
        message["finish_reason"] = _FINISH_REASONS.get(answer.finish_reason,
                                                       answer.finish_reason)
    return _json([message])


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _json(value: Any) -> str:
    """Captured content as the conventions' JSON string, credentials redacted by the
    telemetry's rule (an answer may quote a key; the opt-in is for content, not keys)."""
    return orjson.dumps(redact_json(value)).decode()


def price(prices: PriceTable, usage: UsageRecord | None,
          payload: Mapping[str, Any] | None) -> float | None:
    return prices.cost(usage, request_model(payload)).usd


def workflow_call(*, role: str, route: str, answer: OrchestratorAnswer | None,
                  start: float, end: float, error_type: str | None = None) -> ModelCall:
    """The orchestrator as one in-process step; its model calls are its children. It
    carries no cost of its own (the model calls do), so nothing is counted twice.
    `error_type` is the failure reason; its code (`failed`, `low_confidence`, `timeout`,
    ...) is what `error.type` can carry (the detail is on the SERVER span's fallback
    reason and in the model calls' own error types)."""
    models = ",".join(answer.contributing_models) if answer else ""
    return ModelCall(role=role, operation="invoke_workflow", provider="llm_shadow",
                     request_model="orchestrator", start=start, end=end, route=route,
                     response_model=models or None,
                     error_type=reason_code(error_type) if error_type else None,
                     in_process=True)


def model_calls(answer: OrchestratorAnswer, route: str,
                input_messages: str | None = None) -> list[ModelCall]:
    """The orchestrator's model calls; with content capture, each carries the client's
    conversation (what every model was asked) and its own answer."""
    offset = time.time() - time.monotonic()
    calls = []
    for record in answer.calls:
        output = (_json([{"role": "assistant", "parts": [_text(record.output_text)]}])
                  if record.output_text is not None else None)
        # `host` is a bare host name (IPv6 without brackets); the port is its own field.
        calls.append(ModelCall(
            role="orchestrator", operation="chat", provider=record.provider.lower(),
            request_model=record.api_model or record.model, start=record.started_at - offset,
            end=record.ended_at - offset, route=route, response_model=record.response_model,
            response_id=record.response_id, server_address=record.host or None,
            server_port=record.port,
            input_tokens=record.input_tokens, output_tokens=record.output_tokens,
            usage_estimated=record.cost_estimated,
            finish_reasons=(record.finish_reason,) if record.finish_reason else (),
            error_type=record.error_type, cost_usd=record.cost_usd,
            input_messages=input_messages if output is not None else None,
            output_messages=output))
    return calls


def asked_messages(call: TargetCall) -> str | None:
    """The client's conversation as GenAI input messages, when content capture is on."""
    wire = wire_format(call.api)
    if not call.capture_content or wire is None or call.payload is None:
        return None
    conversation = parse_request(call.payload, wire)
    inputs = [_input_message(message) for message in conversation.messages]
    return _json(inputs) if inputs else None


def orchestrator_calls(call: TargetCall, answer: OrchestratorAnswer | None, *,
                       start: float, end: float,
                       failure: str | None) -> tuple[ModelCall, list[ModelCall]]:
    """The orchestrator's attempt at a shadow or divert: its workflow step and, as its
    children, the model calls it made (with content capture, each with what it was
    asked and what it answered)."""
    workflow = workflow_call(role=call.role, route=call.route, answer=answer, start=start,
                             end=end, error_type=failure)
    if answer is None:
        return workflow, []
    return workflow, model_calls(answer, call.route, asked_messages(call))


def orchestrator_costs(answer: OrchestratorAnswer | None) -> tuple[RoleCost, ...]:
    if answer is None:
        return ()
    return tuple(RoleCost("orchestrator", call.cost_usd) for call in answer.calls)


def model_uses(answer: OrchestratorAnswer | None) -> tuple[ModelUse, ...]:
    """The in-process orchestrator's model calls for the report's per-model rows."""
    if answer is None:
        return ()
    used = set(answer.contributing_models)
    return tuple(ModelUse(call.model, call.outcome, call.duration, call.cost_usd,
                          call.model in used) for call in answer.calls)


def endpoint_cost(prices: PriceTable, api: Api | None, captured: Captured,
                  payload: Mapping[str, Any] | None, reserved: float) -> float:
    """An external orchestrator's answer, priced from the usage it reported; when it
    cannot be priced, the amount reserved for it counts (never zero: the budget would
    otherwise never run out)."""
    usd = price(prices, usage_of(api, captured, payload), payload)
    return reserved if usd is None else usd


def comparison_record(route: str, result: Divergence, *, latency_delta: float | None,
                      noise_floor: float | None, above_noise: bool | None,
                      response_id: str | None,
                      evidence: tuple[str, ...] = ()) -> Comparison:
    """`noise_floor` and `above_noise` are rates of the route (share of divergent
    legacy-vs-legacy resamples, and whether the route's divergence rate exceeds it), not
    properties of this one request.

    What is content: the evidence quotes the answers (`Paris → Lyon`), and so do the
    comparison's descriptive `reasons` (JSON paths are the answer's own keys, tool names
    and error codes come from the answers). So the record carries the reason code (a fixed
    set, never content) and the evidence, which telemetry writes only where content capture
    is opted in; the descriptive `reasons` are not recorded at all (the evidence says the
    same, bounded). `evidence` is the comparison's evidence as it may be shown (redacted,
    `proxy.report.example.shown_evidence`); none is given without content capture."""
    return Comparison(route=route, score=result.score, label=result.label,
                      reason=result.reason or None, evidence=evidence,
                      response_id=response_id, noise_floor=noise_floor,
                      above_noise=above_noise, latency_delta=latency_delta)
