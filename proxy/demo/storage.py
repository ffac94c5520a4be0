"""Where the demo keeps its flags, ramp state and report: a Redis that answers, under a
key prefix of its own, or the in-process store when none does.

Layer: adapter (redis-py, through `proxy.redisclient`). The demo never needs Redis: a
fresh laptop has none, and `memory://` runs every Redis code path (Lua, streams,
pub/sub) in this process. When a Redis does answer, using it shows the real thing and
lets `llm-shadow status`, `ramp status`, `audit` and `report` look at the run from
another terminal; its keys go under a unique prefix, so nothing of anyone else's is
read or touched, and they are deleted at the end unless asked to keep them.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Literal

from proxy.config import Settings
from proxy.flags.snapshot import default_snapshot
from proxy.flags.writer import FlagWriter
from proxy.redisclient import MEMORY_URL, redis_client
from proxy.redisfailure import FOREIGN, classify

PROBE_TIMEOUT_SECONDS = 0.5
DELETE_BATCH = 500


@dataclass(frozen=True, slots=True)
class Store:
    kind: Literal["redis", "memory"]
    url: str
    prefix: str
    # Why the in-process store was chosen ("" when Redis answered or memory was asked for).
    unreachable: str = ""

    @property
    def shared(self) -> bool:
        return self.kind == "redis"


def demo_prefix() -> str:
    return f"llm-shadow-demo-{secrets.token_hex(4)}"


async def choose_store(url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> Store:
    """Redis at `url` if it answers a PING within `timeout`, else the in-process store."""
    prefix = demo_prefix()
    if url.startswith(MEMORY_URL):
        return Store("memory", MEMORY_URL, prefix)
    problem = await probe(url, timeout)
    if problem is None:
        return Store("redis", url, prefix)
    return Store("memory", MEMORY_URL, prefix, unreachable=problem)


async def probe(url: str, timeout: float) -> str | None:
    """None when Redis at `url` answers; else a short reason (never the URL itself)."""
    client = redis_client(url, connect_timeout=timeout, socket_timeout=timeout)
    try:
        async with asyncio.timeout(timeout * 2):
            await client.ping()
    except FOREIGN as exc:
        kind = classify(exc)
        if kind == "timeout":
            return "no answer in time"
        if kind == "auth":
            return "it refused the credentials"
        return f"cannot connect: {type(exc).__name__}"
    finally:
        await client.aclose()
    return None


async def seed_flags(store: Store, settings: Settings) -> int:
    """Write the starting flags (legacy only), as an operator's store would hold them
    before a migration starts; the version written."""
    writer = FlagWriter(store.url, store.prefix,
                        defaults=default_snapshot(settings.config))
    try:
        snapshot = await writer.update({"kill": False, "shadow_percent": 0.0,
                                        "divert_percent": 0.0},
                                       actor="demo", reason="demo: legacy only to begin with")
    finally:
        await writer.aclose()
    return snapshot.version


async def delete_keys(store: Store) -> int:
    """Delete every key under the demo's prefix; the number deleted."""
    client = redis_client(store.url, connect_timeout=1.0, socket_timeout=2.0)
    deleted = 0
    try:
        batch: list[bytes | str] = []
        async for key in client.scan_iter(match=f"{store.prefix}:*", count=DELETE_BATCH):
            batch.append(key)
            if len(batch) >= DELETE_BATCH:
                deleted += int(await client.delete(*batch))
                batch = []
        if batch:
            deleted += int(await client.delete(*batch))
    finally:
        await client.aclose()
    return deleted
