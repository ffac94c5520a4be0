"""The comparable part of a model's answer, extracted from a complete response body.

Layer: pure core. An `Answer` is what two systems can be compared on, whatever wire
format carried it: the text, the tool calls (arguments in canonical JSON: sorted keys,
no whitespace), the finish reason (normalised across providers: `stop`, `length`,
`tool_calls`, `content_filter`, ...), the text parsed as JSON when it is a JSON object or
array (a markdown code fence around it is allowed), embeddings, and the whole parsed
body (`document`) for the envelope diff. Only the first choice of an OpenAI chat answer
is compared (`n > 1` is rare on the paths that are shadowed). Reasoning / thinking
blocks are not part of the answer. Streams are read by `proxy.comparison.stream`;
`proxy.comparison.extract` picks one or the other for a teed body.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.apis import Api
from proxy.comparison.jsondiff import canonical_json

_FINISH = {
    "stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "completed": "stop",
    "length": "length", "max_tokens": "length", "max_output_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_calls": "tool_calls", "function_call": "tool_calls", "tool_use": "tool_calls",
    "content_filter": "content_filter", "refusal": "content_filter",
    "failed": "error", "cancelled": "error", "pause_turn": "pause",
}


def normalise_finish(reason: str | None) -> str | None:
    if not reason:
        return None
    return _FINISH.get(reason, reason)


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str  # canonical JSON when it parses, else as sent
    parsed: Any = field(default=None, compare=False)
    is_json: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    api: Api | None
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    is_json: bool = False
    content_json: Any = field(default=None, compare=False)
    embeddings: tuple[Sequence[float], ...] = field(default=(), compare=False)
    document: Any = field(default=None, compare=False)
    model: str | None = None
    error: str | None = None
    truncated: bool = False
    streamed: bool = False

    def canonical(self) -> tuple[Any, ...]:
        """What must be equal for two answers to be identical (parallel tool calls in
        any order)."""
        content = canonical_json(self.content_json) if self.is_json else self.text.strip()
        vectors = tuple(tuple(v) for v in self.embeddings)
        calls = tuple(sorted(self.tool_calls, key=lambda c: (c.name, c.arguments)))
        return (content, calls, self.finish_reason, vectors, self.error)


def tool_call(name: Any, arguments: Any) -> ToolCall:
    """A tool call with its arguments canonicalised (a JSON string or an object)."""
    parsed = arguments
    if isinstance(arguments, str):
        parsed = _loads(arguments) if arguments.strip() else {}
    if parsed is _INVALID:
        return ToolCall(str(name or ""), str(arguments))
    return ToolCall(str(name or ""), canonical_json(parsed), parsed, True)


_INVALID = object()


def _loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _INVALID


MAX_JSON_TEXT = 1024 * 1024


def parse_json_text(text: str) -> tuple[bool, Any]:
    """(is_json, value) for an answer text that is a JSON object or array. Texts over
    1 MiB are not parsed (they are compared as text, on a prefix): parsing runs on the
    event loop."""
    if len(text) > MAX_JSON_TEXT:
        return False, None
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        inner = body[3:-3]
        first, _, rest = inner.partition("\n")
        if rest and (not first.strip() or first.strip().isalnum()):
            inner = rest  # drop the fence's language tag line
        body = inner.strip()
    if not body or body[0] not in "{[":
        return False, None
    value = _loads(body)
    if value is _INVALID or not isinstance(value, dict | list):
        return False, None
    return True, value


def build_answer(api: Api | None, *, text: str = "", tool_calls: Sequence[ToolCall] = (),
                 finish: str | None = None, **extra: Any) -> Answer:
    is_json, value = parse_json_text(text) if text else (False, None)
    if api == "openai_responses" and tool_calls and normalise_finish(finish) == "stop":
        finish = "tool_calls"  # Responses says "completed" whether or not tools were called
    return Answer(api, text=text, tool_calls=tuple(tool_calls),
                  finish_reason=normalise_finish(finish), is_json=is_json,
                  content_json=value, **extra)


def answer_from_json(api: Api | None, payload: Any, *, truncated: bool = False) -> Answer:
    if not isinstance(payload, Mapping):
        return Answer(api, document=payload, error="not_an_object", truncated=truncated)
    common: dict[str, Any] = {"document": payload, "truncated": truncated,
                              "model": payload.get("model") if isinstance(
                                  payload.get("model"), str) else None}
    error = _error(payload)
    if error is not None:
        return Answer(api, error=error, **common)
    if api == "openai_chat":
        return _chat(payload, common)
    if api == "anthropic_messages":
        return _anthropic(payload, common)
    if api == "openai_responses":
        return _responses(payload, common)
    if api == "openai_embeddings":
        return Answer(api, embeddings=_embeddings(payload), **common)
    return Answer(api, **common)


def _error(payload: Mapping[str, Any]) -> str | None:
    error = payload.get("error")
    if isinstance(error, Mapping):
        return str(error.get("type") or error.get("code") or "error")
    if payload.get("type") == "error":
        return "error"
    return None


def text_of(content: Any) -> str:
    """Text of a content value: a string, or a list of parts with `text`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, Mapping) and isinstance(part.get("text"), str)
                       and part.get("type") in (None, "text", "output_text"))
    return ""


