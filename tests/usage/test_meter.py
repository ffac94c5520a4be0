"""Usage from bodies and streams: every way OpenAI chat, Responses and Anthropic report
usage in a stream (see `proxy.usage.meter`), at any byte slicing, plus estimates and
content codings."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.apis import Api
from proxy.usage.meter import (
    Undecodable,
    UsageMeter,
    UsageRecord,
    decode_body,
    decode_content,
    estimate_input_tokens,
    estimate_tokens,
    usage_from_body,
)
from tests.fakes import upstream as fake
from tests.usage.streams import DONE, REQUEST, chat_usage, chunk, data, event, meter

# --- OpenAI chat completions --------------------------------------------------------

CHAT_CASES: dict[str, tuple[bytes, dict[str, Any]]] = {
    # include_usage: every chunk has usage null, a final chunk with choices [] has it.
    "final_usage_chunk": (
        chunk("Hel", usage=None) + chunk("lo", usage=None) + chunk(finish="stop", usage=None)
        + chunk(choices=False, usage=chat_usage(12, 2, cached=4, reasoning=1)) + DONE,
        {"input_tokens": 12, "output_tokens": 2, "cache_read_tokens": 4,
         "reasoning_tokens": 1, "finish_reasons": ("stop",), "truncated": False,
         "estimated": False}),
    # LiteLLM #36168: usage on a final chunk whose choices is not empty.
    "usage_with_choices": (
        chunk("Hello") + chunk(finish="stop", usage=chat_usage(9, 1)) + DONE,
        {"input_tokens": 9, "output_tokens": 1, "estimated": False}),
    # Cumulative usage on every chunk: the last one wins.
    "cumulative_every_chunk": (
        chunk("a", usage=chat_usage(9, 1)) + chunk("b", usage=chat_usage(9, 2))
        + chunk("c", finish="stop", usage=chat_usage(9, 3)) + DONE,
        {"input_tokens": 9, "output_tokens": 3}),
    # Buggy per-chunk usage: still last wins, never summed (9+9+9 would be wrong).
    "per_chunk_never_summed": (
        chunk("a", usage=chat_usage(9, 1)) + chunk("b", usage=chat_usage(9, 1))
        + chunk("c", finish="stop", usage=chat_usage(9, 1)) + DONE,
        {"input_tokens": 9, "output_tokens": 1}),
    # A null usage after a real one does not erase it.
    "null_after_usage": (
        chunk("a", usage=chat_usage(9, 5)) + chunk(finish="stop", usage=None) + DONE,
        {"input_tokens": 9, "output_tokens": 5}),
    # The client did not ask for usage: estimated from the text and the request.
    "no_usage_estimated": (
        chunk("Hello there, friend") + chunk(finish="stop") + DONE,
        {"output_tokens": 5, "estimated": True, "truncated": False}),
    # Interrupted before the usage chunk (the API's own NOTE): truncated, estimated.
    "interrupted": (
        chunk("Hello there", usage=None) + chunk(" friend", usage=None),
        {"output_tokens": 5, "estimated": True, "truncated": True, "finish_reasons": ()}),
    # DeepSeek-style cache field.
    "deepseek_cache_hit": (
        chunk(finish="stop", usage={"prompt_tokens": 20, "completion_tokens": 3,
                                    "prompt_cache_hit_tokens": 16}) + DONE,
        {"input_tokens": 20, "cache_read_tokens": 16}),
    "mid_stream_error": (
        chunk("a") + data({"error": {"type": "server_error", "message": "boom"}}),
        {"error_type": "server_error", "truncated": True}),
}


def _check(record: UsageRecord, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        assert getattr(record, name) == value, name


@pytest.mark.parametrize("case", sorted(CHAT_CASES))
def test_chat_stream(case: str) -> None:
    body, expected = CHAT_CASES[case]
    record = meter("openai_chat", body, REQUEST)
    _check(record, expected)
    assert record.response_model == "gpt-4o-mini-2024-07-18"
    assert record.input_tokens is not None


def test_chat_body_with_details() -> None:
    body = orjson.dumps({"id": "c1", "model": "gpt-4o", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"},
         "finish_reason": "stop"}], "usage": chat_usage(100, 20, cached=64, reasoning=8)})
    record = usage_from_body("openai_chat", body)
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens,
            record.reasoning_tokens) == (100, 20, 64, 8)
    assert record.response_model == "gpt-4o" and record.response_id == "c1"
    assert record.finish_reasons == ("stop",)
    assert record.total_tokens == 120
    assert not record.estimated


def test_chat_body_without_usage_is_estimated() -> None:
    body = orjson.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "x" * 40}}]})
    record = usage_from_body("openai_chat", body, request=REQUEST)
    assert record.estimated and record.output_tokens == 10
    assert record.input_tokens == estimate_input_tokens("openai_chat", REQUEST)


def test_chat_finish_reasons_one_per_choice_in_index_order() -> None:
    body = orjson.dumps({"choices": [
        {"index": 1, "finish_reason": "length", "message": {}},
        {"index": 0, "finish_reason": "stop", "message": {}}], "usage": chat_usage(1, 1)})
    assert usage_from_body("openai_chat", body).finish_reasons == ("stop", "length")


# --- OpenAI Responses ---------------------------------------------------------------


def response(status: str, usage: Any, **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "model": "gpt-4.1",
            "output": [], "usage": usage, **extra}


RESP_USAGE = {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42,
              "input_tokens_details": {"cached_tokens": 10},
              "output_tokens_details": {"reasoning_tokens": 4}}
RESP_START = (event("response.created", {"type": "response.created",
                                         "response": response("in_progress", None)})
              + event("response.output_text.delta", {"type": "response.output_text.delta",
                                                     "delta": "Hello world"}))

RESPONSES_CASES: dict[str, tuple[bytes, dict[str, Any]]] = {
    "completed": (
        RESP_START + event("response.completed", {"type": "response.completed",
                                                  "response": response("completed",
                                                                       RESP_USAGE)}),
        {"input_tokens": 30, "output_tokens": 12, "cache_read_tokens": 10,
         "reasoning_tokens": 4, "truncated": False, "finish_reasons": ("completed",)}),
    "incomplete": (
        RESP_START + event("response.incomplete", {
            "type": "response.incomplete", "response": response(
                "incomplete", RESP_USAGE,
                incomplete_details={"reason": "max_output_tokens"})}),
        {"output_tokens": 12, "truncated": False, "finish_reasons": ("max_output_tokens",)}),
    "failed": (
        RESP_START + event("response.failed", {
            "type": "response.failed", "response": response(
                "failed", RESP_USAGE, error={"code": "server_error", "message": "x"})}),
        {"output_tokens": 12, "error_type": "server_error", "truncated": False}),
    # Without `event:` lines the type comes from the data (no [DONE] in this API).
    "no_event_lines": (
        data({"type": "response.created", "response": response("in_progress", None)})
        + data({"type": "response.completed", "response": response("completed",
                                                                   RESP_USAGE)}),
        {"input_tokens": 30, "output_tokens": 12, "truncated": False}),
    "truncated": (
        RESP_START,
        {"output_tokens": 3, "estimated": True, "truncated": True}),
}


@pytest.mark.parametrize("case", sorted(RESPONSES_CASES))
def test_responses_stream(case: str) -> None:
    body, expected = RESPONSES_CASES[case]
    record = meter("openai_responses", body, {"model": "gpt-4.1", "input": "hi"})
    _check(record, expected)
    assert record.response_model == "gpt-4.1"


def test_responses_body() -> None:
    record = usage_from_body("openai_responses",
                             orjson.dumps(response("completed", RESP_USAGE)))
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (30, 12, 10)


# --- Anthropic messages -------------------------------------------------------------


def message_start(usage: dict[str, Any]) -> bytes:
    return event("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "stop_reason": None, "usage": usage}})


def text_delta(text: str) -> bytes:
    return event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": text}})


def message_delta(usage: dict[str, Any], stop: str | None = "end_turn") -> bytes:
    return event("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": stop, "stop_sequence": None},
                                   "usage": usage})


START = message_start({"input_tokens": 100, "cache_read_input_tokens": 1000,
                       "cache_creation_input_tokens": 50, "output_tokens": 1})
BLOCK = (event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}})
         + event("ping", {"type": "ping"}) + text_delta("Hello") + text_delta(" world"))
STOP = event("content_block_stop", {"type": "content_block_stop", "index": 0}) + event(
    "message_stop", {"type": "message_stop"})

ANTHROPIC_CASES: dict[str, tuple[bytes, dict[str, Any]]] = {
    # input = input + cache_read + cache_creation; the initial output 1 is not added.
    "basic": (
        START + BLOCK + message_delta({"output_tokens": 15}) + STOP,
        {"input_tokens": 1150, "cache_read_tokens": 1000, "cache_creation_tokens": 50,
         "output_tokens": 15, "truncated": False, "finish_reasons": ("end_turn",),
         "estimated": False}),
    # Several message_delta events: cumulative, the latest wins (not 15 + 40).
    "several_deltas": (
        START + BLOCK + message_delta({"output_tokens": 15}, stop=None)
        + message_delta({"output_tokens": 40}, stop="tool_use") + STOP,
        {"output_tokens": 40, "finish_reasons": ("tool_use",)}),
    # Bedrock / newer API: message_delta repeats input and cache fields.
    "delta_carries_input": (
        message_start({"input_tokens": 10, "output_tokens": 1}) + BLOCK
        + message_delta({"input_tokens": 12, "cache_read_input_tokens": 5,
                         "output_tokens": 7}) + STOP,
        {"input_tokens": 17, "cache_read_tokens": 5, "output_tokens": 7}),
    # A backend that repeats input as 0 on message_delta does not erase it.
    "delta_zero_input": (
        START + BLOCK + message_delta({"input_tokens": 0, "output_tokens": 9}) + STOP,
        {"input_tokens": 1150, "output_tokens": 9}),
    # Interrupted after message_start: input kept, output the latest known, not zero.
    "interrupted_after_start": (
        START,
        {"input_tokens": 1150, "output_tokens": 1, "truncated": True}),
    # Interrupted after a message_delta: its cumulative count stands.
    "interrupted_after_delta": (
        START + BLOCK + message_delta({"output_tokens": 30}, stop=None),
        {"input_tokens": 1150, "output_tokens": 30, "truncated": True, "estimated": False}),
    # Interrupted mid-text with more text than the last count: the estimate is higher.
    "interrupted_mid_text": (
        START + BLOCK + text_delta("x" * 400),
        {"input_tokens": 1150, "output_tokens": 103, "truncated": True, "estimated": True}),
    "overloaded_error": (
        START + BLOCK + event("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}}),
        {"error_type": "overloaded_error", "truncated": True, "input_tokens": 1150}),
    # Without `event:` lines, the type comes from the data.
    "no_event_lines": (
        data({"type": "message_start", "message": {"model": "claude-sonnet-4-5", "usage": {
            "input_tokens": 5, "output_tokens": 1}}})
        + data({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 8}}) + data({"type": "message_stop"}),
        {"input_tokens": 5, "output_tokens": 8, "truncated": False}),
}


@pytest.mark.parametrize("case", sorted(ANTHROPIC_CASES))
def test_anthropic_stream(case: str) -> None:
    body, expected = ANTHROPIC_CASES[case]
    record = meter("anthropic_messages", body)
    _check(record, expected)
    assert record.response_model == "claude-sonnet-4-5"


def test_anthropic_body_adds_cache_to_input() -> None:
    body = orjson.dumps({"id": "msg", "model": "claude-x", "stop_reason": "end_turn",
                         "content": [{"type": "text", "text": "hi"}],
                         "usage": {"input_tokens": 3, "cache_read_input_tokens": 7,
                                   "cache_creation_input_tokens": 2, "output_tokens": 4}})
    record = usage_from_body("anthropic_messages", body)
    assert (record.input_tokens, record.cache_read_tokens, record.cache_creation_tokens,
            record.output_tokens) == (12, 7, 2, 4)
    assert record.finish_reasons == ("end_turn",)


# --- embeddings, content codings, bad bodies -----------------------------------------


def test_embeddings_body() -> None:
    body = orjson.dumps(fake.embeddings({"input": ["a b c", "d"], "model": "e"},
                                        fake.Behaviour()))
    record = usage_from_body("openai_embeddings", body)
    assert (record.input_tokens, record.output_tokens) == (4, 0)


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "deflate-raw", "identity"])
def test_content_codings(coding: str) -> None:
    raw = orjson.dumps({"usage": chat_usage(5, 6), "choices": []})
    if coding in ("gzip", "x-gzip"):
        body = gzip.compress(raw)
    elif coding == "deflate":
        body = zlib.compress(raw)
    elif coding == "deflate-raw":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, coding = compressor.compress(raw) + compressor.flush(), "deflate"
    else:
        body = raw
    assert decode_body(body, coding) == raw
    record = usage_from_body("openai_chat", body, content_encoding=coding)
    assert (record.input_tokens, record.output_tokens) == (5, 6)


def test_unknown_or_corrupt_coding_gives_no_body() -> None:
    assert decode_body(b"abc", "br") is None
    assert decode_body(b"not gzip", "gzip") is None
    assert decode_body(gzip.compress(b"x")[:-4], "gzip") is None


@pytest.mark.parametrize("body,coding,reason", [
    (b"abc", "br", "unknown_coding"),
    (b"not gzip", "gzip", "corrupt"),
    (gzip.compress(b"x")[:-4], "gzip", "corrupt"),
    (gzip.compress(b"x" * 101), "gzip", "too_large"),
    (gzip.compress(zlib.compress(b"x" * 101)), "deflate, gzip", "too_large"),
])
def test_an_undecodable_body_says_why(body: bytes, coding: str, reason: str) -> None:
    with pytest.raises(Undecodable) as caught:
        decode_content(body, coding, limit=100)
    assert caught.value.reason == reason
    assert decode_body(body, coding, limit=100) is None


def test_a_body_decodes_up_to_its_limit() -> None:
    assert decode_content(gzip.compress(b"x" * 100), "gzip", limit=100) == b"x" * 100


def test_unreadable_body_estimates_input_and_keeps_truncation() -> None:
    record = usage_from_body("openai_chat", b'{"choices": [', truncated=True, request=REQUEST)
    assert record.truncated and record.estimated
    assert record.output_tokens is None and record.input_tokens is not None


def test_error_body() -> None:
    body = orjson.dumps({"error": {"type": "rate_limit_exceeded", "message": "slow down"}})
    assert usage_from_body("openai_chat", body).error_type == "rate_limit_exceeded"


# --- estimates and paths --------------------------------------------------------------


@pytest.mark.parametrize(("text", "tokens"), [
    ("", 0), ("abcd", 1), ("abcde", 2), ("x" * 400, 100), ("日本語", 3), ("é", 1),
])
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_estimate_input_counts_messages_and_skips_images() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9000}}
    request = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "x" * 40},
        {"role": "user", "content": [{"type": "text", "text": "y" * 40}, image]}]}
    assert estimate_input_tokens("openai_chat", request) == 10 + 10 + 2 * 4 + 3


def test_estimate_input_for_each_api() -> None:
    anthropic = {"system": "abcd" * 10, "messages": [{"role": "user", "content": "abcd"}]}
    assert estimate_input_tokens("anthropic_messages", anthropic) == 11 + 4 + 3
    assert estimate_input_tokens("openai_responses", {"input": "abcd" * 5}) == 5 + 3
    assert estimate_input_tokens("openai_embeddings", {"input": [[1, 2, 3]]}) == 3
    assert estimate_input_tokens("openai_chat", b"not json") is None


# --- every case, any byte slicing ------------------------------------------------------

ALL_STREAMS: list[tuple[Api, bytes]] = (
    [("openai_chat", body) for body, _ in CHAT_CASES.values()]
    + [("openai_responses", body) for body, _ in RESPONSES_CASES.values()]
    + [("anthropic_messages", body) for body, _ in ANTHROPIC_CASES.values()]
    + [("openai_chat", b"".join(fake.chat_chunks(
        {**REQUEST, "stream": True, "stream_options": {"include_usage": True}},
        fake.Behaviour(chunks=7)))),
       ("anthropic_messages", b"".join(fake.anthropic_events(REQUEST, fake.Behaviour()))),
       ("openai_responses", b"".join(fake.responses_events(REQUEST, fake.Behaviour())))]
)


def _crlf(body: bytes) -> bytes:
    return body.replace(b"\n", b"\r\n")


@given(st.sampled_from(range(len(ALL_STREAMS))), st.lists(st.integers(0, 5000), max_size=20),
       st.booleans())
@settings(max_examples=400, deadline=None)
def test_any_byte_slicing_gives_the_same_record(index: int, cuts: list[int],
                                                crlf: bool) -> None:
    api, body = ALL_STREAMS[index]
    if crlf:
        body = _crlf(body)
    whole = meter(api, body, REQUEST)
    m = UsageMeter(api)
    last = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts}):
        m.feed(body[last:cut])
        last = cut
    m.feed(body[last:])
    assert m.finish(request=REQUEST) == whole


def test_fake_upstream_streams_report_their_usage() -> None:
    payload = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    prompt, completion = fake.usage_numbers(payload, fake.answer_for(payload, fake.Behaviour()))
    for api, events in (("openai_chat", fake.chat_chunks(payload, fake.Behaviour())),
                        ("anthropic_messages", fake.anthropic_events(payload, fake.Behaviour())),
                        ("openai_responses", fake.responses_events(payload, fake.Behaviour()))):
        record = meter(api, b"".join(events))  # type: ignore[arg-type]
        assert (record.input_tokens, record.output_tokens) == (prompt, completion), api
        assert not record.truncated and not record.estimated


def test_count_text_off_still_reads_usage() -> None:
    body, _ = CHAT_CASES["final_usage_chunk"]
    m = UsageMeter("openai_chat", count_text=False)
    m.feed(body)
    record = m.finish()
    assert (record.input_tokens, record.output_tokens) == (12, 2)
    m = UsageMeter("openai_chat", count_text=False)
    m.feed(CHAT_CASES["no_usage_estimated"][0])
    assert m.finish().output_tokens is None
