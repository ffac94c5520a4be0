"""The opt-in usage rewrite touches only what it can read: an uncompressed event
stream, whose Content-Length (if any) it drops because the rewritten stream is shorter."""

from __future__ import annotations

import pytest

from proxy.inject import UsageStripper, prepare

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
