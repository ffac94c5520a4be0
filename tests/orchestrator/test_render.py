"""Rendering: the merged answer in the client's wire format, checked by the official
SDKs reading it from a real socket (whole bodies and SSE streams)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import orjson
import pytest

from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.content import Content, ToolCall, text_content
from proxy.orchestrator.render import Rendered, render, render_anthropic, render_openai_chat
from proxy.orchestrator.result import CallRecord, OrchestratorAnswer
from tests.fakes.clients import sdk_client
from tests.fakes.servers import ThreadedServer


def answer(content: Content, **extra: Any) -> OrchestratorAnswer:
    calls = (CallRecord("qwen", "alibaba", "openai", "h", 0.0, 1.0, "valid", 10, 4, 0.001),
             CallRecord("claude", "anthropic", "anthropic", "h", 0.0, 1.0, "valid", 12, 5, 0.002))
    values: dict[str, Any] = {
        "status": "ok", "reason": "", "request_id": "req-7",
        "task_type": TaskType.COMPLEX_REASONING, "content": content,
        "contributing_models": ("qwen", "claude"), "confidence": 0.934,
        "confidence_scores": {"qwen": 0.934, "claude": 0.934}, "calls": calls,
        "requested_model": "gpt-4o", "finish_reason": "stop", "created": 1_700_000_000}
    values.update(extra)
    return OrchestratorAnswer(**values)


class Serve:
    """Serves one rendered answer on both API paths."""

    def __init__(self) -> None:
        self.rendered: Rendered | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        assert self.rendered is not None
        await send({"type": "http.response.start", "status": self.rendered.status,
                    "headers": list(self.rendered.headers)})
        for part in self.rendered.parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Serve, str]]:
    app = Serve()
    with ThreadedServer(app) as server:
        yield app, server.url


def openai_client(url: str) -> openai.OpenAI:
    return sdk_client(openai.OpenAI(base_url=url + "/v1", api_key="sk-client",
                                    max_retries=0))


def anthropic_client(url: str) -> anthropic.Anthropic:
    return sdk_client(anthropic.Anthropic(base_url=url, api_key="sk-client", max_retries=0))


def test_openai_completion_with_headers(served: tuple[Serve, str]) -> None:
    app, url = served
    app.rendered = render_openai_chat(answer(Content(text="Paris")), stream=False)
    raw = openai_client(url).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "?"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Paris"
    assert completion.choices[0].finish_reason == "stop" and completion.model == "gpt-4o"
    assert completion.usage is not None and completion.usage.prompt_tokens == 22
    assert raw.headers["x-llm-shadow-models"] == "qwen,claude"
    assert raw.headers["x-llm-shadow-confidence"] == "0.934"
    assert raw.headers["x-llm-shadow-task-type"] == "complex_reasoning"


def test_openai_stream_with_usage(served: tuple[Serve, str]) -> None:
    app, url = served
    text = "A long answer. " * 20
    app.rendered = render_openai_chat(answer(Content(text=text), include_usage=True), True)
    stream = openai_client(url).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "?"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9
    assert len(chunks) > 4  # really cut into events


def test_openai_tool_calls_whole_and_streamed(served: tuple[Serve, str]) -> None:
    app, url = served
    content = Content(tool_calls=(ToolCall("weather", '{"city":"Rome"}', "toolu_x"),))
    app.rendered = render_openai_chat(answer(content), stream=False)
    message = openai_client(url).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "?"}]).choices[0]
    assert message.finish_reason == "tool_calls"
    call = message.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "weather" and call.id.startswith("call_")  # type: ignore[union-attr]
    app.rendered = render_openai_chat(answer(content), stream=True)
    with openai_client(url).chat.completions.stream(
            model="gpt-4o", messages=[{"role": "user", "content": "?"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"city":"Rome"}'  # type: ignore[index]


def test_structured_answer_goes_out_as_clean_json(served: tuple[Serve, str]) -> None:
    app, url = served
    content = text_content("```json\n{\"b\": 1, \"a\": [1]}\n```", structured=True)
    app.rendered = render_openai_chat(answer(content), stream=False)
    text = openai_client(url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "?"}]).choices[0].message.content
    assert orjson.loads(text or "") == {"b": 1, "a": [1]}


def test_anthropic_message_and_stream(served: tuple[Serve, str]) -> None:
    app, url = served
    app.rendered = render_anthropic(answer(Content(text="Bonjour")), stream=False)
    message = anthropic_client(url).messages.create(
        model="claude", max_tokens=10, messages=[{"role": "user", "content": "?"}])
    assert message.content[0].text == "Bonjour"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 9
    long = "Un texte assez long. " * 10
    app.rendered = render_anthropic(answer(Content(text=long), finish_reason="length"), True)
    with anthropic_client(url).messages.stream(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "?"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == long and final.stop_reason == "max_tokens"  # type: ignore[union-attr]


def test_anthropic_tool_use_stream(served: tuple[Serve, str]) -> None:
    app, url = served
    content = Content(text="Let me check.",
                      tool_calls=(ToolCall("weather", '{"city": "Oslo"}', "call_1"),))
    app.rendered = render_anthropic(answer(content), stream=True)
    with anthropic_client(url).messages.stream(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "?"}]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Oslo"}  # type: ignore[union-attr]


def test_a_failed_answer_cannot_be_rendered() -> None:
    failed = answer(None, status="failed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="falls back to legacy"):
        render(failed, "openai_chat", stream=False)


def test_whole_bodies_carry_a_content_length() -> None:
    rendered = render(answer(Content(text="x")), "anthropic_messages", stream=False)
    assert (b"content-length", str(len(rendered.body)).encode()) in rendered.headers
    streamed = render(answer(Content(text="x")), "openai_chat", stream=True)
    assert (b"content-type", b"text/event-stream; charset=utf-8") in streamed.headers
    assert streamed.parts[-1] == b"data: [DONE]\n\n"
