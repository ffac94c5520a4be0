"""An in-process flag store, for the demo and for machines without Redis.

Layer: adapter (in memory). It behaves like the Redis store, atomic compare-and-set,
capped audit, heartbeats with a TTL, hints to subscribers, but only inside one process:
the admin API of that process can change the flags, the CLI and other replicas cannot.
Select it with `"flags": {"store": "memory"}`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from proxy.flags.audit import AUDIT_MAXLEN, AuditEntry
from proxy.flags.hints import OnHint, OnSubscribed
from proxy.flags.store import Keys


class MemoryFlagStore:
    kind: Literal["redis", "memory"] = "memory"

    def __init__(self, prefix: str = "llm-shadow",
                 clock: Callable[[], float] = time.monotonic):
        self.keys = Keys(prefix)
        self._value: bytes | None = None
        self._audit: deque[AuditEntry] = deque(maxlen=AUDIT_MAXLEN)
        self._status: dict[str, tuple[bytes, float]] = {}
        self._subscribers: set[asyncio.Queue[int]] = set()
        self._sequence = 0
        self._clock = clock

    async def read(self) -> bytes | None:
        return self._value

    async def compare_and_set(self, expected: bytes | None, new: bytes,
                              entry: AuditEntry) -> bool:
        # No await between the check and the set: atomic on one event loop.
        if (self._value or b"") != (expected or b""):
            return False
        self._value = new
        self._sequence += 1
        self._audit.appendleft(_with_id(entry, self._sequence))
        for queue in self._subscribers:
            # A full queue drops the hint, as pub/sub would; the poll catches up.
            if not queue.full():
                queue.put_nowait(entry.version)
        return True

    async def audit(self, limit: int) -> list[AuditEntry]:
        return list(self._audit)[:limit]

    async def put_status(self, replica_id: str, raw: bytes, ttl: float) -> None:
        self._status[replica_id] = (raw, self._clock() + ttl)

    async def statuses(self) -> list[bytes]:
        now = self._clock()
        self._status = {k: v for k, v in self._status.items() if v[1] > now}
        return [raw for raw, _ in self._status.values()]

    def clear(self) -> None:
        """Drop the snapshot, as a Redis restarted without persistence would."""
        self._value = None

    async def aclose(self) -> None:
        return None

    def hints(self) -> MemoryHints:
        return MemoryHints(self)

    def _subscribe(self) -> asyncio.Queue[int]:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=256)
        self._subscribers.add(queue)
        return queue

    def _unsubscribe(self, queue: asyncio.Queue[int]) -> None:
        self._subscribers.discard(queue)


class MemoryHints:
    def __init__(self, store: MemoryFlagStore):
        self.store = store

    async def run(self, on_subscribed: OnSubscribed, on_hint: OnHint) -> None:
        queue = self.store._subscribe()
        try:
            on_subscribed()
            while True:
                on_hint(await queue.get())
        finally:
            self.store._unsubscribe(queue)

    async def aclose(self) -> None:
        return None


def _with_id(entry: AuditEntry, sequence: int) -> AuditEntry:
    return replace(entry, entry_id=f"{int(time.time() * 1000)}-{sequence}")
