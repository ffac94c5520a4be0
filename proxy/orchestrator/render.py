"""The orchestrator's answer in the client's wire format: an OpenAI chat completion or an
Anthropic message, whole or as the SSE stream the client asked for.

Layer: pure core. The merged answer exists in full before the first byte is rendered
(models are called without streaming, see `proxy.orchestrator.wire`), so a stream is the
answer cut into events: it has the same shape an SDK expects from the provider, including
the final usage chunk when an OpenAI client asked for `stream_options.include_usage`.
`usage` counts every model call the answer took (what was actually spent), not only the
winner's. Headers name the contributing models and the confidence:

    x-llm-shadow-models: deepseek-chat,qwen-max
    x-llm-shadow-confidence: 0.934
    x-llm-shadow-task-type: complex_reasoning
    x-llm-shadow-status: ok
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.apis import WireFormat
from proxy.orchestrator.content import Content, ToolCall
from proxy.orchestrator.result import OrchestratorAnswer

_PIECE = 64  # characters per streamed text delta
_OPENAI_FINISH = frozenset({"stop", "length", "content_filter", "tool_calls"})
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                   "content_filter": "refusal"}
HEADER_MODELS = b"x-llm-shadow-models"
HEADER_CONFIDENCE = b"x-llm-shadow-confidence"
HEADER_TASK = b"x-llm-shadow-task-type"
HEADER_STATUS = b"x-llm-shadow-status"


@dataclass(frozen=True)
class Rendered:
    """Status, headers and body parts: one part for a whole body, one per SSE event for
    a stream (send each as it is, with `more_body=True`)."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    parts: tuple[bytes, ...]
    stream: bool

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


def answer_headers(answer: OrchestratorAnswer) -> list[tuple[bytes, bytes]]:
    return [(HEADER_MODELS, ",".join(answer.contributing_models).encode("ascii", "replace")),
            (HEADER_CONFIDENCE, f"{answer.confidence:.3f}".encode()),
            (HEADER_TASK, answer.task_type.value.encode()),
            (HEADER_STATUS, answer.status.encode())]


def render(answer: OrchestratorAnswer, wire_format: WireFormat, stream: bool) -> Rendered:
    if wire_format == "anthropic_messages":
        return render_anthropic(answer, stream)
    return render_openai_chat(answer, stream)


def render_openai_chat(answer: OrchestratorAnswer, stream: bool) -> Rendered:
    content = _content(answer)
    if stream:
        return _rendered(answer, list(_openai_events(answer, content)), True)
    message: dict[str, Any] = {"role": "assistant", "content": _text(content) or None,
                               "refusal": None}
    if content.tool_calls:
        message["tool_calls"] = [_openai_call(answer, index, call)
                                 for index, call in enumerate(content.tool_calls)]
    body = {"id": _id(answer, "chatcmpl-"), "object": "chat.completion",
            "created": answer.created, "model": _model(answer),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _openai_finish(answer, content)}],
            "usage": _openai_usage(answer)}
    return _rendered(answer, [orjson.dumps(body)], False)


def _openai_events(answer: OrchestratorAnswer, content: Content) -> Iterator[bytes]:
    base = {"id": _id(answer, "chatcmpl-"), "object": "chat.completion.chunk",
            "created": answer.created, "model": _model(answer)}
    extra = {"usage": None} if answer.include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}], **extra}
        return b"data: " + orjson.dumps(data) + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(_text(content)):
        yield chunk({"content": piece})
    for index, call in enumerate(content.tool_calls):
        yield chunk({"tool_calls": [{"index": index, **_openai_call(answer, index, call)}]})
    yield chunk({}, _openai_finish(answer, content))
    if answer.include_usage:
        usage = {**base, "choices": [], "usage": _openai_usage(answer)}
        yield b"data: " + orjson.dumps(usage) + b"\n\n"
    yield b"data: [DONE]\n\n"


