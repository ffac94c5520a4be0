"""The "flags changed" hint: a Redis pub/sub subscriber on its own connection.

Layer: adapter. A hint only says "version N was written"; the watcher then re-reads the
snapshot, so a lost or duplicated hint can delay an update but never corrupt one. Pub/sub
is at-most-once (a disconnect window or an output-buffer kill drops messages silently),
which is why the watcher also re-reads on every (re)subscribe and polls.

The subscriber does not rely on `listen()` (its semantics changed in redis-py 8.0.0 and
8.0.1, checklist §3.4): it drives `get_message(timeout=ping_interval)` itself, sends a
PING every `ping_interval`, and a watchdog gives up on the connection when neither a
message nor a pong arrived within `watchdog` seconds (a half-open TCP connection or a
silently dead listener, rows 7 and 8). `run()` then raises, and the watcher reconnects
with backoff on a brand-new pub/sub object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio import Redis

from proxy.flags.store import StoreError, redis_errors
from proxy.redisclient import redis_client

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
    def __init__(self, url: str, channel: str, *, connect_timeout: float,
                 socket_timeout: float, ping_interval: float, watchdog: float,
                 clock: Callable[[], float] = time.monotonic):
        self.channel = channel
        self.budget = connect_timeout + socket_timeout
        self.ping_interval = ping_interval
        self.watchdog = watchdog
        self._clock = clock
        # Its own client, so the subscriber's connection never comes from (or starves)
        # the pool the poll reads through.
        self.client: Redis = redis_client(url, connect_timeout=connect_timeout,
                                         socket_timeout=socket_timeout, max_connections=2)

    async def run(self, on_subscribed: OnSubscribed, on_hint: OnHint) -> None:
        pubsub: Any = self.client.pubsub()
        try:
            async with redis_errors(self.budget, "subscribe"):
                await pubsub.subscribe(self.channel)
                await self._confirmed(pubsub)
            on_subscribed()
            await self._pump(pubsub, on_hint)
        finally:
            await pubsub.aclose()

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
