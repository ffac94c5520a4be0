"""The one way this project opens Redis: a single node, a primary found by Sentinel, a
Redis Cluster, or the in-process store.

Layer: adapter (redis-py). Every store, the CLI and the demo get their client here, from
the `redis` section of the configuration (`RedisSection`; a bare URL means a single
node), so every topology works for every store: flags, audit, hints, heartbeats, the
shadow budget, report aggregates, learned records and the ramp.

Client settings, the same in every mode: explicit connect and socket timeouts; no hidden
retries (redis-py 8 retries ten times with backoff by default, which would stretch a
failure into tens of seconds: callers retry on their own schedule, the flag watcher
within its stale/fail-safe timing), with the asyncio `Retry` class (the synchronous one
makes redis-py warn on every client); no background health checks; TCP keepalive;
RESP2. Callers size the pool for their own concurrency and handle failures through
`proxy.redisfailure`.

Topologies:

- single node (`redis://`, `rediss://`, `unix://`): `Redis.from_url`;
- Sentinel (`redis.sentinel`): the client asks the sentinels for the primary of
  `service_name` each time it opens a connection, so after a failover the next
  connection (the next poll, the next resubscribe) goes to the new primary; a primary
  that was demoted answers `READONLY`, which drops the connection too. Credentials,
  database and TLS of the data nodes come from `redis.url`; the sentinels' from
  `redis.sentinel`. Closing the client closes its sentinel connections;
- Cluster (`redis.cluster`): `RedisCluster` seeded by the URL's node; it follows
  `MOVED` redirections and refreshes its slot map after a connection error. Every key
  carries the hash tag of `RedisSection.keyspace`, so all of llm-shadow's keys live in
  one slot and every multi-key Lua script and pipeline runs on one node. Pub/sub hints
  use classic `PUBLISH`, which a cluster delivers on every node (see
  `proxy.flags.hints`), so `subscriber_nodes` lists the nodes a subscriber may use;
- `memory://`: an in-process fakeredis server (Lua and pub/sub included) shared by the
  clients of one process, for a single process with no Redis (`llm-shadow demo` on a
  laptop). Every code path is the one that runs against a real Redis; nothing is shared
  with other processes, so it is never for production.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import ConnectionPool, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from proxy.config.proxy import MEMORY_URL, RedisSection

__all__ = ["MEMORY_URL", "Client", "in_process", "node_client", "redis_client",
           "subscriber_nodes"]
_memory_server: Any = None

# What stores hold: a single-node (or Sentinel-managed) client, or a cluster client.
# Both offer the commands the stores use (GET/SET, scripts, pipelines, streams, SCAN).
Client = Redis | RedisCluster


def redis_client(redis: RedisSection | str, *, connect_timeout: float, socket_timeout: float,
                 max_connections: int = 8) -> Client:
    """A client for the configured topology (a `str` is a single node's URL)."""
    section = RedisSection(url=redis) if isinstance(redis, str) else redis
    if section.url.startswith(MEMORY_URL):
        return _in_process()
    options = _options(connect_timeout, socket_timeout)
    if section.sentinel is not None:
        return _sentinel_primary(section, options, max_connections)
    if section.cluster:
        return RedisCluster.from_url(section.url, max_connections=max_connections,
                                     **options)
    return Redis.from_url(section.url, max_connections=max_connections, **options)


def in_process(client: Client) -> bool:
    """Whether `client` is the in-process store of `memory://`."""
    return type(client).__module__.startswith("fakeredis")


def node_client(redis: RedisSection, host: str, port: int, *, connect_timeout: float,
                socket_timeout: float, max_connections: int = 2) -> Redis:
    """A client for one node of a cluster, with the URL's credentials and TLS."""
    kwargs = _url_kwargs(redis.url)
    kwargs.update(host=host, port=port, max_connections=max_connections,
                  **_options(connect_timeout, socket_timeout))
    return Redis.from_pool(ConnectionPool(**kwargs))


async def subscriber_nodes(client: RedisCluster) -> list[tuple[str, int]]:
    """The cluster's nodes that look alive (primaries and replicas): where a classic
    pub/sub subscriber may connect. Asked of the cluster each time, so a subscriber
    follows failovers and new nodes."""
    described: dict[str, Any] = await client.cluster_nodes()
    alive = []
    for address, node in described.items():
        flags = str(node.get("flags", ""))
        if node.get("connected") is False or any(
                bad in flags for bad in ("fail", "handshake", "noaddr")):
            continue
        host, _, port = address.partition("@")[0].rpartition(":")
        alive.append((host, int(port)))
    return sorted(alive)


def _options(connect_timeout: float, socket_timeout: float) -> dict[str, Any]:
    return {"socket_connect_timeout": connect_timeout, "socket_timeout": socket_timeout,
            "socket_keepalive": True, "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0, "protocol": 2}


def _url_kwargs(url: str) -> dict[str, Any]:
    """Connection keyword arguments from a URL (credentials, database, TLS options)."""
    return dict(parse_url(url))


class _SentinelPrimary(Redis):
    """The primary's client; closing it also closes the sentinel connections."""

    sentinels: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            await self.sentinels.aclose()


def _sentinel_primary(section: RedisSection, options: dict[str, Any],
                      max_connections: int) -> Redis:
    assert section.sentinel is not None
    watch = section.sentinel
    data = _url_kwargs(section.url)
    for ignored in ("host", "port", "path"):
        data.pop(ignored, None)
    tls = data.pop("connection_class", None) is SSLConnection
    sentinel_options = dict(options)
    if watch.username:
        sentinel_options["username"] = watch.username
    if watch.password is not None:
        sentinel_options["password"] = watch.password.get_secret_value()
    if watch.tls:
        sentinel_options.update(ssl=True, ssl_ca_certs=watch.tls_ca_file)
    sentinel = Sentinel(watch.hosts(), sentinel_kwargs=sentinel_options)
    client = sentinel.master_for(watch.service_name, redis_class=_SentinelPrimary,
                                 max_connections=max_connections, ssl=tls,
                                 **data, **options)
    assert isinstance(client, _SentinelPrimary)
    client.sentinels = sentinel
    return client


def _in_process() -> Redis:
    global _memory_server
    from fakeredis import FakeServer
    from fakeredis.aioredis import FakeRedis

    if _memory_server is None:
        _memory_server = FakeServer()
    client: Redis = FakeRedis(server=_memory_server)
    return client
