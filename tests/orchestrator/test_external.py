"""An external orchestrator service behind the target seam, faked at the transport
(`httpx.MockTransport`): the request keeps its method, path, body and (credential-free)
query under the endpoint's base URL; it carries the role marker, `Via` and the trace
context, and loses the legacy request's credentials unless they may go; a status of 400
or more and every transport failure are `OrchestratorFailed` before any byte reaches a
client; a good answer streams through. The same target over real sockets (faults, kill,
marker headers seen by a real server) is in tests/traffic/test_external."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from proxy.config.proxy import Route, Timeouts
from proxy.errors import UpstreamFailed
from proxy.orchestrator.external import ExternalTarget
from proxy.orchestrator.target import OrchestratorFailed, TargetCall
from proxy.routing import RouteTable

T = TypeVar("T")
ENDPOINT = "https://orchestrator.example.test/base/"
TIMEOUTS = Timeouts(connect=1.0, read=20.0, write=3.0, pool=4.0)
TRACE = [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
         (b"tracestate", b"vendor=1")]
CLIENT_HEADERS = [
    (b"host", b"127.0.0.1:8787"), (b"content-type", b"application/json"),
    (b"authorization", b"Bearer sk-client"), (b"x-api-key", b"sk-ant"),
    (b"api-key", b"azure"), (b"cookie", b"s=1"), (b"openai-organization", b"org-1"),
    (b"ocp-apim-subscription-key", b"apim-secret"),
    (b"connection", b"keep-alive"), (b"x-forwarded-for", b"10.1.2.3"),
    (b"x-llm-shadow-role", b"divert"),  # a client must not set the proxy's markers
    (b"anthropic-version", b"2023-06-01"), (b"x-trace-me", b"1"),
]
CREDENTIALS = {"authorization", "x-api-key", "api-key", "cookie", "openai-organization",
               "ocp-apim-subscription-key"}


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(30):
            return await make()
    return asyncio.run(main())


class Body(httpx.AsyncByteStream):
    def __init__(self, *parts: bytes | Exception):
        self.parts = parts
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if isinstance(part, Exception):
                raise part
            yield part

    async def aclose(self) -> None:
        self.closed = True


class Service:
    """The orchestrator service: answers with `status` and `body`, or raises `error`;
    remembers each request and the body it received."""

    def __init__(self, status: int = 200, body: Body | None = None,
                 error: Exception | None = None):
        self.status = status
        self.body = body or Body(b'{"choices": []}')
        self.error = error
        self.requests: list[tuple[httpx.Request, bytes]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request, await request.aread()))
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, headers={"content-type": "application/json"},
                              stream=self.body)

    @property
    def request(self) -> httpx.Request:
        return self.requests[0][0]


def target(service: Service, forward_credentials: bool = False) -> ExternalTarget:
    return ExternalTarget(ENDPOINT, httpx.MockTransport(service), TIMEOUTS,
                          forward_credentials=forward_credentials)


def call(query: bytes = b"", role: str = "shadow", **fields: Any) -> TargetCall:
    table = RouteTable([Route(prefix="/openai", upstream="https://api.openai.test")])
    values: dict[str, Any] = {
        "role": role, "destination": table.resolve(b"/openai/v1/chat/completions", query),
        "method": "POST", "body": b'{"model": "m", "messages": []}', "payload": {},
        "request_id": "req-7", "client_headers": CLIENT_HEADERS, "trace_headers": TRACE}
    return TargetCall(**{**values, **fields})


async def joined(parts: AsyncIterator[bytes]) -> bytes:
    return b"".join([part async for part in parts])


# --- the request --------------------------------------------------------------------

def test_path_method_body_and_timeouts() -> None:
    service = Service()

    async def go() -> None:
        reply = await target(service).call(call())
        await reply.aclose()

    run(go)
    request, body = service.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://orchestrator.example.test/base/v1/chat/completions"
    assert body == b'{"model": "m", "messages": []}'
    assert request.extensions["timeout"] == {"connect": 1.0, "read": 20.0, "write": 3.0,
                                             "pool": 4.0}


@pytest.mark.parametrize("role", ["shadow", "divert"])
def test_markers_via_and_trace_context(role: str) -> None:
    service = Service()
    run(lambda: target(service).call(call(role=role)))
    headers = service.request.headers
    assert headers.get_list("x-llm-shadow-role") == [role]  # the client's copy is gone
    assert headers["x-llm-shadow-request-id"] == "req-7"
    assert headers["via"] == "1.1 llm-shadow"
    assert headers["traceparent"] == TRACE[0][1].decode()
    assert headers["tracestate"] == "vendor=1"


def test_the_proxys_trace_context_replaces_the_clients() -> None:
    """The client's own `traceparent` (the proxy continued that trace) would make two
    parents, which a W3C parser refuses; the orchestrator gets the proxy's span only.
    Without a span of the proxy's (tracing off), the client's context goes as it came."""
    client = [(b"traceparent", b"00-11111111111111111111111111111111-2222222222222222-01"),
              (b"tracestate", b"client=1")]
    service = Service()
    run(lambda: target(service).call(call(client_headers=CLIENT_HEADERS + client)))
    headers = service.request.headers
    assert headers.get_list("traceparent") == [TRACE[0][1].decode()]
    assert headers.get_list("tracestate") == ["vendor=1"]
    untraced = Service()
    run(lambda: target(untraced).call(call(client_headers=CLIENT_HEADERS + client,
                                           trace_headers=[])))
    assert untraced.request.headers.get_list("traceparent") == [client[0][1].decode()]


def test_credentials_hop_by_hop_and_forwarding_headers_never_go() -> None:
    service = Service()
    run(lambda: target(service).call(call()))
    sent = {name.decode().lower() for name, _ in service.request.headers.raw}
    assert not sent & CREDENTIALS
    assert "x-forwarded-for" not in sent and "connection" not in sent
    assert service.request.headers["host"] == "orchestrator.example.test"
    assert service.request.headers["anthropic-version"] == "2023-06-01"
    assert service.request.headers["x-trace-me"] == "1"


def test_credentials_go_when_allowed() -> None:
    service = Service()
    run(lambda: target(service, forward_credentials=True).call(call()))
    headers = service.request.headers
    assert headers["authorization"] == "Bearer sk-client"
    assert headers["ocp-apim-subscription-key"] == "apim-secret"


@pytest.mark.parametrize(("query", "sent"), [
    (b"", ""),
    (b"api-version=2024-10-21", "api-version=2024-10-21"),
    (b"key=sk-1&api-version=1", "api-version=1"),
    (b"api-version=1&api_key=x&token=y&sig=z", "api-version=1"),
    (b"%6Bey=sk-encoded&a=1", "a=1"),  # the name is decoded before it is judged
    (b"key=sk-only", ""),
])
def test_credential_like_query_parameters_are_stripped(query: bytes, sent: str) -> None:
    service = Service()
    run(lambda: target(service).call(call(query)))
    assert service.request.url.query.decode() == sent


def test_the_query_stays_whole_when_credentials_may_go() -> None:
    service = Service()
    run(lambda: target(service, forward_credentials=True).call(call(b"key=sk-1&a=1")))
    assert service.request.url.query == b"key=sk-1&a=1"


def test_it_supports_every_endpoint() -> None:
    external = target(Service())
    assert all(external.supports(api) for api in ("openai_chat", "openai_embeddings", None))


# --- the answer ---------------------------------------------------------------------

def test_a_good_answer_streams_through_and_closes() -> None:
    body = Body(b"data: 1\n\n", b"data: 2\n\n")

    async def go() -> None:
        reply = await target(Service(body=body)).call(call())
        assert reply.status == 200 and (b"content-type", b"application/json") in reply.headers
        assert [part async for part in reply.parts] == [b"data: 1\n\n", b"data: 2\n\n"]
        await reply.aclose()
        assert reply.answer is None  # an external answer is priced from its usage

    run(go)
    assert body.closed


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
def test_an_error_status_fails_before_any_byte(status: int) -> None:
    body = Body(b'{"error": {}}')
    with pytest.raises(OrchestratorFailed) as caught:
        run(lambda: target(Service(status=status, body=body)).call(call()))
    assert caught.value.reason == f"status_{status}"
    assert body.closed  # the connection goes back to the pool


@pytest.mark.parametrize("status", [200, 201, 302, 399])
def test_statuses_below_400_are_answers(status: int) -> None:
    reply = run(lambda: target(Service(status=status)).call(call()))
    assert reply.status == status


@pytest.mark.parametrize(("error", "reason"), [
    (httpx.ConnectError("refused"), "error"),
    (httpx.RemoteProtocolError("garbage"), "error"),
    (OSError("reset"), "error"),
    (httpx.ConnectTimeout("slow"), "timeout"),
    (httpx.ReadTimeout("silent"), "timeout"),
    (httpx.PoolTimeout("full"), "error"),
])
def test_transport_failures_are_orchestrator_failures(error: Exception, reason: str) -> None:
    with pytest.raises(OrchestratorFailed) as caught:
        run(lambda: target(Service(error=error)).call(call()))
    assert caught.value.reason == reason
    assert caught.value.__cause__ is not None


def test_a_failure_mid_stream_is_the_proxys_error() -> None:
    """Once the reply is handed over, a broken stream raises the proxy's own error (the
    divert then aborts the client's stream; it never splices legacy on)."""
    body = Body(b"data: 1\n\n", httpx.RemoteProtocolError("peer closed"))

    async def go() -> None:
        reply = await target(Service(body=body)).call(call())
        with pytest.raises(UpstreamFailed):
            await joined(reply.parts)
        await reply.aclose()

    run(go)
    assert body.closed
