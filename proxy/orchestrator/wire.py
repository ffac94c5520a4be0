"""A `Conversation` written out as a request body for one model, and that model's reply
read back into neutral `Reply` values.

Layer: pure core. Two dialects: the OpenAI-compatible chat completions API (which most
providers speak: DeepSeek, Qwen/DashScope, Mistral, Groq, vLLM, Ollama, ...) and
Anthropic's messages API. Model calls are never streamed: the orchestrator needs whole
answers to compare them; the client still gets a stream if it asked for one
(`proxy.orchestrator.render`). `max_tokens` is always sent, so the cost estimate is a
bound. Finish reasons are normalised to the OpenAI vocabulary (stop, length, tool_calls,
content_filter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.orchestrator.content import Content, ToolCall, Usage, text_content
from proxy.orchestrator.conversation import Conversation, Message, ToolChoice
from proxy.orchestrator.registry import AIModel

ANTHROPIC_VERSION = "2023-06-01"
_JSON_INSTRUCTION = "Answer with a single JSON value only: no prose, no code fence."

_ANTHROPIC_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                   "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}


@dataclass(frozen=True)
class Reply:
    content: Content
    usage: Usage | None = None
    finish_reason: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    confidence: float | None = None


class MalformedReply(Exception):
    """The model answered 2xx with a body that is not the API's response shape."""


# --- OpenAI-compatible chat ----------------------------------------------------------


def openai_request(conv: Conversation, model: AIModel, max_tokens: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if conv.system:
        messages.append({"role": "system", "content": conv.system})
    messages.extend(_openai_message(message) for message in conv.messages)
    body: dict[str, Any] = {"model": model.api_model, "messages": messages,
                            "max_tokens": max_tokens, "stream": False}
    if conv.tools:
        body["tools"] = [{"type": "function", "function": {
            "name": tool.name, "description": tool.description,
            "parameters": dict(tool.parameters) or {"type": "object", "properties": {}}}}
            for tool in conv.tools]
        body["tool_choice"] = _openai_tool_choice(conv.tool_choice)
    if conv.output.kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif conv.output.kind == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": conv.output.name or "answer", "schema": dict(conv.output.schema or {})}}
    _sampling(body, conv, stop_key="stop")
    return body


def _openai_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "",
                "content": message.text}
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    if message.tool_calls:
        out["content"] = message.text or None
        out["tool_calls"] = [{"id": call.id or f"call_{index}", "type": "function",
                              "function": {"name": call.name, "arguments": call.arguments}}
                             for index, call in enumerate(message.tool_calls)]
    return out


def _openai_tool_choice(choice: ToolChoice) -> Any:
    if choice.mode == "named":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def parse_openai_reply(data: Any, structured: bool) -> Reply:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedReply("no choices[0].message in the reply") from exc
    calls = tuple(
        ToolCall(str(call["function"]["name"]), str(call["function"].get("arguments") or "{}"),
                 call.get("id"))
        for call in message.get("tool_calls") or () if isinstance(call, Mapping))
    text = message.get("content") or message.get("refusal") or ""
    content = (Content(text=str(text), tool_calls=calls) if calls
               else text_content(str(text), structured))
    usage = data.get("usage")
    return Reply(
        content=content,
        usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        if isinstance(usage, Mapping) else None,
        finish_reason=choice.get("finish_reason"),
        response_model=data.get("model"),
        response_id=data.get("id"),
    )


# --- Anthropic messages --------------------------------------------------------------


def anthropic_request(conv: Conversation, model: AIModel, max_tokens: int) -> dict[str, Any]:
    system = conv.system
    if conv.output.structured:
        schema = conv.output.schema
        hint = _JSON_INSTRUCTION + (
            " It must match this JSON Schema: " + orjson.dumps(schema).decode() if schema else "")
        system = f"{system}\n\n{hint}" if system else hint
    body: dict[str, Any] = {"model": model.api_model, "max_tokens": max_tokens,
                            "messages": _anthropic_messages(conv.messages)}
    if system:
        body["system"] = system
    if conv.tools:
        body["tools"] = [{"name": tool.name, "description": tool.description,
                          "input_schema": dict(tool.parameters)
                          or {"type": "object", "properties": {}}}
                         for tool in conv.tools]
        body["tool_choice"] = _anthropic_tool_choice(conv.tool_choice)
    _sampling(body, conv, stop_key="stop_sequences")
    return body


def _anthropic_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Anthropic wants tool results as user content blocks, and consecutive messages of
    one role folded together."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = "user" if message.role == "tool" else message.role
        blocks = _anthropic_blocks(message)
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _anthropic_blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id or "",
                 "content": message.text}]
    blocks: list[dict[str, Any]] = []
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for index, call in enumerate(message.tool_calls):
        blocks.append({"type": "tool_use", "id": call.id or f"toolu_{index}",
                       "name": call.name, "input": call.parsed_arguments()})
    return blocks or [{"type": "text", "text": ""}]


def _anthropic_tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode == "named":
        return {"type": "tool", "name": choice.name}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}[choice.mode]}


def parse_anthropic_reply(data: Any, structured: bool) -> Reply:
    if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
        raise MalformedReply("no content list in the reply")
    texts, calls = [], []
    for block in data["content"]:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(ToolCall(str(block.get("name", "")),
                                  orjson.dumps(block.get("input") or {}).decode(),
                                  block.get("id")))
    text = "".join(texts)
    content = (Content(text=text, tool_calls=tuple(calls)) if calls
               else text_content(text, structured))
    usage = data.get("usage")
    return Reply(
        content=content,
        usage=_anthropic_usage(usage) if isinstance(usage, Mapping) else None,
        finish_reason=_ANTHROPIC_STOP.get(str(data.get("stop_reason")), "stop"),
        response_model=data.get("model"),
        response_id=data.get("id"),
    )


def _anthropic_usage(usage: Mapping[str, Any]) -> Usage:
    # Anthropic's input_tokens excludes cached tokens (OpenTelemetry GenAI conventions).
    cached = int(usage.get("cache_read_input_tokens") or 0)
    created = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(int(usage.get("input_tokens") or 0) + cached + created,
                 int(usage.get("output_tokens") or 0))


def _sampling(body: dict[str, Any], conv: Conversation, stop_key: str) -> None:
    if conv.temperature is not None:
        body["temperature"] = conv.temperature
    if conv.top_p is not None:
        body["top_p"] = conv.top_p
    if conv.stop:
        body[stop_key] = list(conv.stop)
