"""The one way this project opens a Redis connection pool.

Layer: adapter (redis-py). Every client has explicit connect and socket timeouts, no
hidden retries (redis-py 8 retries by default, which would stretch a failure into tens of
seconds; checklist §3.4), no background health checks, TCP keepalive and RESP2. Callers
size the pool for their own concurrency and handle failures themselves.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def redis_client(url: str, *, connect_timeout: float, socket_timeout: float,
                 max_connections: int = 8) -> Redis:
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
