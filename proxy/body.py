"""Reading the client's request body from ASGI `receive`, once, bounded.

Layer: adapter (ASGI). The body is counted as it streams: over the route's limit is a
413 (before any read when `Content-Length` says so), a body that trickles in slower than
the read deadline is a 408, and a client that goes away mid-upload aborts the upstream
request instead of sending it a half body as if complete. A bounded copy (`keep`) is
kept for whoever needs the body afterwards (shadow, divert fallback, telemetry).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from proxy.asgi import Receive
from proxy.errors import ProxyError, RequestRejected, too_large


class ClientGone(Exception):
    """The client disconnected; nothing more can be sent to it."""


class RequestBody:
    def __init__(self, receive: Receive, *, limit: int, read_timeout: float, keep: int = 0):
        self._receive = receive
        self.limit = limit
        self.keep = keep
        self.size = 0
        self.complete = False
        # What stopped the body, when something did: the HTTP client that was consuming it
        # reports its own error, and the caller needs the real cause.
        self.failure: Exception | None = None
        self.copy = bytearray()
        self.copy_complete = True
        self._deadline = asyncio.get_running_loop().time() + read_timeout

    async def start(self, up_to: int = 0) -> bytes | AsyncIterator[bytes]:
        """The body to send upstream: the bytes themselves when the whole body arrived
        within `up_to` bytes (or in its first message: the common case for LLM calls, and
        the cheapest to forward), else an iterator that streams what was read and the
        rest as it arrives."""
        buffered = [await self._next()]
        size = len(buffered[0])
        while not self.complete and size < up_to:
            chunk = await self._next()
            buffered.append(chunk)
            size += len(chunk)
        if self.complete:
            return buffered[0] if len(buffered) == 1 else b"".join(buffered)
        return self._stream(b"".join(buffered))

    async def _stream(self, first: bytes) -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in self.chunks():
            yield chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives; may be iterated once."""
        while not self.complete:
            chunk = await self._next()
            if chunk:
                yield chunk

    async def read(self) -> bytes:
        """The whole body; only for bodies the caller knows are bounded by `limit`."""
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    async def _next(self) -> bytes:
        try:
            return self._take(await self._receive_in_time())
        except (RequestRejected, ClientGone) as exc:
            self.failure = exc
            raise

    async def _receive_in_time(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._receive()
        except TimeoutError:
            raise RequestRejected(
                "the request body was not received in time", status=408,
                code="request_timeout", close_connection=True,
            ) from None

    def _take(self, message: dict[str, Any]) -> bytes:
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk: bytes = message.get("body", b"")
        self.size += len(chunk)
        if self.size > self.limit:
            raise too_large(self.limit)
        if not message.get("more_body", False):
            self.complete = True
        if self.keep:
            room = self.keep - len(self.copy)
            if len(chunk) > room:
                self.copy_complete = False
                chunk_kept = chunk[:max(room, 0)]
            else:
                chunk_kept = chunk
            self.copy += chunk_kept
        elif chunk:  # nothing is kept: the copy (empty) is not the body
            self.copy_complete = False
        return chunk

    def kept(self) -> bytes | None:
        """The copy of the body, or None when it was not kept whole."""
        if not self.complete or not self.copy_complete:
            return None
        return bytes(self.copy)


def declared_length(value: bytes | None) -> int | None:
    """`Content-Length` as sent; malformed values are refused (RFC 9112 §6.3)."""
    if value is None:
        return None
    if not value.isdigit():
        raise RequestRejected("invalid Content-Length")
    return int(value)


__all__ = ["ClientGone", "ProxyError", "RequestBody", "declared_length"]
