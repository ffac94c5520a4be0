"""HTTP clients for upstream calls, and the one place where their exceptions are mapped.

Layer: adapter. Everything else speaks httpx's API (`httpx.Request`, `client.send`,
`aiter_raw`); which transport sits under it is chosen here, by measurement
(`bench/overhead.py`): httpx's own pool serialises badly under concurrency (httpx
#3215), so the default is the aiohttp transport from `httpx-aiohttp`. Either way:

- `trust_env=False`: a pod whose `HTTPS_PROXY` points at this sidecar must not loop;
- no redirects followed, no cookies kept, no default headers added (the proxy is
  transparent: requests are built directly and sent with `client.send`);
- explicit timeouts per request and explicit pool limits;
- the legacy, shadow and orchestrator clients are separate instances with separate pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from proxy.config.proxy import Timeouts
from proxy.errors import ProxyError, UpstreamFailed, UpstreamTimeout

TransportKind = Literal["aiohttp", "httpx"]


@dataclass(frozen=True)
class PoolLimits:
    max_connections: int
    max_keepalive_connections: int
    keepalive_expiry: float


def build_client(kind: TransportKind, limits: PoolLimits) -> httpx.AsyncClient:
    """A client for one purpose (legacy, shadow, orchestrator); never shared across them."""
    httpx_limits = httpx.Limits(
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
    )
    transport: httpx.AsyncBaseTransport
    if kind == "aiohttp":
        transport = AiohttpTransport(
            trust_env=False, limits=httpx_limits, client=lambda: _aiohttp_session(limits)
        )
    else:
        transport = httpx.AsyncHTTPTransport(trust_env=False, limits=httpx_limits, retries=0)
    client = httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(30.0),
        cookies=_no_cookies(),
    )
    return client


def _aiohttp_session(limits: PoolLimits) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=limits.max_connections,
        limit_per_host=0,
        keepalive_timeout=limits.keepalive_expiry,
        ssl=ssl.create_default_context(),
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )


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
                await asyncio.wait_for(self._free.acquire(), timeout)
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
