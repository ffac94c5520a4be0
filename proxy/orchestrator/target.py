"""The orchestrator as the proxy calls it for shadow and divert: the built-in pipeline in
this process, or an external OpenAI-compatible orchestrator at `orchestrator.endpoint`.

Layer: adapter. Both targets take the same `TargetCall` and give back a `TargetReply`
whose status and headers are known before any byte is sent to a client, so a divert can
still fall back to legacy when the call fails (`OrchestratorFailed`, with a reason that
goes on traces and counters). Requests to an external orchestrator carry a marker header
saying whether they are shadow or divert traffic, a `Via` header (the one hop where the
proxy announces itself, RFC 9110 §7.6.3) and W3C trace context; the legacy request's
credentials are removed unless the configuration says they may go.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import unquote_plus

import httpx

from proxy.config.proxy import Timeouts
from proxy.headers import RawHeaders, upstream_request_headers, without_credentials
from proxy.orchestrator.conversation import wire_format_for
from proxy.orchestrator.pipeline import Pipeline
from proxy.orchestrator.request import LiveSettings, OrchestratorRequest
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.telemetry.redaction import is_sensitive_name
from proxy.transport import timeout_extension, upstream_errors

Role = Literal["shadow", "divert"]

ROLE_HEADER = b"x-llm-shadow-role"
REQUEST_ID_HEADER = b"x-llm-shadow-request-id"
VIA = (b"via", b"1.1 llm-shadow")


class OrchestratorFailed(Exception):
    """The orchestrator could not answer before the first byte; `reason` is a code
    (timeout, error, low_confidence, failed:<why>, status_502, unsupported_endpoint)."""

    def __init__(self, reason: str, answer: OrchestratorAnswer | None = None):
        super().__init__(reason)
        self.reason = reason
        self.answer = answer


@dataclass(frozen=True)
class TargetCall:
    role: Role
    provider: str
    path: str
    query: bytes
    method: str
    body: bytes
    payload: Mapping[str, Any] | None
    request_id: str
    client_headers: Sequence[tuple[bytes, bytes]]
    trace_headers: Sequence[tuple[bytes, bytes]] = ()
    live: LiveSettings = field(default_factory=LiveSettings)
    task_hint: str | None = None
    capture_content: bool = False

    @property
    def stream(self) -> bool:
        return bool(self.payload and self.payload.get("stream"))


@dataclass
class TargetReply:
    status: int
    headers: RawHeaders
    parts: AsyncIterator[bytes]
    answer: OrchestratorAnswer | None = None
    _close: Any = None

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()


class Target(Protocol):
    name: str

    def supports(self, provider: str, path: str) -> bool: ...

    async def call(self, call: TargetCall) -> TargetReply: ...


class InProcessTarget:
    """The built-in pipeline: it answers whole, then the answer is rendered in the
    client's wire format (SSE events when streaming was asked for)."""

    name = "in-process"

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def supports(self, provider: str, path: str) -> bool:
        return wire_format_for(provider, path) is not None

    async def call(self, call: TargetCall) -> TargetReply:
        wire = wire_format_for(call.provider, call.path)
        if wire is None or call.payload is None:
            raise OrchestratorFailed("unsupported_endpoint")
        answer = await self.pipeline.answer(OrchestratorRequest(
            body=call.payload, wire_format=wire, request_id=call.request_id,
            stream=call.stream, task_hint=call.task_hint, live=call.live,
            capture_content=call.capture_content,
            trace_headers=tuple((k.decode("latin-1"), v.decode("latin-1"))
                                for k, v in call.trace_headers),
        ))
        if not answer.ok:
            raise OrchestratorFailed(_failure_reason(answer), answer)
        rendered = self.pipeline.render(answer, wire, call.stream)
        return TargetReply(rendered.status, list(rendered.headers), _iterate(rendered.parts),
                           answer=answer)


def _failure_reason(answer: OrchestratorAnswer) -> str:
    if answer.status == "low_confidence":
        return "low_confidence"
    return f"failed:{answer.reason}" if answer.reason else "failed"


async def _iterate(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class ExternalTarget:
    """An OpenAI-compatible orchestrator service: the request keeps its path and query,
    under the endpoint's base URL, and its response is relayed as it streams."""

    name = "external"

    def __init__(self, endpoint: str, client: httpx.AsyncClient, timeouts: Timeouts, *,
                 forward_credentials: bool = False):
        self.endpoint = endpoint.rstrip("/")
        self.client = client
        self.timeouts = timeouts
        self.forward_credentials = forward_credentials
        self.host = self.endpoint.split("://", 1)[-1].split("/", 1)[0]

    def supports(self, provider: str, path: str) -> bool:
        return True

    def headers_for(self, call: TargetCall) -> RawHeaders:
        headers = upstream_request_headers(call.client_headers)
        if not self.forward_credentials:
            headers = without_credentials(headers)
        headers += [(ROLE_HEADER, call.role.encode()),
                    (REQUEST_ID_HEADER, call.request_id.encode("latin-1")), VIA]
        headers += list(call.trace_headers)
        return headers

    def query_for(self, query: bytes) -> str:
        """The client's query string, without credential-like parameters (`?key=...`)
        unless credentials may go to the orchestrator."""
        text = query.decode("latin-1")
        if self.forward_credentials or not text:
            return text
        kept = [part for part in text.split("&")
                if not is_sensitive_name(unquote_plus(part.split("=", 1)[0]))]
        return "&".join(kept)

    async def call(self, call: TargetCall) -> TargetReply:
        url = self.endpoint + call.path
        query = self.query_for(call.query)
        if query:
            url += "?" + query
        request = httpx.Request(call.method, url, headers=self.headers_for(call),
                                content=call.body,
                                extensions={"timeout": timeout_extension(self.timeouts)})
        try:
            with upstream_errors(self.host):
                response = await self.client.send(request, stream=True)
        except Exception as exc:
            raise OrchestratorFailed(_error_reason(exc)) from exc
        if response.status_code >= 400:
            await response.aclose()
            raise OrchestratorFailed(f"status_{response.status_code}")
        return TargetReply(response.status_code, list(response.headers.raw),
                           _raw(response), _close=response.aclose)


def _error_reason(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return "timeout" if code == "upstream_timeout" else "error"


async def _raw(response: httpx.Response) -> AsyncIterator[bytes]:
    with upstream_errors("orchestrator"):
        async for chunk in response.aiter_raw():
            yield chunk