def _openai_call(answer: OrchestratorAnswer, index: int, call: ToolCall) -> dict[str, Any]:
    return {"id": _id(answer, "call_", index), "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}


def _openai_finish(answer: OrchestratorAnswer, content: Content) -> str:
    if content.tool_calls:
        return "tool_calls"
    return answer.finish_reason if answer.finish_reason in _OPENAI_FINISH else "stop"


def _openai_usage(answer: OrchestratorAnswer) -> dict[str, int]:
    usage = answer.usage
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens}


def render_anthropic(answer: OrchestratorAnswer, stream: bool) -> Rendered:
    content = _content(answer)
    if stream:
        return _rendered(answer, list(_anthropic_events(answer, content)), True)
    body = {**_anthropic_message(answer), "content": _anthropic_blocks(answer, content),
            "stop_reason": _anthropic_stop(answer, content)}
    return _rendered(answer, [orjson.dumps(body)], False)


def _anthropic_message(answer: OrchestratorAnswer) -> dict[str, Any]:
    usage = answer.usage
    return {"id": _id(answer, "msg_"), "type": "message", "role": "assistant",
            "model": _model(answer), "content": [], "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}


def _anthropic_blocks(answer: OrchestratorAnswer, content: Content) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if _text(content) or not content.tool_calls:
        blocks.append({"type": "text", "text": _text(content)})
    for index, call in enumerate(content.tool_calls):
        arguments = call.parsed_arguments()
        blocks.append({"type": "tool_use", "id": _id(answer, "toolu_", index),
                       "name": call.name,
                       "input": arguments if isinstance(arguments, dict) else {}})
    return blocks


def _anthropic_events(answer: OrchestratorAnswer, content: Content) -> Iterator[bytes]:
    start = _anthropic_message(answer)
    start["usage"] = {**start["usage"], "output_tokens": 0}
    yield _sse("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(_anthropic_blocks(answer, content)):
        opening = {**block, "text": ""} if block["type"] == "text" else {**block, "input": {}}
        yield _sse("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": opening})
        if block["type"] == "text":
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        else:
            deltas = [{"type": "input_json_delta", "partial_json": orjson.dumps(block["input"])
                       .decode()}]
        for delta in deltas:
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": delta})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": _anthropic_stop(answer, content), "stop_sequence": None},
        "usage": {"output_tokens": answer.usage.output_tokens}})
    yield _sse("message_stop", {"type": "message_stop"})


def _anthropic_stop(answer: OrchestratorAnswer, content: Content) -> str:
    if content.tool_calls:
        return "tool_use"
    return _ANTHROPIC_STOP.get(answer.finish_reason or "stop", "end_turn")


# --- shared --------------------------------------------------------------------------


def _content(answer: OrchestratorAnswer) -> Content:
    if answer.content is None:
        raise ValueError(f"a {answer.status} answer has no content to render "
                         "(the proxy falls back to legacy instead)")
    return answer.content


def _text(content: Content) -> str:
    """Structured answers go out as clean JSON (no fence, whatever the model wrapped)."""
    if content.is_json:
        return orjson.dumps(content.data).decode()
    return content.text


def _pieces(text: str) -> list[str]:
    return [text[i:i + _PIECE] for i in range(0, len(text), _PIECE)]


def _model(answer: OrchestratorAnswer) -> str:
    return answer.requested_model or ",".join(answer.contributing_models) or "orchestrator"


def _id(answer: OrchestratorAnswer, prefix: str, index: int | None = None) -> str:
    seed = answer.request_id if index is None else f"{answer.request_id}:{index}"
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _rendered(answer: OrchestratorAnswer, parts: list[bytes], stream: bool) -> Rendered:
    media = b"text/event-stream; charset=utf-8" if stream else b"application/json"
    headers = [(b"content-type", media), *answer_headers(answer)]
    if stream:
        headers.append((b"cache-control", b"no-cache"))
    else:
        headers.append((b"content-length", str(sum(map(len, parts))).encode()))
    return Rendered(200, tuple(headers), tuple(parts), stream)
