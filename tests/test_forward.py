"""The legacy call in-process, the upstream faked at the transport seam
(`httpx.MockTransport`) and the client as a recording `send`: bytes are relayed as they
arrive, the exchange records what happened, failures before the response started are
the proxy's own errors and after it started abort the stream, and the pool slot and the
upstream response are given back whatever happened. Real-socket behaviour (timeouts,
pool exhaustion, resets) is in test_timeouts, test_streaming and test_disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from proxy.body import ClientGone
from proxy.config.proxy import Route, Timeouts
from proxy.errors import ProxyError, UpstreamFailed, UpstreamTimeout
from proxy.exchange import Exchange
from proxy.forward import Forwarder, UpstreamAborted
from proxy.inject import UsageStripper
from proxy.routing import RouteTable
from proxy.tee import Tee
from proxy.transport import PoolGate
from tests.fakes.records import exchange
from tests.fakes.servers import async_wait_for
from tests.usage.streams import DONE, chat_usage, chunk

T = TypeVar("T")
END = object()


# What every response the proxy relays gains: the request id (see proxy.headers.tagged).
TAGS = [(b"x-llm-shadow-request-id", b"r1"), (b"x-request-id", b"r1")]

def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(30):
            return await make()
    return asyncio.run(main())


class Client:
    """The ASGI `send` of the client: records every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def start(self) -> dict[str, Any]:
        assert self.messages[0]["type"] == "http.response.start"
        return self.messages[0]

    @property
    def chunks(self) -> list[bytes]:
        return [m["body"] for m in self.messages[1:]]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def ended(self) -> bool:
        return bool(self.messages) and self.messages[-1].get("more_body") is False


class Body(httpx.AsyncByteStream):
    """An upstream response body the test feeds chunk by chunk (`END` ends it, an
    exception breaks it), which says whether it was closed."""

    def __init__(self, *chunks: object):
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        for item in chunks:
            self.queue.put_nowait(item)
        self.closed = False

    def put(self, item: object) -> None:
        self.queue.put_nowait(item)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    async def aclose(self) -> None:
        self.closed = True


class Upstream:
    """The transport's handler: answers with `body` and remembers the request."""

    def __init__(self, body: Body | None = None, status: int = 200,
                 headers: list[tuple[bytes, bytes]] | None = None,
                 error: Exception | None = None):
        self.body = body if body is not None else Body(b"ok", END)
        self.status = status
        self.headers = headers if headers is not None else [(b"content-type",
                                                             b"application/json")]
        self.error = error
        self.requests: list[tuple[httpx.Request, bytes]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request, await request.aread()))
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, headers=self.headers, stream=self.body)


def forwarder(upstream: Upstream, gate: PoolGate | None = None) -> Forwarder:
    return Forwarder(httpx.MockTransport(upstream), gate or PoolGate(4))


def record_for(query: bytes = b"", **route: Any) -> Exchange:
    table = RouteTable([Route(prefix="/openai", upstream="https://api.example.test/base",
                              **route)])
    return exchange(table.resolve(b"/openai/v1/chat/completions", query))


# --- the request -------------------------------------------------------------------

def test_the_request_goes_to_the_destination_as_given() -> None:
    async def go() -> None:
        upstream = Upstream()
        record = record_for(b"api-version=2024-10-21&x=%7E")
        headers = [(b"authorization", b"Bearer k"), (b"x-a", b"1"), (b"x-a", b"2")]
        await forwarder(upstream).exchange(record, headers, b'{"m": 1}', Client())
        request, sent = upstream.requests[0]
        assert request.method == "POST"
        assert request.url.raw_path == b"/base/v1/chat/completions?api-version=2024-10-21&x=%7E"
        assert request.url.host == "api.example.test"
        assert request.headers.get_list("x-a") == ["1", "2"]
        assert request.headers["authorization"] == "Bearer k"
        assert sent == b'{"m": 1}'
        timeouts = record.destination.route.timeouts
        assert request.extensions["timeout"] == {
            "connect": timeouts.connect, "read": timeouts.read, "write": timeouts.write,
            "pool": timeouts.pool}
    run(go)


