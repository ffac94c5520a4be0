"""Timeouts and connection pools: every upstream request has the route's deadlines, a
silent upstream is a 504, an exhausted pool a prompt 503, and no slot leaks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

import httpx
import pytest

from proxy.config.proxy import Route, Timeouts
from proxy.errors import ProxyError
from proxy.forward import Forwarder
from proxy.routing import RouteTable
from proxy.transport import PoolGate
from tests.conftest import tight_routes
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.records import exchange
from tests.fakes.servers import wait_for
from tests.fakes.upstream import FakeUpstream


class SilentUpstream:
    """Accepts connections and never answers (Toxiproxy's `timeout` toxic)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_upstream_that_never_answers_is_504(upstream: FakeUpstream) -> None:
    silent = SilentUpstream()
    config = {"proxy": {"routes": tight_routes(f"http://127.0.0.1:{silent.port}")},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    try:
        with ProxyProcess(config) as proxy:
            response = httpx.post(proxy.url + "/openai/v1/chat/completions", json={},
                                  timeout=30)
    finally:
        silent.close()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_black_holed_connect_is_504() -> None:
    """A listener whose accept queue is full drops SYNs, so connecting hangs like a
    black-holed address; the route's connect timeout (0.5 s) bounds it."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    config = {"proxy": {"routes": tight_routes(f"http://127.0.0.1:{port}")},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    try:
        with ProxyProcess(config) as proxy:
            response = httpx.get(proxy.url + "/openai/v1/models", timeout=30)
    finally:
        for filler in fillers:
            filler.close()
        full.close()
    assert response.status_code in (502, 504)


def test_unreachable_upstream_is_502() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = {"proxy": {"routes": tight_routes(f"http://127.0.0.1:{closed_port}")},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config) as proxy:
        response = httpx.get(proxy.url + "/openai/v1/models", timeout=30)
    assert response.status_code == 502
    body = response.json()["error"]
    assert body["code"] == "upstream_unreachable"
    assert set(body) == {"message", "type", "param", "code"}


def test_pool_exhausted_is_a_prompt_503(tight_proxy: ProxyProcess,
                                           upstream: FakeUpstream) -> None:
    """Four streams hold the pool of four; the fifth request waits the pool timeout
    (0.5 s) and gets a controlled 503, never an unbounded hang."""
    holders = []
    for _ in range(4):
        sock = socket.create_connection(("127.0.0.1", tight_proxy.port), timeout=10)
        sock.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"x-fake-hang: body\r\nContent-Length: 16\r\n\r\n"
                     b'{"stream": true}')
        holders.append(sock)
    try:
        wait_for(lambda: upstream.active == 4, message="four streams holding the pool")
        response = httpx.get(tight_proxy.url + "/openai/v1/models", timeout=30)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "pool_exhausted"
    finally:
        for sock in holders:
            sock.close()
    wait_for(lambda: upstream.active == 0)
    assert httpx.get(tight_proxy.url + "/openai/v1/models").status_code == 200


def test_upstream_closing_idle_connections_causes_no_5xx(upstream: FakeUpstream) -> None:
    from tests.fakes.servers import ThreadedServer

    fake = FakeUpstream()
    with ThreadedServer(fake, timeout_keep_alive=1) as server:
        config = {"proxy": {"routes": tight_routes(server.url)},
                  "redis": {"url": "redis://127.0.0.1:9/0"}}
        with ProxyProcess(config) as proxy:
            for _ in range(3):
                assert httpx.get(proxy.url + "/openai/v1/models").status_code == 200
                wait_for(lambda: not server.server.server_state.connections,
                         message="upstream closed its idle keep-alive connection")




def test_every_upstream_request_carries_the_route_timeouts() -> None:
    """No request may go out with httpx's 5 s default for everything."""
    seen = []

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.extensions["timeout"])
            return httpx.Response(200, stream=httpx.ByteStream(b"{}"))

    timeouts = Timeouts(connect=1.5, read=123.0, write=7.0, pool=2.5)
    route = Route(prefix="/openai", upstream="https://example.invalid", timeouts=timeouts)
    record = exchange(RouteTable([route]).resolve(b"/openai/v1/models", b""), method="GET")
    forwarder = Forwarder(Recording(), PoolGate(4))
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(forwarder.exchange(record, [], b"", send))
    assert seen == [{"connect": 1.5, "read": 123.0, "write": 7.0, "pool": 2.5}]
    assert sent[0]["status"] == 200


def test_pool_gate_times_out_with_503_and_returns_slots() -> None:
    async def scenario() -> None:
        gate = PoolGate(1)
        async with gate.slot(1.0):
            with pytest.raises(ProxyError) as caught:
                async with gate.slot(0.05):
                    pass
            assert caught.value.status == 503
        assert gate.in_use == 0
        task = asyncio.create_task(_hold(gate))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gate.in_use == 0
        async with gate.slot(0.05):
            assert gate.in_use == 1

    asyncio.run(scenario())


async def _hold(gate: PoolGate) -> None:
    async with gate.slot(1.0):
        await asyncio.sleep(3600)