def _chat(payload: Mapping[str, Any], common: dict[str, Any]) -> Answer:
    choices = [c for c in payload.get("choices") or [] if isinstance(c, Mapping)]
    choice: Mapping[str, Any] = min(choices, key=lambda c: c.get("index") or 0, default={})
    found = choice.get("message")
    message: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    text = text_of(message.get("content")) or (message.get("refusal") or "")
    calls = [tool_call(_fn(call).get("name"), _fn(call).get("arguments"))
             for call in message.get("tool_calls") or [] if isinstance(call, Mapping)]
    legacy_fn = message.get("function_call")
    if isinstance(legacy_fn, Mapping):
        calls.append(tool_call(legacy_fn.get("name"), legacy_fn.get("arguments")))
    return build_answer("openai_chat", text=str(text), tool_calls=calls,
                        finish=choice.get("finish_reason"), **common)


def _fn(call: Mapping[str, Any]) -> Mapping[str, Any]:
    function = call.get("function")
    return function if isinstance(function, Mapping) else {}


def _anthropic(payload: Mapping[str, Any], common: dict[str, Any]) -> Answer:
    texts, calls = [], []
    for block in payload.get("content") or []:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") in ("tool_use", "server_tool_use"):
            calls.append(tool_call(block.get("name"), block.get("input")))
    return build_answer("anthropic_messages", text="".join(texts), tool_calls=calls,
                        finish=payload.get("stop_reason"), **common)


def _responses(payload: Mapping[str, Any], common: dict[str, Any]) -> Answer:
    texts, calls = [], []
    for item in payload.get("output") or []:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "message":
            texts.append(text_of(item.get("content")))
        elif item.get("type") == "function_call":
            calls.append(tool_call(item.get("name"), item.get("arguments")))
    status = payload.get("status")
    details = payload.get("incomplete_details")
    if status == "incomplete" and isinstance(details, Mapping):
        status = details.get("reason") or status
    return build_answer("openai_responses", text="".join(texts), tool_calls=calls,
                        finish=status if isinstance(status, str) else None, **common)


def _embeddings(payload: Mapping[str, Any]) -> tuple[Sequence[float], ...]:
    items = [d for d in payload.get("data") or [] if isinstance(d, Mapping)]
    items.sort(key=lambda d: d.get("index") or 0)
    return tuple(_vector(d.get("embedding")) for d in items)


def _vector(value: Any) -> Sequence[float]:
    if isinstance(value, list):
        return [float(x) for x in value if isinstance(x, int | float)]
    if isinstance(value, str):  # encoding_format=base64: little-endian float32
        try:
            floats = array("f", base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            return []
        if sys.byteorder == "big":
            floats.byteswap()
        return floats
    return []
