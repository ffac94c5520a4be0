"""A client's request in neutral form, parsed from an OpenAI chat completion body or an
Anthropic messages body.

Layer: pure core. The orchestrator may answer an OpenAI-format request with an Anthropic
model and the other way round, so every request is first read into a `Conversation`
(`proxy.orchestrator.wire` writes it out again for each model). Anything the pipeline
cannot carry faithfully between the two dialects (images, audio, `n > 1`, server-side
tools) is named in `unsupported`; such a request is not answered by the orchestrator
(a divert then falls back to legacy) rather than answered from half the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from proxy.apis import WireFormat
from proxy.orchestrator.content import ToolCall

Role = Literal["user", "assistant", "tool"]
OutputKind = Literal["text", "json_object", "json_schema"]


@dataclass(frozen=True)
class Message:
    role: Role
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class OutputFormat:
    kind: OutputKind = "text"
    schema: Mapping[str, Any] | None = None
    name: str | None = None

    @property
    def structured(self) -> bool:
        return self.kind != "text"


@dataclass(frozen=True)
class Conversation:
    system: str = ""
    messages: tuple[Message, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    output: OutputFormat = OutputFormat()
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    model: str | None = None
    reasoning: bool = False
    include_usage: bool = False
    unsupported: tuple[str, ...] = ()

    def prompt_chars(self) -> int:
        """Characters of input, for the task classification and the cost estimate."""
        chars = len(self.system)
        for message in self.messages:
            chars += len(message.text)
            chars += sum(len(call.name) + len(call.arguments) for call in message.tool_calls)
        chars += sum(len(orjson.dumps(tool.parameters)) + len(tool.description)
                     for tool in self.tools)
        return chars

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return ""


def from_prompt(prompt: str, *, system: str = "", output: OutputFormat | None = None,
                max_tokens: int | None = None) -> Conversation:
    """The Python API's `process_request(prompt=...)`: one user message."""
    return Conversation(system=system, messages=(Message("user", prompt),),
                        output=output or OutputFormat(), max_tokens=max_tokens)


def parse_request(body: Mapping[str, Any], wire_format: WireFormat) -> Conversation:
    if wire_format == "anthropic_messages":
        return parse_anthropic(body)
    return parse_openai_chat(body)


# --- OpenAI chat completions ---------------------------------------------------------


def parse_openai_chat(body: Mapping[str, Any]) -> Conversation:
    unsupported: list[str] = []
    system: list[str] = []
    messages: list[Message] = []
    for raw in _list(body.get("messages")):
        role = raw.get("role") if isinstance(raw, Mapping) else None
        if role in ("system", "developer"):
            system.append(_openai_text(raw.get("content"), unsupported))
        elif role == "user":
            messages.append(Message("user", _openai_text(raw.get("content"), unsupported)))
        elif role == "assistant":
            calls = tuple(_openai_tool_call(call) for call in _list(raw.get("tool_calls")))
            messages.append(Message("assistant", _openai_text(raw.get("content"), unsupported),
                                    tool_calls=calls))
        elif role == "tool":
            messages.append(Message("tool", _openai_text(raw.get("content"), unsupported),
                                    tool_call_id=str(raw.get("tool_call_id") or "")))
        else:
            unsupported.append(f"message role {role!r}")
    if int(body.get("n") or 1) != 1:
        unsupported.append("n > 1")
    if body.get("audio") or "audio" in _list(body.get("modalities")):
        unsupported.append("audio output")
    return Conversation(
        system="\n\n".join(part for part in system if part),
        messages=tuple(messages),
        tools=tuple(_openai_tools(body, unsupported)),
        tool_choice=_openai_tool_choice(body.get("tool_choice")),
        output=_openai_output(body.get("response_format")),
        max_tokens=_int(body.get("max_completion_tokens") or body.get("max_tokens")),
        temperature=_float(body.get("temperature")),
        top_p=_float(body.get("top_p")),
        stop=_stops(body.get("stop")),
        model=_str(body.get("model")),
        reasoning=bool(body.get("reasoning_effort")),
        include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        unsupported=tuple(unsupported),
    )