def test_a_streamed_request_body_is_sent_whole() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    async def go() -> None:
        upstream = Upstream()
        await forwarder(upstream).exchange(record_for(), [], parts(), Client())
        assert upstream.requests[0][1] == b"abcd"
    run(go)


# --- relaying ----------------------------------------------------------------------

def test_bytes_reach_the_client_as_they_arrive() -> None:
    async def go() -> None:
        body = Body()
        client = Client()
        record = record_for()
        task = asyncio.create_task(forwarder(Upstream(body)).exchange(record, [], b"", client))
        await async_wait_for(lambda: client.messages, message="the response start")
        assert record.status == 200 and record.first_byte_at is None
        body.put(b"data: 1\n\n")
        await async_wait_for(lambda: client.chunks == [b"data: 1\n\n"],
                             message="the first event before the second exists")
        assert record.first_byte_at is not None and not record.completed
        body.put(b"data: 2\n\n")
        await async_wait_for(lambda: len(client.chunks) == 2, message="the second event")
        assert not client.ended
        body.put(END)
        await task
        assert client.chunks == [b"data: 1\n\n", b"data: 2\n\n", b""]
        assert client.ended and record.completed and not record.aborted
    run(go)


def test_status_and_headers_pass_without_hop_by_hop_fields() -> None:
    async def go() -> None:
        headers = [(b"content-type", b"text/plain"), (b"connection", b"keep-alive, x-drop"),
                   (b"x-drop", b"1"), (b"keep-alive", b"timeout=5"), (b"x-kept", b"1"),
                   (b"content-length", b"2")]
        client = Client()
        record = record_for()
        await forwarder(Upstream(status=429, headers=headers)).exchange(record, [], b"", client)
        expected = [(b"content-type", b"text/plain"), (b"x-kept", b"1"),
                    (b"content-length", b"2"), *TAGS]
        assert client.start["status"] == 429  # an upstream status is not an error
        assert client.start["headers"] == expected
        assert record.status == 429 and record.response_headers == expected
        assert client.body == b"ok" and record.completed
    run(go)


def test_an_empty_body_has_its_first_byte_at_its_end() -> None:
    async def go() -> None:
        client = Client()
        record = record_for()
        await forwarder(Upstream(Body(END), status=204)).exchange(record, [], b"", client)
        assert client.chunks == [b""] and client.ended
        assert record.first_byte_at is not None and record.completed
    run(go)


def test_the_tee_keeps_a_bounded_copy_and_the_client_gets_everything() -> None:
    async def go() -> None:
        client = Client()
        tee = Tee(5)
        await forwarder(Upstream(Body(b"abc", b"defg", END))).exchange(
            record_for(), [], b"", client, tee=tee)
        assert client.body == b"abcdefg"
        assert tee.value() == b"abcde" and tee.truncated
    run(go)


def test_the_usage_rewrite_changes_the_clients_stream_not_the_copy() -> None:
    """With opt-in usage injection the client gets the stream it asked for (no usage
    chunk, no `usage: null`, no Content-Length) and the tee keeps the upstream's bytes,
    which carry the usage."""
    upstream_stream = [chunk("Hi", usage=None), chunk(finish="stop", usage=None),
                       chunk(choices=False, usage=chat_usage(3, 2)), DONE]

    async def go() -> None:
        client = Client()
        tee = Tee(1 << 20)
        headers = [(b"content-type", b"text/event-stream"), (b"content-length", b"999")]
        # Cut across event boundaries: the rewrite must not depend on the chunking.
        raw = b"".join(upstream_stream)
        body = Body(raw[:7], raw[7:100], raw[100:], END)
        await forwarder(Upstream(body, headers=headers)).exchange(
            record_for(), [], b"", client, tee=tee, rewrite=UsageStripper())
        assert client.start["headers"] == [(b"content-type", b"text/event-stream"), *TAGS]
        assert tee.value() == raw
        assert client.body == chunk("Hi") + chunk(finish="stop") + DONE
    run(go)


# --- failures ------------------------------------------------------------------------

