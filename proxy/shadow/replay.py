"""A legacy call made in the background: the second legacy call of a noise sample, and
the legacy call that runs as the shadow of a divert.

Layer: adapter (httpx). It goes to the route's configured upstream exactly like the
legacy path (same headers, same credentials: it is the legacy service's own call,
repeated), but on the shadow client and pool, with the shadow deadline, no retries, and
a bounded read of the answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx

from proxy.exchange import Captured
from proxy.headers import RawHeaders
from proxy.routing import Destination
from proxy.transport import timeout_extension, upstream_errors


async def capture(parts: AsyncIterator[bytes], status: int, headers: RawHeaders,
                  started: float, cap: int) -> Captured:
    """Read an answer to its end, keeping at most `cap` bytes."""
    body = bytearray()
    truncated = False
    first = None
    async for chunk in parts:
        if first is None:
            first = time.monotonic()
        room = cap - len(body)
        if len(chunk) > room:
            body += chunk[:max(room, 0)]
            truncated = True
        else:
            body += chunk
    return Captured(status, list(headers), bytes(body), truncated, started, first,
                    time.monotonic())


class LegacyReplay:
    def __init__(self, client: httpx.AsyncClient, cap: int):
        self.client = client
        self.cap = cap

    async def call(self, destination: Destination, method: str, headers: RawHeaders,
                   body: bytes) -> Captured:
        started = time.monotonic()
        request = httpx.Request(method, destination.url, headers=headers, content=body,
                                extensions={"timeout": timeout_extension(
                                    destination.route.timeouts)})
        with upstream_errors(destination.upstream.netloc):
            response = await self.client.send(request, stream=True)
            try:
                return await capture(response.aiter_raw(), response.status_code,
                                     response.headers.raw, started, self.cap)
            finally:
                await response.aclose()
