"""The one way this project opens a Redis connection pool.

Layer: adapter (redis-py). Every client has explicit connect and socket timeouts, no
hidden retries (redis-py 8 retries by default, which would stretch a failure into tens of
seconds; checklist §3.4), no background health checks, TCP keepalive and RESP2. Callers
size the pool for their own concurrency and handle failures themselves.

`memory://` is an in-process store (fakeredis, one per process, Lua and pub/sub
included) for a single process that has no Redis to talk to: `llm-shadow demo` on a
laptop. Every code path stays the one that runs against a real Redis; nothing is shared
with other processes, so it is never for production.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

MEMORY_URL = "memory://"
_memory_server: Any = None


def redis_client(url: str, *, connect_timeout: float, socket_timeout: float,
                 max_connections: int = 8) -> Redis:
    if url.startswith(MEMORY_URL):
        return _in_process()
    return Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        max_connections=max_connections,
        protocol=2,
    )


def _in_process() -> Redis:
    global _memory_server
    from fakeredis import FakeServer
    from fakeredis.aioredis import FakeRedis

    if _memory_server is None:
        _memory_server = FakeServer()
    client: Redis = FakeRedis(server=_memory_server)
    return client