@pytest.mark.parametrize(("error", "kind", "status", "code"), [
    (httpx.ConnectError("refused"), UpstreamFailed, 502, "upstream_unreachable"),
    (httpx.ConnectTimeout("slow"), UpstreamTimeout, 504, "upstream_timeout"),
    (httpx.ReadTimeout("silent"), UpstreamTimeout, 504, "upstream_timeout"),
    (httpx.RemoteProtocolError("garbage"), UpstreamFailed, 502, "upstream_unreachable"),
    (OSError("reset"), UpstreamFailed, 502, "upstream_unreachable"),
])
def test_a_failure_before_the_headers_is_the_proxys_error_and_sends_nothing(
        error: Exception, kind: type[ProxyError], status: int, code: str) -> None:
    async def go() -> None:
        gate = PoolGate(4)
        client = Client()
        record = record_for()
        with pytest.raises(kind) as caught:
            await forwarder(Upstream(error=error), gate).exchange(record, [], b"", client)
        assert (caught.value.status, caught.value.code) == (status, code)
        assert "api.example.test" in caught.value.message
        assert client.messages == []  # the handler can still answer with an error body
        assert record.status is None and not record.aborted
        assert gate.in_use == 0
    run(go)


def test_a_failure_after_the_headers_aborts_the_stream() -> None:
    async def go() -> None:
        gate = PoolGate(4)
        body = Body(b"data: 1\n\n", httpx.RemoteProtocolError("peer closed"))
        client = Client()
        record = record_for()
        tee = Tee(100)
        with pytest.raises(UpstreamAborted):
            await forwarder(Upstream(body), gate).exchange(record, [], b"", client, tee=tee)
        assert client.start["status"] == 200
        assert client.chunks == [b"data: 1\n\n"]
        assert not client.ended  # a cut answer never looks complete to the client
        assert record.aborted and not record.completed
        assert record.error_type == "upstream_unreachable"
        assert tee.value() == b"data: 1\n\n"
        assert body.closed and gate.in_use == 0
    run(go)


def test_a_read_timeout_mid_stream_is_recorded_as_a_timeout() -> None:
    async def go() -> None:
        record = record_for()
        body = Body(b"x", httpx.ReadTimeout("silent"))
        with pytest.raises(UpstreamAborted):
            await forwarder(Upstream(body)).exchange(record, [], b"", Client())
        assert record.error_type == "upstream_timeout"
    run(go)


class GoneClient(Client):
    """A client whose connection breaks when the first body chunk is sent."""

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            raise OSError("client connection reset")
        await super().__call__(message)


def test_a_client_failure_mid_stream_is_client_gone_not_an_upstream_failure() -> None:
    """A server that reports a broken client connection by raising from `send` (ASGI
    allows an `OSError`): the client went away, the upstream did nothing wrong; the
    upstream response is still closed and the slot returned."""
    async def go() -> None:
        gate = PoolGate(4)
        body = Body(b"a", b"b", END)
        record = record_for()
        with pytest.raises(ClientGone):
            await forwarder(Upstream(body), gate).exchange(record, [], b"", GoneClient())
        assert not record.aborted and record.error_type is None and not record.completed
        assert body.closed and gate.in_use == 0
    run(go)


def test_a_cancelled_exchange_returns_the_slot_and_closes_the_upstream() -> None:
    """A client that went away cancels the request task while the upstream is silent
    (a model thinking): the upstream response is closed and the slot returned."""
    async def go() -> None:
        gate = PoolGate(4)
        body = Body(b"a")  # then silence
        client = Client()
        task = asyncio.create_task(forwarder(Upstream(body), gate).exchange(
            record_for(), [], b"", client))
        await async_wait_for(lambda: client.chunks == [b"a"], message="the first chunk")
        assert gate.in_use == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert body.closed and gate.in_use == 0
    run(go)


def test_an_exhausted_pool_is_a_503_before_anything_is_sent() -> None:
    async def go() -> None:
        gate = PoolGate(1)
        upstream = Upstream()
        async with gate.slot(1.0):
            record = record_for(timeouts=Timeouts(pool=0.01))
            with pytest.raises(ProxyError) as caught:
                await forwarder(upstream, gate).exchange(record, [], b"", Client())
        assert caught.value.status == 503 and caught.value.code == "pool_exhausted"
        assert upstream.requests == []
    run(go)