def _openai_text(content: Any, unsupported: list[str]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in _list(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("text", "input_text"):
            parts.append(str(part.get("text", "")))
        elif kind == "refusal":
            parts.append(str(part.get("refusal", "")))
        else:
            unsupported.append(f"content part {kind!r}")
    return "".join(parts)


def _openai_tool_call(raw: Any) -> ToolCall:
    if not isinstance(raw, Mapping):
        return ToolCall(name="", arguments="{}")
    function = raw.get("function") or {}
    return ToolCall(name=str(function.get("name", "")),
                    arguments=str(function.get("arguments") or "{}"), id=_str(raw.get("id")))


def _openai_tools(body: Mapping[str, Any], unsupported: list[str]) -> list[Tool]:
    tools = []
    for raw in _list(body.get("tools")):
        if not isinstance(raw, Mapping) or raw.get("type") != "function":
            kind = raw.get("type") if isinstance(raw, Mapping) else type(raw).__name__
            unsupported.append(f"tool type {kind!r}")
            continue
        function = raw.get("function") or {}
        tools.append(Tool(str(function.get("name", "")), str(function.get("description") or ""),
                          function.get("parameters") or {}))
    for function in _list(body.get("functions")):
        tools.append(Tool(str(function.get("name", "")), str(function.get("description") or ""),
                          function.get("parameters") or {}))
    return tools


def _openai_tool_choice(raw: Any) -> ToolChoice:
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    if isinstance(raw, Mapping):
        name = (raw.get("function") or {}).get("name")
        if name:
            return ToolChoice("named", str(name))
    return ToolChoice()


def _openai_output(raw: Any) -> OutputFormat:
    if not isinstance(raw, Mapping):
        return OutputFormat()
    if raw.get("type") == "json_object":
        return OutputFormat("json_object")
    if raw.get("type") == "json_schema":
        spec = raw.get("json_schema") or {}
        return OutputFormat("json_schema", spec.get("schema") or {}, _str(spec.get("name")))
    return OutputFormat()


# --- Anthropic messages --------------------------------------------------------------


def parse_anthropic(body: Mapping[str, Any]) -> Conversation:
    unsupported: list[str] = []
    messages: list[Message] = []
    for raw in _list(body.get("messages")):
        if not isinstance(raw, Mapping) or raw.get("role") not in ("user", "assistant"):
            unsupported.append("message role")
            continue
        messages.extend(_anthropic_message(raw["role"], raw.get("content"), unsupported))
    tools = []
    for raw in _list(body.get("tools")):
        if not isinstance(raw, Mapping) or raw.get("type") not in (None, "custom"):
            unsupported.append("server tool")
            continue
        tools.append(Tool(str(raw.get("name", "")), str(raw.get("description") or ""),
                          raw.get("input_schema") or {}))
    return Conversation(
        system=_anthropic_text(body.get("system"), unsupported),
        messages=tuple(messages),
        tools=tuple(tools),
        tool_choice=_anthropic_tool_choice(body.get("tool_choice")),
        output=_anthropic_output(body.get("output_format")),
        max_tokens=_int(body.get("max_tokens")),
        temperature=_float(body.get("temperature")),
        top_p=_float(body.get("top_p")),
        stop=_stops(body.get("stop_sequences")),
        model=_str(body.get("model")),
        reasoning=bool(body.get("thinking")),
        include_usage=True,
        unsupported=tuple(unsupported),
    )


def _anthropic_message(role: Role, content: Any, unsupported: list[str]) -> list[Message]:
    if isinstance(content, str):
        return [Message(role, content)]
    out: list[Message] = []
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in _list(content):
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(ToolCall(str(block.get("name", "")),
                                  orjson.dumps(block.get("input") or {}).decode(),
                                  _str(block.get("id"))))
        elif kind == "tool_result":
            out.append(Message("tool", _anthropic_text(block.get("content"), unsupported),
                               tool_call_id=_str(block.get("tool_use_id"))))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # the model's own earlier reasoning; not needed by another model
        else:
            unsupported.append(f"content block {kind!r}")
    if texts or calls or not out:
        out.append(Message(role, "".join(texts), tool_calls=tuple(calls)))
    return out


def _anthropic_text(content: Any, unsupported: list[str]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in _list(content):
        if isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            unsupported.append("non-text block")
    return "\n\n".join(parts)


def _anthropic_tool_choice(raw: Any) -> ToolChoice:
    if not isinstance(raw, Mapping):
        return ToolChoice()
    kind = raw.get("type")
    if kind == "any":
        return ToolChoice("required")
    if kind == "none":
        return ToolChoice("none")
    if kind == "tool" and raw.get("name"):
        return ToolChoice("named", str(raw["name"]))
    return ToolChoice()


def _anthropic_output(raw: Any) -> OutputFormat:
    if isinstance(raw, Mapping) and raw.get("type") == "json_schema":
        return OutputFormat("json_schema", raw.get("schema") or {})
    return OutputFormat()


# --- small coercions -----------------------------------------------------------------


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _stops(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in _list(value))
