"""The answer carried by an SSE stream (OpenAI chat chunks, Responses events, Anthropic
message events), assembled event by event.

Layer: pure core. Runs off the request path on the bounded tee of the stream (or fed
event by event through `StreamAnswer`). Text deltas are joined, tool-call argument
fragments are joined per call and then canonicalised, the finish reason is the last one
seen. A stream without its terminal event (`[DONE]`, `message_stop`,
`response.completed` / `.incomplete` / `.failed`) gives a `truncated` answer. Streamed
answers have no `document`: chunk envelopes are not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from proxy.apis import Api
from proxy.comparison.answer import Answer, ToolCall, answer_from_json, build_answer, tool_call
from proxy.usage.sse import SSEEvent, iter_events

_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete",
                                 "response.failed"})


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _error_name(payload: Mapping[str, Any]) -> str:
    error = payload.get("error")
    if isinstance(error, Mapping):
        return str(error.get("type") or error.get("code") or "error")
    return str(payload.get("code") or "error")


class StreamAnswer:
    """Feed the events of one stream, then call `answer()`."""

    def __init__(self, api: Api | None):
        self.api = api
        self.terminal = False
        self.model: str | None = None
        self.error: str | None = None
        self.finish: str | None = None
        self.text: list[str] = []
        self.calls: dict[int, list[Any]] = {}  # index -> [name, argument fragments, object]
        self.final: Answer | None = None

    def feed(self, event: SSEEvent) -> None:
        if not event.has_data:
            return
        if self.api == "openai_chat" and event.data.strip() == b"[DONE]":
            self.terminal = True
            return
        payload = _loads(event.data)
        if not isinstance(payload, Mapping):
            return
        kind = event.event or str(payload.get("type") or "")
        if self.api == "openai_chat":
            self._chat(payload)
        elif self.api == "anthropic_messages":
            self._anthropic(kind, payload)
        elif self.api == "openai_responses":
            self._responses(kind, payload)

    def answer(self, *, truncated: bool = False) -> Answer:
        cut = truncated or not self.terminal
        if self.final is not None:
            return replace(self.final, truncated=cut, streamed=True, document=None)
        calls: list[ToolCall] = []
        for index in sorted(self.calls):
            name, fragments, whole = self.calls[index]
            arguments = "".join(fragments) if fragments else whole
            calls.append(tool_call(name, arguments))
        if self.error is not None:
            return Answer(self.api, text="".join(self.text), error=self.error,
                          truncated=cut, streamed=True, model=self.model)
        return build_answer(self.api, text="".join(self.text), tool_calls=calls,
                            finish=self.finish, model=self.model, truncated=cut,
                            streamed=True)

    def _call(self, index: int) -> list[Any]:
        return self.calls.setdefault(index, [None, [], None])

    def _chat(self, payload: Mapping[str, Any]) -> None:
        self.model = self.model or _str(payload.get("model"))
        if "error" in payload:
            self.error = _error_name(payload)
        for choice in payload.get("choices") or ():
            if not isinstance(choice, Mapping) or (choice.get("index") or 0) != 0:
                continue
            self.finish = _str(choice.get("finish_reason")) or self.finish
            delta = choice.get("delta")
            if isinstance(delta, Mapping):
                self._chat_delta(delta)

    def _chat_delta(self, delta: Mapping[str, Any]) -> None:
        for key in ("content", "refusal"):
            if isinstance(delta.get(key), str):
                self.text.append(delta[key])
        for position, call in enumerate(delta.get("tool_calls") or ()):
            if not isinstance(call, Mapping):
                continue
            index = call.get("index")
            slot = self._call(index if isinstance(index, int) else position)
            function = call.get("function")
            if isinstance(function, Mapping):
                slot[0] = slot[0] or _str(function.get("name"))
                if isinstance(function.get("arguments"), str):
                    slot[1].append(function["arguments"])

    def _anthropic(self, kind: str, payload: Mapping[str, Any]) -> None:
        if kind == "message_start" and isinstance(payload.get("message"), Mapping):
            self.model = _str(payload["message"].get("model"))
        elif kind == "content_block_start":
            self._anthropic_block(payload)
        elif kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, Mapping):
                return
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                self.text.append(delta["text"])
            elif delta.get("type") == "input_json_delta":
                index = payload.get("index")
                slot = self._call(index if isinstance(index, int) else 0)
                slot[1].append(str(delta.get("partial_json") or ""))
        elif kind == "message_delta" and isinstance(payload.get("delta"), Mapping):
            self.finish = _str(payload["delta"].get("stop_reason")) or self.finish
        elif kind == "message_stop":
            self.terminal = True
        elif kind == "error":
            self.error = _error_name(payload)

    def _anthropic_block(self, payload: Mapping[str, Any]) -> None:
        block = payload.get("content_block")
        index = payload.get("index")
        if not isinstance(block, Mapping):
            return
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            self.text.append(block["text"])
        elif block.get("type") in ("tool_use", "server_tool_use"):
            slot = self._call(index if isinstance(index, int) else len(self.calls))
            slot[0], slot[2] = _str(block.get("name")), block.get("input") or {}

    def _responses(self, kind: str, payload: Mapping[str, Any]) -> None:
        response = payload.get("response")
        if kind in _RESPONSES_TERMINAL and isinstance(response, Mapping):
            self.terminal = True
            self.final = answer_from_json("openai_responses", response)
            if kind == "response.failed" and self.final.error is None:
                self.final = replace(self.final, error="response.failed")
        elif kind == "response.output_text.delta" and isinstance(payload.get("delta"), str):
            self.text.append(payload["delta"])
        elif kind == "response.output_item.done":
            item = payload.get("item")
            if isinstance(item, Mapping) and item.get("type") == "function_call":
                slot = self._call(len(self.calls))
                slot[0], slot[2] = _str(item.get("name")), item.get("arguments")
        elif kind == "response.created" and isinstance(response, Mapping):
            self.model = _str(response.get("model"))
        elif kind == "error":
            self.error = _error_name(payload)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def answer_from_stream(api: Api | None, body: bytes, *, truncated: bool = False) -> Answer:
    """The answer in a complete (teed) SSE body."""
    events, _ = iter_events(body)
    assembler = StreamAnswer(api)
    for event in events:
        assembler.feed(event)
    return assembler.answer(truncated=truncated)
