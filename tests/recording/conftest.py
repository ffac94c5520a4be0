"""Fixtures for the recording tests: telemetry that records into memory, and a real
report (a `ReportBuffer` writing to a `ReportStore` on the session's redis-server)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from proxy.redisclient import redis_client
from proxy.report.aggregate import RouteSummary
from proxy.report.aggregate_store import ReportStore
from proxy.report.buffer import ReportBuffer
from tests.telemetry.conftest import Memory, memory  # noqa: F401  (the fixture, shared)

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Async tests run in plain functions; a hung one fails instead of hanging."""
    async def main() -> T:
        async with asyncio.timeout(30):
            return await make()
    return asyncio.run(main())



@dataclass
class Report:
    """A report buffer as the runtime builds it, over its own key prefix."""

    store: ReportStore
    buffer: ReportBuffer

    async def summary(self, route: str) -> RouteSummary:
        await self.buffer.flush()
        return await self.store.summary(route, time.time() - 3600)


@contextlib.asynccontextmanager
async def report_on(url: str, **options: Any) -> AsyncIterator[Report]:
    client = redis_client(url, connect_timeout=1.0, socket_timeout=2.0)
    store = ReportStore(client, f"test-{uuid.uuid4().hex[:8]}", **options)
    buffer = ReportBuffer(store)
    buffer.start()
    try:
        yield Report(store, buffer)
    finally:
        await buffer.aclose()
        await client.aclose()
