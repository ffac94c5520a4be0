"""Body size and resource limits: oversize bodies are 413 before or while reading, slow
bodies 408, and nothing reaches the upstream."""

from __future__ import annotations

import socket
import time

import httpx

from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.rawhttp import exchange, read_until_close, status_of
from tests.fakes.upstream import FakeUpstream


def test_declared_oversize_is_413_before_reading(tight_proxy: ProxyProcess,
                                                    upstream: FakeUpstream) -> None:
    payload = (b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: 10737418240\r\nConnection: close\r\n\r\n")
    response = exchange(tight_proxy.port, payload)
    assert status_of(response) == 413
    assert b'"code":"body_too_large"' in response
    assert upstream.requests == []


def test_chunked_body_growing_past_the_limit_is_413(tight_proxy: ProxyProcess,
                                                       upstream: FakeUpstream) -> None:
    chunk = b"x" * 1000
    with socket.create_connection(("127.0.0.1", tight_proxy.port), timeout=10) as sock:
        sock.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = read_until_close(sock, 10)
    assert status_of(response) == 413
    assert upstream.requests == []


def test_body_at_the_limit_passes(tight_proxy: ProxyProcess, upstream: FakeUpstream) -> None:
    response = httpx.post(tight_proxy.url + "/openai/v1/embeddings", content=b"x" * 4096)
    assert response.status_code == 200
    assert len(upstream.requests[0].body) == 4096


def test_slow_body_gets_408(tight_proxy: ProxyProcess, upstream: FakeUpstream) -> None:
    with socket.create_connection(("127.0.0.1", tight_proxy.port), timeout=10) as sock:
        sock.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 100\r\n\r\n")
        deadline = time.monotonic() + 10
        sock.settimeout(0.3)
        received = b""
        while time.monotonic() < deadline and not received:
            try:
                sock.sendall(b"x")
                received = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
    assert status_of(received) == 408
    assert upstream.requests == []


def test_oversized_headers_are_refused(tight_proxy: ProxyProcess,
                                          upstream: FakeUpstream) -> None:
    payload = (b"GET /openai/v1/models HTTP/1.1\r\nHost: x\r\n"
               + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(64))
               + b"Connection: close\r\n\r\n")
    response = exchange(tight_proxy.port, payload)
    assert status_of(response) in (400, 431)
    assert upstream.requests == []
