"""The proxy port's endpoint driven as an ASGI app: a scripted `receive`, a recording
`send`, and everything else real: the app from `create_app` on a real `Runtime`
(`memory://` Redis), the legacy upstream a real loopback server, the orchestrator the
in-process pipeline calling fake model servers. The one addition is at the handler's
`Recorder` seam: a ledger that notes each exchange handed over (and whether its trace had
ended by then) and passes it on to the runtime's recorder.

What the real-process suites (test_streaming, test_limits, test_disconnects, traffic/)
show from outside, this shows from inside: what lands on the exchange."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from pydantic import SecretStr

from proxy.app import create_app
from proxy.config import Settings, parse_config
from proxy.exchange import Exchange
from proxy.forward import UpstreamAborted
from proxy.handler import ProxyEndpoint, Recorder
from proxy.runtime import Runtime
from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.proxyproc import routes_to
from tests.fakes.servers import async_wait_for, free_port
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
CHAT = "/openai/v1/chat/completions"
BODY = orjson.dumps({"model": "gpt-4o-mini",
                     "messages": [{"role": "user", "content": "Say hello"}]})
STREAM_BODY = orjson.dumps({"model": "gpt-4o-mini", "stream": True,
                            "messages": [{"role": "user", "content": "Say hello"}]})
ENVELOPE = {"message", "type", "param", "code"}


@pytest.fixture(autouse=True)
def no_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")


@pytest.fixture(scope="module")
def hanging_models() -> Iterator[ModelFleet]:
    """An orchestrator model that never answers: a shadow stays running until cancelled."""
    with ModelFleet({"thinker": ModelBehaviour(hang=True)}) as fleet:
        yield fleet


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(60):
            return await make()
    return asyncio.run(main())


class Ledger:
    """The handler's `Recorder` seam: notes each exchange as it is handed over, and
    whether its trace had ended by then; then the runtime's recorder gets it."""

    def __init__(self, inner: Recorder):
        self.inner = inner
        self.entries: list[tuple[Exchange, bool]] = []

    def record(self, exchange: Exchange) -> None:
        self.entries.append((exchange, exchange.trace.ended))
        self.inner.record(exchange)

    @property
    def exchanges(self) -> list[Exchange]:
        return [exchange for exchange, _ in self.entries]

    def only(self) -> Exchange:
        assert len(self.entries) == 1, self.entries
        exchange, ended = self.entries[0]
        assert ended, "the trace must be ended before the exchange is recorded"
        return exchange


@dataclass
class Proxy:
    runtime: Runtime
    app: ProxyEndpoint
    ledger: Ledger


def settings_for(upstream_url: str, **sections: Any) -> Settings:
    closed = free_port()
    routes = [*routes_to(upstream_url),
              {"prefix": "/down", "upstream": f"http://127.0.0.1:{closed}",
               "timeouts": {"connect": 1.0, "read": 5.0, "write": 5.0, "pool": 1.0}},
              {"prefix": "/small", "upstream": upstream_url, "max_body_bytes": 64}]
    data: dict[str, Any] = {"proxy": {"routes": routes, "body_read_timeout": 5.0},
                            "redis": {"url": "memory://",
                                      "key_prefix": f"h-{uuid.uuid4().hex[:8]}"},
                            **sections}
    # Each model's api_key_env is set, as in production (a model without its key is
    # never selected).
    keys = {entry["name"]: SecretStr(f"sk-{entry['name']}") for entry in data.get("models", ())}
    return Settings(config=parse_config(data, "<test>"), source="<test>", base_dir=REPO,
                    model_keys=keys)


@contextlib.asynccontextmanager
async def proxy_on(settings: Settings) -> AsyncIterator[Proxy]:
    async with Runtime(settings) as runtime:
        app = create_app(runtime)
        ledger = Ledger(app.recorder)
        app.recorder = ledger
        await async_wait_for(lambda: runtime.flags.current.state == "ready",
                             message="the flags were read")
        yield Proxy(runtime, app, ledger)


@dataclass
class Client:
    """One request as the ASGI server presents it: `receive` gives the body, then blocks
    (the client is still connected) until the test says the client went away."""

    incoming: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def disconnect(self) -> None:
        self.incoming.put_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int:
        assert self.sent and self.sent[0]["type"] == "http.response.start"
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    @property
    def complete(self) -> bool:
        return bool(self.sent) and self.sent[-1].get("more_body") is False

    def error(self) -> dict[str, Any]:
        payload = orjson.loads(self.body)
        assert set(payload["error"]) == ENVELOPE
        return dict(payload["error"])


