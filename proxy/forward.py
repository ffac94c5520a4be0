"""The legacy path: send the client's request to its configured upstream and stream the
answer back byte for byte.

Layer: adapter (httpx + ASGI). Response bytes are relayed as they arrive (`aiter_raw`,
never `aread`), so SSE events reach the client one by one and compressed bodies stay
consistent with their headers. Failures before the response started become an error
response; after it started they abort the client's connection, so a truncated answer can
never look complete. A client whose connection breaks while the answer streams is
`ClientGone`, never taken for an upstream failure. The upstream response is closed in
`finally`, whatever happened, so its pool slot always returns.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator

import httpx

from proxy.asgi import Send
from proxy.body import ClientGone
from proxy.errors import ProxyError
from proxy.exchange import Exchange
from proxy.headers import RawHeaders, client_response_headers, tagged
from proxy.inject import UsageStripper
from proxy.tee import Tee
from proxy.transport import PoolGate, timeout_extension, upstream_errors

Content = bytes | AsyncIterator[bytes]


@functools.lru_cache(maxsize=1024)
def upstream_url(url: str) -> httpx.URL:
    """Parsed upstream URLs, cached: LLM clients call a handful of distinct paths, and
    parsing was a tenth of the proxy's CPU time per request (bench/overhead.py)."""
    return httpx.URL(url)


class UpstreamAborted(Exception):
    """The upstream failed after the response started; the client's stream is aborted."""


class Forwarder:
    """Sends through the transport directly: the client layers above it (auth, redirects,
    cookies, default headers) would only add work and headers a transparent proxy must not
    add."""

    def __init__(self, transport: httpx.AsyncBaseTransport, gate: PoolGate,
                 request_id_header: bytes = b"x-request-id"):
        self.transport = transport
        self.gate = gate
        self.request_id_header = request_id_header

    async def exchange(
        self,
        record: Exchange,
        headers: RawHeaders,
        content: Content,
        send: Send,
        tee: Tee | None = None,
        rewrite: UsageStripper | None = None,
    ) -> None:
        """Forward one request to its destination and relay the response; raises
        `ProxyError` only while nothing has been sent to the client yet. With `rewrite`
        (opt-in usage injection) the client gets the rewritten stream while the tee keeps
        the upstream's bytes."""
        destination = record.destination
        host = destination.upstream.netloc
        timeouts = destination.route.timeouts
        request = httpx.Request(
            record.method, upstream_url(destination.url), headers=headers, content=content,
            extensions={"timeout": timeout_extension(timeouts)},
        )
        async with self.gate.slot(timeouts.pool):
            with upstream_errors(host):
                response = await self.transport.handle_async_request(request)
            try:
                await self._relay(response, send, record, tee, host, rewrite)
            finally:
                await response.aclose()

    async def _relay(
        self, response: httpx.Response, send: Send, record: Exchange, tee: Tee | None,
        host: str, rewrite: UsageStripper | None,
    ) -> None:
        headers = tagged(client_response_headers(response.headers.raw), record.request_id,
                         self.request_id_header)
        if rewrite is not None:
            headers = rewrite.start(headers)
        record.status = response.status_code
        record.response_headers = headers
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": headers})
        try:
            with upstream_errors(host):
                async for chunk in response.aiter_raw():
                    if record.first_byte_at is None:
                        record.first_byte_at = time.monotonic()
                    if tee is not None:
                        tee.feed(chunk)
                    if rewrite is not None:
                        chunk = rewrite.feed(chunk)
                    try:
                        await send({"type": "http.response.body", "body": chunk,
                                    "more_body": True})
                    except OSError as exc:  # the client's connection, not the upstream's
                        raise ClientGone() from exc
        except ProxyError as exc:
            record.aborted = True
            record.error_type = exc.code
            raise UpstreamAborted(exc.message) from exc
        record.completed = True
        if record.first_byte_at is None:  # an empty body: its first byte is its end
            record.first_byte_at = time.monotonic()
        tail = rewrite.close() if rewrite is not None else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})
