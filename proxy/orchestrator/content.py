"""What a model answered, in a form independent of any wire format: text, tool calls,
parsed JSON when the answer is structured, and token usage.

Layer: pure core. Both API dialects (OpenAI chat, Anthropic messages) are parsed into
these values and rendered back from them, so merging, validation and learning never look
at a provider's JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

# Models often wrap a JSON answer in a Markdown fence even when asked not to.
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str
    id: str | None = None

    def parsed_arguments(self) -> Any:
        """The arguments as JSON, or the raw text when the model produced invalid JSON."""
        try:
            return orjson.loads(self.arguments or "{}")
        except orjson.JSONDecodeError:
            return self.arguments


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Content:
    """One answer. `structured` says JSON was asked for; `data` is the parsed value, or
    None when the text was not valid JSON (validation then refuses it)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    structured: bool = False
    data: Any = None

    @property
    def is_json(self) -> bool:
        return self.structured and self.data is not None

    def value(self) -> Any:
        """The guide's `result.data`: parsed JSON for structured answers, the tool calls
        for tool answers, else the text."""
        if self.tool_calls:
            return [{"name": call.name, "arguments": call.parsed_arguments()}
                    for call in self.tool_calls]
        if self.is_json:
            return self.data
        return self.text


def parse_json_text(text: str) -> Any:
    """Parse a JSON answer, tolerating a surrounding Markdown code fence; None if invalid."""
    fenced = _FENCE.match(text)
    candidate = fenced.group(1) if fenced else text
    try:
        return orjson.loads(candidate.strip())
    except orjson.JSONDecodeError:
        return None


def text_content(text: str, structured: bool) -> Content:
    """A text answer, parsed as JSON when JSON was asked for."""
    if not structured:
        return Content(text=text)
    return Content(text=text, structured=True, data=parse_json_text(text))


def data_content(data: Any) -> Content:
    """A structured answer that arrived already parsed (the Python API's dict answers)."""
    return Content(text=orjson.dumps(data).decode(), structured=True, data=data)
