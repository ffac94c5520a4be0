"""The opt-in usage rewrite touches only what it can read: an uncompressed event
stream, whose Content-Length (if any) it drops because the rewritten stream is shorter."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.inject import UsageStripper, client_event_bytes, inject_include_usage, prepare
from proxy.usage.sse import SSEParser
from tests.fakes import upstream as fake
from tests.usage.streams import DONE, REQUEST, chat_usage, chunk, meter

SSE = [(b"content-type", b"text/event-stream"), (b"content-length", b"100")]


def test_an_uncompressed_stream_is_rewritten_without_its_length() -> None:
    stripper = UsageStripper()
    assert stripper.start(list(SSE)) == [(b"content-type", b"text/event-stream")]
    usage = (b'data: {"id":"1","choices":[],"usage":{"prompt_tokens":1,'
             b'"completion_tokens":1,"total_tokens":2}}\n\n')
    chunk = b'data: {"id":"1","choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n'
    out = stripper.feed(chunk + usage + b"data: [DONE]\n\n") + stripper.close()
    assert out == (b'data: {"id":"1","choices":[{"delta":{"content":"hi"}}]}\n\n'
                   b"data: [DONE]\n\n")


@pytest.mark.parametrize("headers", [
    [(b"content-type", b"text/event-stream"), (b"content-encoding", b"gzip")],
    [(b"content-type", b"application/json"), (b"content-length", b"10")],
])
def test_anything_else_passes_through_untouched(headers: list[tuple[bytes, bytes]]) -> None:
    stripper = UsageStripper()
    assert stripper.start(list(headers)) == headers
    assert stripper.feed(b"\x1f\x8b binary") == b"\x1f\x8b binary"
    assert stripper.close() == b""


def test_only_listed_routes_and_streams_without_usage_are_changed() -> None:
    body = b'{"model":"m","stream":true,"messages":[]}'
    assert prepare(body, "/anthropic", ("/openai",)) == (body, None)
    asked = b'{"stream":true,"stream_options":{"include_usage":true}}'
    assert prepare(asked, "/openai", ("/openai",)) == (asked, None)
    changed, stripper = prepare(body, "/openai", ("/openai",))
    assert stripper is not None and b'"include_usage":true' in changed


# --- opt-in include_usage injection and stripping ------------------------------------


def test_injection_splices_without_touching_other_bytes() -> None:
    body = b'{"model": "gpt-4o",  "stream": true, "messages": [{"role":"user","content":"1.10"}]}'
    injected = inject_include_usage(body)
    assert injected.injected
    assert injected.body == (b'{"stream_options":{"include_usage":true},"model": "gpt-4o",  '
                             b'"stream": true, "messages": [{"role":"user","content":"1.10"}]}')
    assert orjson.loads(injected.body)["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("body", [
    b'{"model": "m", "stream": false, "messages": []}',
    b'{"model": "m", "messages": []}',
    b'{"stream": true, "stream_options": {"include_usage": true}}',
    b'{"stream": true, "stream_options": "weird"}',
    b"not json",
])
def test_injection_leaves_other_requests_alone(body: bytes) -> None:
    assert inject_include_usage(body).body == body
    assert not inject_include_usage(body).injected


def test_injection_merges_existing_stream_options() -> None:
    injected = inject_include_usage(b'{"stream": true, "stream_options": {"foo": 1}}')
    assert injected.injected
    assert orjson.loads(injected.body)["stream_options"] == {"foo": 1, "include_usage": True}
    explicit_false = inject_include_usage(
        b'{"stream": true, "stream_options": {"include_usage": false}}')
    assert orjson.loads(explicit_false.body)["stream_options"] == {"include_usage": True}


def _client_stream(upstream: bytes, cuts: list[int] = ()) -> bytes:  # type: ignore[assignment]
    parser = SSEParser(keep_raw=True)
    out, last = [], 0
    events = []
    for cut in sorted({c % (len(upstream) + 1) for c in cuts}):
        events += parser.feed(upstream[last:cut])
        last = cut
    events += parser.feed(upstream[last:]) + parser.close()
    for item in events:
        sent = client_event_bytes(item)
        if sent is not None:
            out.append(sent)
    return b"".join(out)


_IDS = re.compile(rb"chatcmpl-[0-9a-f]+")


@given(st.lists(st.integers(0, 3000), max_size=15), st.integers(1, 9))
@settings(max_examples=100, deadline=None)
def test_stripping_gives_the_client_the_stream_it_asked_for(cuts: list[int],
                                                            chunks: int) -> None:
    client_body = {**REQUEST, "stream": True}
    injected = inject_include_usage(orjson.dumps(client_body))
    behaviour = fake.Behaviour(chunks=chunks)
    upstream = b"".join(fake.chat_chunks(orjson.loads(injected.body), behaviour))
    wanted = b"".join(fake.chat_chunks(client_body, behaviour))
    got = _client_stream(upstream, cuts)
    # The fake derives the completion id from the request body, which injection changed.
    assert _IDS.sub(b"ID", got) == _IDS.sub(b"ID", wanted)
    assert b'"usage"' not in got
    # The proxy's own meter still sees the usage upstream sent.
    record = meter("openai_chat", upstream)
    assert record.output_tokens is not None and not record.estimated


def test_stripping_keeps_unrelated_events_byte_identical() -> None:
    odd = b": keep-alive\r\n\r\ndata: {\"choices\":[],\"x\": 1}\r\n\r\n" + DONE
    assert _client_stream(odd) == odd


def test_stripping_usage_on_a_content_chunk_keeps_the_content() -> None:
    upstream = chunk("a", finish="stop", usage=chat_usage(3, 1)) + DONE
    got = _client_stream(upstream)
    first = orjson.loads(got.split(b"\n\n")[0][len(b"data: "):])
    assert "usage" not in first
    assert first["choices"][0]["delta"] == {"content": "a"}
    assert got.endswith(DONE)


def test_stripping_null_usage_in_the_middle_of_an_object() -> None:
    upstream = b'data: {"id":"x","usage":null,"choices":[{"index":0,"delta":{}}]}\n\n'
    assert _client_stream(upstream) == b'data: {"id":"x","choices":[{"index":0,"delta":{}}]}\n\n'
