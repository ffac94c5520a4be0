"""An external, OpenAI-compatible orchestrator service at `orchestrator.endpoint`.

Layer: adapter (httpx). The request keeps its path and query, under the endpoint's base
URL, and its response is relayed as it streams. Requests carry a marker header saying
whether they are shadow or divert traffic, a `Via` header (the one hop where the proxy
announces itself, RFC 9110 §7.6.3) and W3C trace context naming the proxy's span (in
place of the client's own, which the proxy's trace continues); the legacy request's
credentials (headers and query parameters whose names look like one, by the same rule
that keeps them out of telemetry: `Authorization`, `x-api-key`, Azure's
`Ocp-Apim-Subscription-Key`, a gateway's `x-...-api-key`, `?key=`) are removed unless
`orchestrator.endpoint_forward_credentials` says they may go.

Like the legacy path (`proxy.forward`), it sends through the transport directly, with
parsed URLs cached: a shadow's own work runs on the loop the legacy path runs on, and
the client layers above the transport (auth, redirects, cookies) only add work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote_plus

import httpx

from proxy.config.proxy import Timeouts
from proxy.deadline import Deadline
from proxy.forward import upstream_url
from proxy.headers import REQUEST_ID_MARKER, RawHeaders, upstream_request_headers
from proxy.orchestrator.target import OrchestratorFailed, TargetCall, TargetReply
from proxy.routing import Upstream
from proxy.telemetry.redaction import is_sensitive_name
from proxy.transport import timeout_extension, upstream_errors

ROLE_HEADER = b"x-llm-shadow-role"
VIA = (b"via", b"1.1 llm-shadow")
TRACE_CONTEXT = frozenset({b"traceparent", b"tracestate"})


class ExternalTarget:
    """An OpenAI-compatible orchestrator service: the request keeps its path and query,
    under the endpoint's base URL, and its response is relayed as it streams."""

    name = "external"

    def __init__(self, endpoint: str, transport: httpx.AsyncBaseTransport,
                 timeouts: Timeouts, *, forward_credentials: bool = False):
        self.endpoint = endpoint.rstrip("/")
        self.transport = transport
        self.timeouts = timeouts
        self.forward_credentials = forward_credentials
        self.host = Upstream.of(self.endpoint).netloc

    def supports(self, api: object) -> bool:
        return True

    def headers_for(self, call: TargetCall) -> RawHeaders:
        headers = upstream_request_headers(call.client_headers)
        if not self.forward_credentials:
            headers = [(name, value) for name, value in headers
                       if not is_sensitive_name(name.decode("latin-1"))]
        if call.trace_headers:  # the proxy's span is the parent: one traceparent only
            headers = [(name, value) for name, value in headers
                       if name not in TRACE_CONTEXT]
        headers += [(ROLE_HEADER, call.role.encode()),
                    (REQUEST_ID_MARKER, call.request_id.encode("latin-1")), VIA]
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

    async def call(self, call: TargetCall, deadline: Deadline | None = None) -> TargetReply:
        """The service's reply, headers read; its body streams from `parts`. The caller's
        own guard enforces `deadline` (one budget for headers and body together)."""
        url = self.endpoint + call.destination.path
        query = self.query_for(call.destination.query)
        if query:
            url += "?" + query
        request = httpx.Request(call.method, upstream_url(url), headers=self.headers_for(call),
                                content=call.body,
                                extensions={"timeout": timeout_extension(self.timeouts)})
        try:
            with upstream_errors(self.host):
                response = await self.transport.handle_async_request(request)
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
