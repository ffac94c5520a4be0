"""Requests read into neutral form and written out for each model API; replies read
back. Pure: no sockets."""

from __future__ import annotations

import orjson
import pytest

from proxy.orchestrator.content import ToolCall
from proxy.orchestrator.conversation import parse_anthropic, parse_openai_chat
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.wire import (
    MalformedReply,
    anthropic_request,
    openai_request,
    parse_anthropic_reply,
    parse_openai_reply,
)

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}},
           "required": ["city"]}
OPENAI_AGENT = {
    "model": "gpt-4o", "temperature": 0.2, "max_tokens": 300, "stop": "END",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "description": "w",
                                                "parameters": WEATHER}}],
    "tool_choice": "auto",
    "stream": True, "stream_options": {"include_usage": True},
}


def test_openai_body_reads_into_a_conversation() -> None:
    conv = parse_openai_chat(OPENAI_AGENT)
    assert conv.system == "Be brief."
    assert [m.role for m in conv.messages] == ["user", "assistant", "tool"]
    assert conv.messages[1].tool_calls == (ToolCall("weather", '{"city": "Paris"}', "call_1"),)
    assert conv.messages[2].tool_call_id == "call_1"
    assert conv.tools[0].parameters == WEATHER
    assert (conv.max_tokens, conv.temperature, conv.stop) == (300, 0.2, ("END",))
    assert conv.include_usage and conv.model == "gpt-4o" and not conv.unsupported


def test_openai_conversation_becomes_an_anthropic_request() -> None:
    conv = parse_openai_chat(OPENAI_AGENT)
    body = anthropic_request(conv, AIModel("claude", api="anthropic", model_id="claude-x"), 300)
    assert body["model"] == "claude-x" and body["system"] == "Be brief."
    assert body["max_tokens"] == 300 and body["stop_sequences"] == ["END"]
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, sunny"}]}
    assert body["tools"] == [{"name": "weather", "description": "w", "input_schema": WEATHER}]
    assert body["tool_choice"] == {"type": "auto"}


def test_anthropic_body_round_trips_to_openai() -> None:
    anthropic = {
        "model": "claude-sonnet", "max_tokens": 100, "system": [{"type": "text", "text": "S"}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather",
                 "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "cold"},
                {"type": "text", "text": "And tomorrow?"}]},
        ],
        "tools": [{"name": "weather", "input_schema": WEATHER}],
        "tool_choice": {"type": "any"},
    }
    conv = parse_anthropic(anthropic)
    body = openai_request(conv, AIModel("deepseek-chat"), 100)
    assert body["messages"][0] == {"role": "system", "content": "S"}
    assert body["messages"][2]["tool_calls"][0]["function"] == {
        "name": "weather", "arguments": '{"city":"Oslo"}'}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1",
                                   "content": "cold"}
    assert body["messages"][4] == {"role": "user", "content": "And tomorrow?"}
    assert body["tool_choice"] == "required" and body["max_tokens"] == 100
    assert body["stream"] is False


@pytest.mark.parametrize(("body", "problem"), [
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:..."}}]}]}, "content part"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n > 1"),
    ({"messages": [{"role": "function", "content": "x"}]}, "message role"),
])
def test_inputs_the_orchestrator_cannot_carry_are_named(body: dict, problem: str) -> None:
    assert any(problem in item for item in parse_openai_chat(body).unsupported)


def test_anthropic_image_is_unsupported() -> None:
    conv = parse_anthropic({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "data": "..."}}]}]})
    assert conv.unsupported


def test_json_output_is_requested_from_both_apis() -> None:
    conv = parse_openai_chat({"messages": [{"role": "user", "content": "list"}],
                              "response_format": {"type": "json_schema", "json_schema": {
                                  "name": "gpus", "schema": {"type": "array"}}}})
    openai = openai_request(conv, AIModel("m"), 50)
    assert openai["response_format"]["json_schema"] == {"name": "gpus",
                                                        "schema": {"type": "array"}}
    anthropic = anthropic_request(conv, AIModel("c", api="anthropic"), 50)
    assert "single JSON value" in anthropic["system"]
    assert '{"type":"array"}' in anthropic["system"]


def test_openai_reply_with_tool_calls_and_usage() -> None:
    reply = parse_openai_reply({
        "id": "chatcmpl-1", "model": "m-2024",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5}}, structured=False)
    assert reply.content.tool_calls[0].parsed_arguments() == {"city": "Rome"}
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (12, 5)  # type: ignore[union-attr]
    assert (reply.finish_reason, reply.response_model, reply.response_id) == (
        "tool_calls", "m-2024", "chatcmpl-1")


def test_structured_reply_is_parsed_even_inside_a_code_fence() -> None:
    fenced = "```json\n{\"price\": 1.0}\n```"
    reply = parse_openai_reply({"choices": [{"message": {"content": fenced}}]}, structured=True)
    assert reply.content.is_json and reply.content.data == {"price": 1.0}
    broken = parse_openai_reply({"choices": [{"message": {"content": "{nope"}}]}, True)
    assert broken.content.structured and not broken.content.is_json


def test_anthropic_reply_counts_cached_input_tokens() -> None:
    reply = parse_anthropic_reply({
        "id": "msg_1", "type": "message", "model": "claude", "stop_reason": "max_tokens",
        "content": [{"type": "text", "text": "Hello"}],
        "usage": {"input_tokens": 3, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 10, "output_tokens": 7}}, structured=False)
    assert reply.content.text == "Hello" and reply.finish_reason == "length"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (113, 7)  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [{}, {"choices": []}, {"choices": [{}]}, []])
def test_malformed_openai_replies_are_refused(body: object) -> None:
    with pytest.raises(MalformedReply):
        parse_openai_reply(body, structured=False)


def test_malformed_anthropic_reply_is_refused() -> None:
    with pytest.raises(MalformedReply):
        parse_anthropic_reply({"type": "message"}, structured=False)


def test_openai_request_is_plain_json() -> None:
    conv = parse_openai_chat(OPENAI_AGENT)
    assert orjson.loads(orjson.dumps(openai_request(conv, AIModel("m"), 10)))["model"] == "m"


def test_live_settings_from_a_flag_snapshot() -> None:
    from proxy.flags.snapshot import FlagSnapshot
    from proxy.orchestrator.request import LiveSettings

    snapshot = FlagSnapshot.model_validate({
        "orchestrator": {"default_quality_threshold": 0.9, "default_cost_limit": 0.25},
        "feature_flags": {"enable_validation": False}})
    live = LiveSettings.from_snapshot(snapshot)
    assert (live.quality_threshold, live.cost_limit) == (0.9, 0.25)
    assert live.feature_flags.enable_validation is False
