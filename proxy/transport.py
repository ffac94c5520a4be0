"""HTTP clients for upstream calls, and the one place where their exceptions are mapped.

Layer: adapter. Everything else speaks httpx's API (`httpx.Request`, `httpx.Response`,
`aiter_raw`, transports); which transport sits under it is chosen here, by measurement
(`bench/overhead.py`): httpx's own pool serialises badly under concurrency (httpx
#3215; in our benchmark it gave a quarter of the aiohttp transport's throughput at 100
concurrent requests), so the default is `AiohttpTransport`, an httpx transport over
aiohttp's connection pool. It is written here rather than taken from `httpx-aiohttp`
because a transparent proxy needs three things that package does not do: repeated
request headers stay separate lines (it merges them), the request target is sent exactly
as the client wrote it (it re-quotes paths and queries, e.g. `%7E` becomes `~`), and
failures keep their real cause (it maps a server disconnect to `ConnectTimeout`).

Every client, whatever its transport:
- `trust_env=False`: a pod whose `HTTPS_PROXY` points at this sidecar must not loop;
- no redirects followed, no cookies kept, no default headers added (the legacy path sends
  requests through the transport directly, so nothing is added to what the client sent);
- explicit timeouts per request and explicit pool limits;
- the legacy, shadow and orchestrator clients are separate instances with separate pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import httpx
import yarl
from multidict import CIMultiDict

from proxy.config.proxy import Timeouts
from proxy.errors import ProxyError, UpstreamFailed, UpstreamTimeout

TransportKind = Literal["aiohttp", "httpx"]


@dataclass(frozen=True)
class PoolLimits:
    max_connections: int
    max_keepalive_connections: int
    keepalive_expiry: float


def build_transport(kind: TransportKind, limits: PoolLimits) -> httpx.AsyncBaseTransport:
    if kind == "aiohttp":
        return AiohttpTransport(limits)
    return httpx.AsyncHTTPTransport(
        trust_env=False,
        retries=0,
        limits=httpx.Limits(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        ),
    )


def build_client(kind: TransportKind, limits: PoolLimits) -> httpx.AsyncClient:
    """A client for one purpose (legacy, shadow, orchestrator); never shared across them."""
    return httpx.AsyncClient(
        transport=build_transport(kind, limits),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(30.0),
        cookies=_no_cookies(),
    )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp connection pool (see the module docstring)."""

    def __init__(self, limits: PoolLimits):
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry,
                ssl=ssl.create_default_context(),
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        headers = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() != b"transfer-encoding"
        )
        response = await self._session_for_loop().request(
            request.method,
            yarl.URL(str(request.url), encoded=True),
            headers=headers,
            data=_request_data(request),
            allow_redirects=False,
            compress=None,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=timeout.get("pool"),
                sock_connect=timeout.get("connect"),
                sock_read=timeout.get("read"),
            ),
        )
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode("latin-1")},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _request_data(request: httpx.Request) -> Any:
    try:
        content = request.content
    except httpx.RequestNotRead:
        return request.stream
    return content or None


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse):
        self._response = response
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk
        self._finished = True

    async def aclose(self) -> None:
        # A response read to its end returns its connection to the pool; one abandoned
        # midway is closed, since the connection is in an unknown state.
        if self._finished:
            self._response.release()
        else:
            self._response.close()


def _no_cookies() -> httpx.Cookies:
    policy = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    return httpx.Cookies(http.cookiejar.CookieJar(policy=policy))


def timeout_extension(timeouts: Timeouts) -> dict[str, float]:
    """The per-request timeout in the form httpx transports read from `extensions`."""
    return {
        "connect": timeouts.connect,
        "read": timeouts.read,
        "write": timeouts.write,
        "pool": timeouts.pool,
    }


class PoolGate:
    """Bounds in-flight upstream requests of one client, so that pool exhaustion is a
    clear, prompt 503 on every transport (a queued request waits at most `pool` seconds)
    and a cancelled request always returns its slot (see httpcore #1093)."""

    def __init__(self, size: int):
        self.size = size
        self._free = asyncio.Semaphore(size)
        self.in_use = 0

    @contextlib.asynccontextmanager
    async def slot(self, timeout: float):  # type: ignore[no-untyped-def]
        if self._free.locked():
            try:
                # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow
                # a cancel (a client that went away) that races with the acquire.
                async with asyncio.timeout(timeout):
                    await self._free.acquire()
            except TimeoutError:
                raise ProxyError(
                    "the upstream connection pool is exhausted", status=503,
                    code="pool_exhausted",
                ) from None
        else:
            await self._free.acquire()
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
            self._free.release()


@contextlib.contextmanager
def upstream_errors(host: str) -> Iterator[None]:
    """Map transport exceptions to the proxy's own errors; messages name the upstream host
    only (never the URL, whose query string may carry a key)."""
    try:
        yield
    except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
        raise map_exception(exc, host) from exc


def map_exception(exc: BaseException, host: str) -> ProxyError:
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) else exc
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return UpstreamFailed(f"upstream {host} closed the connection")
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"timed out connecting to upstream {host}")
    if isinstance(cause, aiohttp.SocketTimeoutError):
        return UpstreamTimeout(f"timed out waiting for upstream {host}")
    if isinstance(cause, aiohttp.ClientConnectorError):
        return UpstreamFailed(f"cannot connect to upstream {host}")
    if isinstance(cause, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return UpstreamFailed(f"upstream {host} sent a malformed response")
    if isinstance(cause, aiohttp.ClientError):
        return UpstreamFailed(f"upstream {host} failed")
    if isinstance(exc, httpx.PoolTimeout):
        return ProxyError("the upstream connection pool is exhausted", status=503,
                          code="pool_exhausted")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"timed out waiting for upstream {host}")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamFailed(f"cannot connect to upstream {host}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return UpstreamFailed(f"upstream {host} sent a malformed response")
    return UpstreamFailed(f"upstream {host} failed")
