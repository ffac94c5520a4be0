"""Streaming and SSE pass-through, over real sockets: bytes as they arrive, nothing
buffered, an upstream that breaks mid-stream cuts the client's connection."""

from __future__ import annotations

import random
import socket
import threading

import httpx
import pytest

from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import wait_for
from tests.fakes.upstream import FakeUpstream

CHAT = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "stream please"}]}


def test_first_event_arrives_before_the_upstream_finished(
    passthrough_proxy: ProxyProcess, upstream: FakeUpstream
) -> None:
    """Ordering, not timing: the client holds the first event while the upstream is still
    generating the rest (10 events, 100 ms apart)."""
    with httpx.stream("POST", passthrough_proxy.url + "/openai/v1/chat/completions",
                      json=CHAT, headers={"x-fake-chunk-delay-ms": "100",
                                          "x-fake-chunks": "10"}) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        assert first.startswith(b"data: ")
        [request] = upstream.requests
        assert request.finished_at is None, "the first event waited for the whole stream"
        rest = b"".join(chunks)
    assert rest.endswith(b"data: [DONE]\n\n")


def test_sse_headers_are_passed_and_nothing_added(passthrough_proxy: ProxyProcess,
                                                     upstream: FakeUpstream) -> None:
    with httpx.stream("POST", passthrough_proxy.url + "/openai/v1/chat/completions",
                      json=CHAT, headers={"accept-encoding": "gzip"}) as response:
        body = b"".join(response.iter_raw())
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert "content-length" not in response.headers
    assert "content-encoding" not in response.headers
    assert body.count(b"data: ") > 3


def test_stream_bytes_are_identical_to_direct(passthrough_proxy: ProxyProcess,
                                              upstream: FakeUpstream, upstream_url: str) -> None:
    for path, payload in [
        ("/v1/chat/completions", CHAT),
        ("/v1/messages", {"model": "claude", "stream": True, "max_tokens": 10,
                          "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/responses", {"model": "m", "stream": True, "input": "hello"}),
    ]:
        direct = httpx.post(upstream_url + path, json=payload).content
        prefix = "/anthropic" if path == "/v1/messages" else "/openai"
        proxied = httpx.post(passthrough_proxy.url + prefix + path, json=payload).content
        assert proxied == direct, path


class SlicingUpstream:
    """A raw-socket upstream that sends one canned chunked SSE response in random slices,
    flushing each: the proxy must pass the bytes through unchanged."""

    def __init__(self, body: bytes, seed: int):
        self.body = body
        self.random = random.Random(seed)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                wire = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                        b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                position = 0
                while position < len(self.body):
                    size = self.random.randint(1, 7)
                    piece = self.body[position:position + size]
                    wire += b"%x\r\n%s\r\n" % (len(piece), piece)
                    position += size
                wire += b"0\r\n\r\n"
                index = 0
                while index < len(wire):
                    step = self.random.randint(1, 13)
                    conn.sendall(wire[index:index + step])
                    index += step


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_slices_arrive_byte_identical(seed: int) -> None:
    events = b"".join(b'data: {"n": %d, "text": "caf\xc3\xa9 \\u00e9"}\n\n' % i
                      for i in range(50)) + b"data: [DONE]\n\n"
    upstream = SlicingUpstream(events, seed)
    config = {"proxy": {"routes": routes_to(f"http://127.0.0.1:{upstream.port}")},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config) as proxy:
        received = httpx.post(proxy.url + "/openai/v1/chat/completions", json=CHAT).content
    upstream.sock.close()
    assert received == events


def test_upstream_reset_mid_stream_aborts_the_client(passthrough_proxy: ProxyProcess,
                                                        upstream: FakeUpstream) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
        "POST", passthrough_proxy.url + "/openai/v1/chat/completions", json=CHAT,
        headers={"x-fake-reset-after": "3"},
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received += chunk
    assert received.count(b"data: ") == 3
    assert b"[DONE]" not in received


def test_an_aborted_stream_is_one_log_line_not_a_traceback(upstream: FakeUpstream,
                                                           upstream_url: str) -> None:
    """Cutting the client's connection is how the proxy says "this answer is incomplete";
    it is a fault of the upstream, logged once as a warning, not a crash of the app."""
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config) as proxy:
        with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
                "POST", proxy.url + "/openai/v1/chat/completions", json=CHAT,
                headers={"x-fake-reset-after": "2"}) as response:
            for _ in response.iter_raw():
                pass
        wait_for(lambda: "upstream stream aborted mid-response" in proxy.log(),
                 message="the abort logged")
        log = proxy.log()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log


def test_long_silence_between_events_is_not_a_timeout(upstream: FakeUpstream,
                                                         upstream_url: str) -> None:
    """A reasoning model may be silent for long; the per-read timeout is the route's
    (here 8 s), not httpx's 5 s default, and a 6 s gap passes."""
    routes = [{**route, "timeouts": {"read": 8.0}} for route in routes_to(upstream_url)]
    config = {"proxy": {"routes": routes}, "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config) as proxy, httpx.stream(
        "POST", proxy.url + "/openai/v1/chat/completions", json=CHAT, timeout=30,
        headers={"x-fake-chunk-delay-ms": "6000", "x-fake-chunks": "1"},
    ) as response:
        body = b"".join(response.iter_raw())
    assert body.endswith(b"data: [DONE]\n\n")
    wait_for(lambda: upstream.requests[0].finished_at is not None)


def test_opt_in_usage_injection_keeps_the_client_stream_as_asked(
    upstream: FakeUpstream, upstream_url: str,
) -> None:
    """With the route opted in, the upstream is asked for usage, and the client still
    gets exactly the stream it would have got without the proxy."""
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    direct = httpx.post(upstream_url + "/v1/chat/completions", json=body).content
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "comparison": {"inject_stream_usage_routes": ["/openai"]},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config) as proxy:
        upstream.requests.clear()
        proxied = httpx.post(proxy.url + "/openai/v1/chat/completions", json=body).content
        plain = httpx.post(proxy.url + "/anthropic/v1/messages",
                           json={**body, "max_tokens": 5}).content
    # The fake derives its completion id from the request body, which now differs.
    assert _without_ids(proxied) == _without_ids(direct)
    assert b'"usage"' not in proxied
    sent = upstream.requests[0].json()
    assert sent["stream_options"] == {"include_usage": True}
    assert "stream_options" not in upstream.requests[1].json()
    assert plain.startswith(b"event: message_start")


def _without_ids(stream: bytes) -> bytes:
    import re

    return re.sub(rb'"id":"chatcmpl-[0-9a-f]+"', b'"id":""', stream)
