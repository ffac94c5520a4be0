"""The "flags changed" hint: a Redis pub/sub subscriber on its own connection.

Layer: adapter. A hint only says "version N was written"; the watcher then re-reads the
snapshot, so a lost or duplicated hint can delay an update but never corrupt one. Pub/sub
is at-most-once (a disconnect window or an output-buffer kill drops messages silently),
which is why the watcher also re-reads on every (re)subscribe and polls.

The subscriber does not rely on `listen()` (its semantics changed in redis-py 8.0.0 and
8.0.1; 8.0.0 returns after a 5 s timeout, redis-py #4098): it drives
`get_message(timeout=ping_interval)` itself, sends a PING every `ping_interval`, and a
watchdog gives up on the connection when neither a message nor a pong arrived within
`watchdog` seconds (a half-open TCP connection or a silently dead listener). `run()`
then raises, and the watcher reconnects with backoff on a brand-new pub/sub object, then
re-reads the snapshot (`on_subscribed`).

High availability. With Sentinel every new pub/sub connection asks the sentinels for the
primary, so the resubscribe after a failover lands on the new primary (a primary that is
killed drops the connection; one that is demoted answers the PING with an error or goes
silent, and the watchdog gives up on it). In a Redis Cluster the writer uses classic
`PUBLISH`, not sharded `SPUBLISH`: a classic message is delivered on every node of the
cluster, so the subscriber may connect to any node that is alive, asked of the cluster
on each (re)subscribe and tried in turn, and a failover or resharding needs no slot
tracking (with `SSUBSCRIBE` the subscriber must sit on the shard that owns the channel
and move when the slot moves). The cost of broadcasting is one small message per flag
change, which happens a few times a day; the same Lua script serves every topology.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from proxy.config.proxy import RedisSection
from proxy.flags.store import StoreError, redis_errors
from proxy.redisclient import node_client, redis_client, subscriber_nodes

OnHint = Callable[[int | None], None]
OnSubscribed = Callable[[], None]


class HintSource(Protocol):
    async def run(self, on_subscribed: OnSubscribed, on_hint: OnHint) -> None:
        """Deliver hints until the subscription breaks (then raise `StoreError`)."""

    async def aclose(self) -> None: ...


def parse_hint(data: Any) -> int | None:
    """The version a hint carries, or None when it carries none we can read (then the
    watcher re-reads unconditionally: an unreadable hint is still a hint)."""
    try:
        text = data.decode() if isinstance(data, bytes) else str(data)
        version = int(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return version if version >= 0 else None


class RedisHints:
    def __init__(self, redis: RedisSection | str, channel: str, *, connect_timeout: float,
                 socket_timeout: float, ping_interval: float, watchdog: float,
                 clock: Callable[[], float] = time.monotonic):
        self.channel = channel
        self.redis = RedisSection(url=redis) if isinstance(redis, str) else redis
        self.connect_timeout = connect_timeout
        self.socket_timeout = socket_timeout
        self.budget = connect_timeout + socket_timeout
        self.ping_interval = ping_interval
        self.watchdog = watchdog
        self._clock = clock
        self._turn = 0
        # Its own client, so the subscriber's connection never comes from (or starves)
        # the pool the poll reads through. In a cluster it only finds the nodes.
        self.client = redis_client(self.redis, connect_timeout=connect_timeout,
                                   socket_timeout=socket_timeout, max_connections=2)

    async def run(self, on_subscribed: OnSubscribed, on_hint: OnHint) -> None:
        node = await self._cluster_node() if isinstance(self.client, RedisCluster) else None
        pubsub: Any = (node or self.client).pubsub()
        try:
            async with redis_errors(self.budget, "subscribe"):
                await pubsub.subscribe(self.channel)
                await self._confirmed(pubsub)
            on_subscribed()
            await self._pump(pubsub, on_hint)
        finally:
            await pubsub.aclose()
            if node is not None:
                await node.aclose()

    async def _cluster_node(self) -> Redis:
        """A client for the next live node of the cluster (each resubscribe moves on,
        so a node that keeps failing is not retried forever)."""
        assert isinstance(self.client, RedisCluster)
        async with redis_errors(self.budget * 2, "find a cluster node to subscribe on"):
            nodes = await subscriber_nodes(self.client)
        if not nodes:
            raise StoreError("connection", "subscribe: no cluster node is alive")
        host, port = nodes[self._turn % len(nodes)]
        self._turn += 1
        return node_client(self.redis, host, port, connect_timeout=self.connect_timeout,
                           socket_timeout=self.socket_timeout)

    async def _confirmed(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(timeout=self.budget)
            if message is not None and message.get("type") == "subscribe":
                return

    async def _pump(self, pubsub: Any, on_hint: OnHint) -> None:
        last_seen = last_ping = self._clock()
        while True:
            async with redis_errors(self.ping_interval + self.budget, "pub/sub read"):
                message = await pubsub.get_message(timeout=self.ping_interval)
            now = self._clock()
            if message is not None:
                last_seen = now
                if message.get("type") == "message":
                    on_hint(parse_hint(message.get("data")))
            if now - last_seen > self.watchdog:
                raise StoreError("timeout", f"pub/sub: no message or pong for "
                                            f"{now - last_seen:.1f}s; resubscribing")
            if now - last_ping >= self.ping_interval:
                async with redis_errors(self.budget, "pub/sub ping"):
                    await pubsub.ping()
                last_ping = now

    async def aclose(self) -> None:
        await self.client.aclose()
