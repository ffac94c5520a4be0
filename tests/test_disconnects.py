"""Client disconnects and cancellation. The upstream must see its connection
closed promptly (a provider stops generating and billing), and no pool slot may leak."""

from __future__ import annotations

import contextlib
import socket
import threading

import httpx

from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import wait_for
from tests.fakes.upstream import FakeUpstream

STREAM_BODY = (b'{"model":"m","stream":true,"messages":[{"role":"user","content":"go"}]}')


def _post(port: int, extra_headers: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\n" + extra_headers
                 + b"Content-Length: %d\r\n\r\n%s" % (len(STREAM_BODY), STREAM_BODY))
    return sock


def _abort(sock: socket.socket) -> None:
    """Close with RST, the way a killed client process goes away."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_disconnect_mid_stream_closes_the_upstream(tight_proxy: ProxyProcess,
                                                      upstream: FakeUpstream) -> None:
    sock = _post(tight_proxy.port, b"x-fake-chunk-delay-ms: 200\r\nx-fake-chunks: 50\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    _abort(sock)
    [request] = upstream.requests
    wait_for(lambda: request.disconnected, message="upstream to see the disconnect")
    wait_for(lambda: upstream.active == 0)


def test_disconnect_before_upstream_headers_cancels_the_request(
    tight_proxy: ProxyProcess, upstream: FakeUpstream
) -> None:
    sock = _post(tight_proxy.port, b"x-fake-hang: headers\r\n")
    wait_for(lambda: len(upstream.requests) == 1)
    _abort(sock)
    wait_for(lambda: upstream.requests[0].disconnected, message="upstream cancelled")
    wait_for(lambda: upstream.active == 0)


def test_repeated_disconnects_under_pool_contention_leak_nothing(
    tight_proxy: ProxyProcess, upstream: FakeUpstream
) -> None:
    """1,000 aborted requests, 8 at a time against a pool of 4 (half of them before the
    upstream's headers, half mid-stream); afterwards the pool serves normally."""
    variants = [b"x-fake-hang: headers\r\n", b"x-fake-hang: body\r\n"]
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(125):
                sock = _post(tight_proxy.port, variants[(i + offset) % 2])
                sock.settimeout(0.2)
                with contextlib.suppress(TimeoutError):
                    sock.recv(1)
                _abort(sock)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    wait_for(lambda: upstream.active == 0, timeout=30, message="every upstream call closed")
    for _ in range(8):  # more than the pool holds: every slot came back
        response = httpx.post(tight_proxy.url + "/openai/v1/chat/completions",
                              json={"model": "m", "messages": []}, timeout=10)
        assert response.status_code == 200


def test_disconnect_during_upload_sends_no_complete_request(
    tight_proxy: ProxyProcess, upstream: FakeUpstream
) -> None:
    sock = socket.create_connection(("127.0.0.1", tight_proxy.port), timeout=10)
    sock.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    wait_for(lambda: upstream.started == 1, message="upload forwarded")
    sock.sendall(b"5\r\nworld\r\n")
    _abort(sock)
    wait_for(lambda: upstream.aborted_uploads == 1, message="upstream saw the upload abort")
    assert upstream.requests == []
