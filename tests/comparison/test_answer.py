"""Extracting the comparable answer from bodies and streams of every wire format."""

from __future__ import annotations

import base64
import gzip
import struct

import orjson
import pytest

from proxy.comparison import answer_from_stream, extract_answer, normalise_finish
from proxy.comparison.answer import parse_json_text, tool_call
from proxy.comparison.extract import looks_like_sse
from tests.comparison import pairs
from tests.fakes import upstream as fake

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_chat_body() -> None:
    answer = extract_answer("openai_chat", pairs.chat(
        "Hello", tools=[("f", '{"b": 1, "a": 2}')], finish="tool_calls"))
    assert answer.text == "Hello"
    assert answer.tool_calls[0].name == "f"
    assert answer.tool_calls[0].arguments == '{"a":2,"b":1}'
    assert answer.finish_reason == "tool_calls"
    assert answer.model == "gpt-4o-2024-08-06"
    assert answer.document is not None and not answer.streamed


def test_chat_content_parts_and_refusal() -> None:
    body = orjson.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]})
    assert extract_answer("openai_chat", body).text == "ab"
    refusal = orjson.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "content": None, "refusal": "I can't help with that."}}]})
    assert extract_answer("openai_chat", refusal).text == "I can't help with that."


def test_legacy_function_call() -> None:
    body = orjson.dumps({"choices": [{"index": 0, "finish_reason": "function_call",
                                      "message": {"content": None, "function_call": {
                                          "name": "f", "arguments": "{}"}}}]})
    answer = extract_answer("openai_chat", body)
    assert answer.tool_calls[0].name == "f" and answer.finish_reason == "tool_calls"


def test_anthropic_body_skips_thinking() -> None:
    body = orjson.dumps({"model": "claude", "stop_reason": "tool_use", "content": [
        {"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "t", "name": "lookup", "input": {"q": 1}}]})
    answer = extract_answer("anthropic_messages", body)
    assert answer.text == "Let me check."
    assert answer.tool_calls[0].arguments == '{"q":1}'
    assert answer.finish_reason == "tool_calls"


def test_responses_body_with_function_call_finishes_with_tool_calls() -> None:
    answer = extract_answer("openai_responses", pairs.responses(calls=[("f", {"x": 1})]))
    assert answer.finish_reason == "tool_calls"
    incomplete = orjson.loads(pairs.responses("partial"))
    incomplete |= {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert extract_answer("openai_responses", orjson.dumps(incomplete)).finish_reason == "length"


def test_base64_embeddings() -> None:
    encoded = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    body = orjson.dumps({"data": [{"index": 0, "embedding": encoded}]})
    assert list(extract_answer("openai_embeddings", body).embeddings[0]) == [0.5, -1.0, 2.0]


def test_gzip_body() -> None:
    answer = extract_answer("openai_chat", gzip.compress(pairs.chat("zipped")),
                            content_encoding="gzip")
    assert answer.text == "zipped"


@pytest.mark.parametrize(("body", "error"), [
    (b'{"choices": [', "invalid_json"),
    (b"<html>bad gateway</html>", "invalid_json"),
    (b'"just a string"', "not_an_object"),
    (orjson.dumps({"type": "error", "error": {"type": "overloaded_error"}}), "overloaded_error"),
])
def test_unusable_bodies_are_errors(body: bytes, error: str) -> None:
    assert extract_answer("openai_chat", body).error == error


def test_cut_body_is_a_truncated_error() -> None:
    answer = extract_answer("openai_chat", pairs.chat("x" * 100)[:50], truncated=True)
    assert answer.truncated and answer.error == "truncated_body"


def test_undecodable_coding() -> None:
    assert extract_answer("openai_chat", b"x", content_encoding="br").error == "undecodable_body"


@pytest.mark.parametrize(("api", "events"), [
    ("openai_chat", fake.chat_chunks({**REQUEST, "stream": True}, fake.Behaviour(chunks=4))),
    ("anthropic_messages", fake.anthropic_events(REQUEST, fake.Behaviour(chunks=4))),
    ("openai_responses", fake.responses_events(REQUEST, fake.Behaviour(chunks=4))),
])
def test_fake_upstream_streams_equal_their_bodies(api: str, events: list[bytes]) -> None:
    stream = extract_answer(api, b"".join(events), content_type="text/event-stream")  # type: ignore[arg-type]
    assert stream.streamed and not stream.truncated
    assert stream.text == fake.answer_for(REQUEST, fake.Behaviour())
    assert stream.finish_reason == "stop"


def test_anthropic_stream_tool_use() -> None:
    def ev(name: str, obj: object) -> bytes:
        return f"event: {name}\ndata: ".encode() + orjson.dumps(obj) + b"\n\n"

    body = (ev("message_start", {"type": "message_start", "message": {"model": "claude"}})
            + ev("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "tool_use", "name": "f",
                                                           "input": {}}})
            + ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": '{"a": '}})
            + ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": "1}"}})
            + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}})
            + ev("message_stop", {"type": "message_stop"}))
    answer = answer_from_stream("anthropic_messages", body)
    assert answer.tool_calls[0].arguments == '{"a":1}'
    assert answer.finish_reason == "tool_calls" and not answer.truncated


def test_responses_stream_without_completed_event_is_assembled_and_truncated() -> None:
    events = fake.responses_events(REQUEST, fake.Behaviour(chunks=3))
    answer = answer_from_stream("openai_responses", b"".join(events[:-1]))
    assert answer.truncated
    assert answer.text == fake.answer_for(REQUEST, fake.Behaviour())


def test_stream_error_event() -> None:
    body = (b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {
        "type": "overloaded_error"}}) + b"\n\n")
    assert answer_from_stream("anthropic_messages", body).error == "overloaded_error"


@pytest.mark.parametrize(("text", "is_json"), [
    ('{"a": 1}', True), ("[1, 2]", True), ('  {"a": 1}\n', True),
    ('```json\n{"a": 1}\n```', True), ('```\n{"a": 1}\n```', True), ('```{"a": 1}```', True),
    ("42", False), ('"s"', False), ("{not json}", False), ("Hello", False), ("", False),
])
def test_parse_json_text(text: str, is_json: bool) -> None:
    assert parse_json_text(text)[0] is is_json


def test_tool_call_arguments_that_are_not_json_stay_as_sent() -> None:
    call = tool_call("f", "not json")
    assert call.arguments == "not json" and not call.is_json
    assert tool_call("f", "").arguments == "{}"


@pytest.mark.parametrize(("reason", "normal"), [
    ("stop", "stop"), ("end_turn", "stop"), ("stop_sequence", "stop"),
    ("completed", "stop"), ("length", "length"), ("max_tokens", "length"),
    ("max_output_tokens", "length"), ("tool_use", "tool_calls"),
    ("function_call", "tool_calls"), ("refusal", "content_filter"), ("odd", "odd"),
    (None, None),
])
def test_normalise_finish(reason: str | None, normal: str | None) -> None:
    assert normalise_finish(reason) == normal


@pytest.mark.parametrize(("head", "content_type", "sse"), [
    (b"data: x", None, True), (b"event: a", None, True), (b": ping", None, True),
    (b"{", None, False), (b"{", "text/event-stream; charset=utf-8", True),
    (b"data: x", "application/json", False),
])
def test_looks_like_sse(head: bytes, content_type: str | None, sse: bool) -> None:
    assert looks_like_sse(head, content_type) is sse
