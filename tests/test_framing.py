"""Message framing and request smuggling, as raw bytes on a real socket.

Each malformed request must be refused (400, connection closed) and must never reach the
upstream; the last tests show what must still work (pipelining, `Upgrade: h2c`)."""

from __future__ import annotations

import pytest

from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.rawhttp import exchange, status_of
from tests.fakes.upstream import FakeUpstream

REFUSED = {
    "TE and CL": b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\nContent-Length: 31\r\n\r\n"
                    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "chunked twice": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\n"
                        b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "chunked not final": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "gzip coding": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
    "two lengths": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      b"Content-Length: 6\r\n\r\nhello!",
    "plus sign": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    "list": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello",
    "bad chunk terminator": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "bare LF in chunk size": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n1;ext\nx\r\n0\r\n\r\n",
    "lone CR in header": b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\n"
                            b"X-Abc: \rxTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("payload", REFUSED.values(), ids=REFUSED.keys())
def test_malformed_framing_is_refused_and_never_forwarded(
    passthrough_proxy: ProxyProcess, upstream: FakeUpstream, payload: bytes
) -> None:
    response = exchange(passthrough_proxy.port, payload)
    assert status_of(response) == 400
    assert b"connection: close" in response.lower()
    assert upstream.requests == []


def test_pipelined_requests_answer_in_order(
    passthrough_proxy: ProxyProcess, upstream: FakeUpstream
) -> None:
    pipelined = b"".join(
        f"GET /openai/v1/item-{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3)
    ) + b"GET /openai/v1/item-3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    response = exchange(passthrough_proxy.port, pipelined)
    positions = [response.index(f"/v1/item-{i}".encode()) for i in range(4)]
    assert positions == sorted(positions)
    assert response.count(b"HTTP/1.1 200") == 4
    assert upstream.paths() == [f"/v1/item-{i}" for i in range(4)]


def test_h2c_upgrade_is_ignored_and_the_body_delivered(
    passthrough_proxy: ProxyProcess, upstream: FakeUpstream
) -> None:
    payload = (b"POST /openai/v1/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
               b"Upgrade: h2c\r\nHTTP2-Settings: AAA\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")
    response = exchange(passthrough_proxy.port, payload, timeout=5)
    assert status_of(response) == 200
    [received] = upstream.requests
    assert received.body == b"hello"
    assert received.header("upgrade") is None
    assert received.header("http2-settings") is None


@pytest.mark.parametrize("payload,status", [
    (b"GET /openai/v1/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
     b"Connection: close\r\n\r\n", 400),
    (b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
     b"Connection: close\r\n\r\n", 405),
], ids=["websocket", "CONNECT"])
def test_no_tunnels(passthrough_proxy: ProxyProcess, upstream: FakeUpstream,
                        payload: bytes, status: int) -> None:
    response = exchange(passthrough_proxy.port, payload)
    assert status_of(response) == status
    assert b'"error"' in response
    assert upstream.requests == []


def test_expect_continue_with_oversized_body_gets_413_without_continue(
    passthrough_proxy: ProxyProcess, upstream: FakeUpstream
) -> None:
    payload = (b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               b"Expect: 100-continue\r\nContent-Length: 999999999999\r\n"
               b"Connection: close\r\n\r\n")
    response = exchange(passthrough_proxy.port, payload)
    assert b"100 Continue" not in response
    assert status_of(response) == 413
    assert upstream.requests == []