def scope(method: str, path: str, headers: Sequence[tuple[bytes, bytes]] = (),
          query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8787"), *headers],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8787)}


def client_with(body: bytes | Sequence[bytes]) -> Client:
    client = Client()
    parts = [body] if isinstance(body, bytes) else list(body)
    for index, part in enumerate(parts):
        client.incoming.put_nowait({"type": "http.request", "body": part,
                                    "more_body": index < len(parts) - 1})
    return client


async def call(proxy: Proxy, method: str, path: str, body: bytes | Sequence[bytes] = b"",
               headers: Sequence[tuple[bytes, bytes]] = (), query: bytes = b"",
               client: Client | None = None) -> Client:
    client = client or client_with(body)
    framing: list[tuple[bytes, bytes]] = []
    if isinstance(body, bytes):
        framing = [(b"content-length", str(len(body)).encode())]
    elif body:
        framing = [(b"transfer-encoding", b"chunked")]
    await proxy.app(scope(method, path, [(b"content-type", b"application/json"), *framing,
                                         *headers], query), client.receive, client.send)
    return client


# --- the legacy path ----------------------------------------------------------------

def test_the_legacy_answer_is_relayed_and_recorded(upstream: FakeUpstream,
                                                   upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = await call(proxy, "POST", CHAT, BODY,
                                headers=[(b"authorization", b"Bearer sk-1"),
                                         (b"x-llm-shadow-role", b"divert")],
                                query=b"api-version=1")
            assert client.status == 200 and client.complete
            assert client.headers[b"content-type"] == b"application/json"
            answer = orjson.loads(client.body)
            assert answer["choices"][0]["message"]["content"] == "Answer to: Say hello"
            seen = upstream.requests[0]
            assert (seen.path, seen.query, seen.body) == ("/v1/chat/completions",
                                                          "api-version=1", BODY)
            assert seen.header("authorization") == "Bearer sk-1"
            assert seen.header("x-llm-shadow-role") is None  # markers are the proxy's own
            record = proxy.ledger.only()
            assert (record.method, record.status, record.answered_by) == ("POST", 200,
                                                                          "legacy")
            assert record.completed and not record.aborted and not record.client_gone
            assert record.response_body == client.body  # the bounded copy, whole
            assert record.request_body == BODY
            assert record.first_byte_at is not None and record.finished_at is not None
            assert proxy.runtime.load.in_flight == 0
    run(go)


def test_an_upstream_error_status_passes_through(upstream: FakeUpstream,
                                                 upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = await call(proxy, "POST", CHAT, BODY, headers=[(b"x-fake-status", b"429")])
            assert client.status == 429
            assert orjson.loads(client.body)["error"]["code"] == "429"  # the upstream's body
            record = proxy.ledger.only()
            assert record.status == 429 and record.error_type is None
    run(go)


def test_a_path_that_is_not_an_llm_call_is_only_relayed(upstream: FakeUpstream,
                                                        upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = await call(proxy, "GET", "/openai/v1/models")
            assert client.status == 200 and b"fake-model" in client.body
            record = proxy.ledger.only()
            assert not record.eligible
            assert record.response_body is None and record.request_body == b""
            assert (record.decision.action, record.decision.reason) == ("legacy",
                                                                        "not_eligible")
            assert record.shadow_skip == "not_eligible"
    run(go)


def test_streamed_events_reach_the_client_as_they_arrive(upstream: FakeUpstream,
                                                         upstream_url: str) -> None:
    """The upstream sends one event and then thinks forever: that event reaches the
    client's `send` at once; when the client goes away the request ends as client_gone
    and the upstream sees its connection closed."""
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = client_with(STREAM_BODY)
            task = asyncio.create_task(call(proxy, "POST", CHAT, STREAM_BODY,
                                            headers=[(b"x-fake-hang", b"body")],
                                            client=client))
            await async_wait_for(lambda: len(client.sent) >= 2, message="the first event")
            assert client.headers[b"content-type"].startswith(b"text/event-stream")
            assert client.sent[1]["body"].startswith(b"data: ")
            assert proxy.runtime.load.in_flight == 1
            assert proxy.ledger.entries == []  # not recorded before it ends
            client.disconnect()
            await task
            assert not client.complete
            record = proxy.ledger.only()
            assert record.client_gone and not record.completed
            assert proxy.runtime.load.in_flight == 0
            await async_wait_for(lambda: upstream.requests[0].disconnected,
                                 message="the upstream saw the client go")
    run(go)


def test_a_client_gone_before_the_upstream_answered_is_client_gone(
        upstream: FakeUpstream, upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = client_with(BODY)
            client.disconnect()  # right after its body: the upstream is still thinking
            await call(proxy, "POST", CHAT, BODY, headers=[(b"x-fake-hang", b"headers")],
                       client=client)
            assert client.sent == []
            record = proxy.ledger.only()
            assert record.client_gone and record.status is None
            await async_wait_for(lambda: upstream.requests and upstream.requests[0].disconnected,
                                 message="the upstream saw the request abandoned")
    run(go)


# --- the decision on the exchange ---------------------------------------------------

def test_the_decision_and_the_flag_view_it_read_are_on_the_exchange(
        upstream: FakeUpstream, upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            await call(proxy, "POST", CHAT, BODY)
            record = proxy.ledger.only()
            assert record.eligible
            assert (record.decision.action, record.decision.reason) == ("legacy",
                                                                        "outside_bands")
            assert record.decision.bucket is not None
            assert (record.view.version, record.view.state) == (0, "ready")
            assert record.shadow_skip == "sampled_out"
            assert proxy.runtime.decisions.total("legacy") == 1  # counted for /flagz

            written = await proxy.runtime.flag_service.writer.update(
                {"kill": True}, actor="test", reason="handler test")
            await async_wait_for(lambda: proxy.runtime.flags.current.version
                                 == written.version, message="the kill applied")
            await call(proxy, "POST", CHAT, BODY)
            killed = proxy.ledger.exchanges[1]
            assert (killed.decision.action, killed.decision.reason) == ("legacy", "kill")
            assert killed.view.version == written.version
            assert killed.shadow_skip == "kill"
    run(go)


def test_the_bucket_header_keeps_a_conversation_in_one_bucket(
        upstream: FakeUpstream, upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            for request_id in (b"a", b"b"):
                await call(proxy, "POST", CHAT, BODY,
                           headers=[(b"x-conversation-id", b"conv-7"),
                                    (b"x-request-id", request_id)])
            first, second = proxy.ledger.exchanges
            assert (first.request_id, second.request_id) == ("a", "b")
            assert first.decision.bucket == second.decision.bucket
    run(go)


# --- failures: one record each, after the trace ended ---------------------------------

def test_an_unreachable_upstream_is_a_502_envelope_and_one_record(upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = await call(proxy, "POST", "/down/v1/chat/completions", BODY)
            assert client.status == 502 and client.complete
            assert client.error()["code"] == "upstream_unreachable"
            record = proxy.ledger.only()
            assert (record.status, record.error_type) == (502, "upstream_unreachable")
    run(go)


def test_an_upstream_cut_mid_stream_aborts_and_is_recorded_once(
        upstream: FakeUpstream, upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = client_with(STREAM_BODY)
            with pytest.raises(UpstreamAborted):  # the server then drops the connection
                await call(proxy, "POST", CHAT, STREAM_BODY,
                           headers=[(b"x-fake-reset-after", b"2")], client=client)
            assert client.status == 200 and not client.complete
            record = proxy.ledger.only()
            assert record.aborted and not record.completed
            assert record.error_type == "upstream_unreachable"
    run(go)


def test_a_body_over_the_limit_while_streaming_in_is_413_and_one_record(
        upstream: FakeUpstream, upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = await call(proxy, "POST", "/small/v1/chat/completions",
                                [b"x" * 40, b"x" * 40])
            assert client.status == 413 and client.headers[b"connection"] == b"close"
            assert client.error()["code"] == "body_too_large"
            record = proxy.ledger.only()
            assert (record.status, record.error_type) == (413, "body_too_large")
            assert not any(r.body.startswith(b"x" * 80) for r in upstream.requests)
    run(go)


def test_a_client_gone_mid_upload_is_client_gone_and_nothing_complete_goes_up(
        upstream: FakeUpstream, upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = Client()
            client.incoming.put_nowait({"type": "http.request", "body": b'{"model": ',
                                        "more_body": True})
            client.disconnect()
            await call(proxy, "POST", CHAT, [b"unused"], client=client)
            assert client.sent == []
            record = proxy.ledger.only()
            assert record.client_gone and record.status is None
            assert upstream.requests == []  # never a half body passed off as whole
    run(go)


@pytest.mark.parametrize(("method", "path", "headers", "status", "code"), [
    ("TRACE", CHAT, [], 405, "method_not_allowed"),
    ("POST", "/nowhere/v1/chat/completions", [], 404, "not_found"),
    ("POST", "/openai/../admin", [], 400, "invalid_request"),
    ("POST", "/small/v1/chat/completions", [(b"content-length", b"65")], 413,
     "body_too_large"),
    ("POST", CHAT, [(b"content-length", b"1"), (b"content-length", b"2")], 400,
     "bad_framing"),
])
def test_ingress_refusals_get_the_envelope_and_record_nothing(
        upstream: FakeUpstream, upstream_url: str, method: str, path: str,
        headers: list[tuple[bytes, bytes]], status: int, code: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = client_with(b"")
            await proxy.app(scope(method, path, headers), client.receive, client.send)
            assert client.status == status and client.complete
            assert client.error()["code"] == code
            assert client.headers[b"content-type"] == b"application/json"
            assert proxy.ledger.entries == []
            assert upstream.requests == []
            assert proxy.runtime.load.in_flight == 0
    run(go)


def test_websockets_are_closed_and_lifespan_is_ignored(upstream_url: str) -> None:
    async def go() -> None:
        async with proxy_on(settings_for(upstream_url)) as proxy:
            client = Client()
            await proxy.app({"type": "websocket", "path": "/openai", "headers": []},
                            client.receive, client.send)
            assert client.sent == [{"type": "websocket.close", "code": 1008}]
            lifespan = Client()
            await proxy.app({"type": "lifespan"}, lifespan.receive, lifespan.send)
            assert lifespan.sent == []
            assert proxy.ledger.entries == []
    run(go)


# --- shadow -------------------------------------------------------------------------

def test_a_shadow_is_launched_and_the_legacy_answer_never_waits_for_it(
        upstream: FakeUpstream, upstream_url: str, hanging_models: ModelFleet) -> None:
    """The orchestrator's model never answers; the client still gets the whole legacy
    answer while the shadow is running, and shutdown cancels the shadow."""
    settings = settings_for(upstream_url, traffic={"shadow_percent": 100},
                            models=hanging_models.entries())
    thinker = hanging_models["thinker"]
    asked_before = len(thinker.requests)

    async def go() -> None:
        async with proxy_on(settings) as proxy:
            client = await call(proxy, "POST", CHAT, BODY)
            assert client.status == 200 and client.complete
            record = proxy.ledger.only()
            assert (record.decision.action, record.decision.reason) == ("shadow",
                                                                        "shadow_band")
            assert record.shadow_skip is None
            assert len(proxy.runtime.shadow.tasks) == 1  # still running: nobody waited
            await async_wait_for(lambda: len(thinker.requests) > asked_before,
                                 message="the shadow reached the orchestrator's model")
            shadowed = orjson.loads(thinker.requests[-1].body)
            assert shadowed["messages"][-1]["content"] == "Say hello"
        assert not proxy.runtime.shadow.tasks

    run(go)


def test_a_body_over_the_shadow_limit_is_not_shadowed(
        upstream: FakeUpstream, upstream_url: str, hanging_models: ModelFleet) -> None:
    big = orjson.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "x" * 300}]})
    settings = settings_for(upstream_url, traffic={"shadow_percent": 100},
                            shadow={"max_body_bytes": 100},
                            models=hanging_models.entries())

    async def go() -> None:
        async with proxy_on(settings) as proxy:
            client = await call(proxy, "POST", CHAT, [big[:150], big[150:]])
            assert client.status == 200
            record = proxy.ledger.only()
            assert record.decision.action == "shadow"
            assert record.shadow_skip == "body_too_large"
            assert proxy.runtime.shadow.skipped["body_too_large"] == 1
            assert not proxy.runtime.shadow.tasks
            assert upstream.requests[0].body == big  # legacy got the whole body
    run(go)
