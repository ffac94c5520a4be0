"""Shared builders for the ramp tests: a tiny policy, a hand-moved clock, and a `World`
of real pieces (report store, ramp store, flag writer, runners) on one redis-server."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from proxy.comparison import Comparison
from proxy.config.proxy import RedisSection
from proxy.flags.audit import AuditEntry
from proxy.flags.snapshot import FlagSnapshot
from proxy.flags.writer import FlagWriter
from proxy.ramp.autopilot import RampRunner
from proxy.ramp.control import start_ramp
from proxy.ramp.readings import RampReports
from proxy.ramp.schedule import RampPolicy, parse_policy
from proxy.ramp.state import RampState
from proxy.ramp.state_store import RampStore
from proxy.redisclient import redis_client
from proxy.report.aggregate_store import ReportStore
from proxy.report.entry import ReportEntry, RoleCost
from tests.fakes.servers import RedisServer

T = TypeVar("T")
NOW = 1_800_000_000.0  # an hour boundary: a whole test stays in one report bucket
ROUTE = "/openai"

GUARDRAILS: dict[str, Any] = {
    "divergence": {"max_excess": 0.2, "max_excess_major": 0.2, "min_samples": 30},
    "error_rate": {"max": 0.2, "min_requests": 30},
    "fallback_rate": {"max": 0.2, "min_requests": 30},
    "latency_p95": {"max_delta_ms": 2000, "min_samples": 30},
    "cost_per_request": {"max_usd": 0.01, "min_requests": 30},
}
STEPS: list[dict[str, Any]] = [
    {"shadow_percent": 5, "min_duration_seconds": 60, "min_compared": 30},
    {"shadow_percent": 100, "min_duration_seconds": 60, "min_compared": 30},
    {"shadow_percent": 100, "divert_percent": 50, "min_duration_seconds": 60,
     "min_compared": 30},
]


def policy_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"route": ROUTE, "evaluation_interval_seconds": 0.05,
                            "lock_ttl_seconds": 10.0, "guardrails": GUARDRAILS, "steps": STEPS}
    data.update(overrides)
    return copy.deepcopy(data)  # callers may edit it


def tiny_policy(**overrides: Any) -> RampPolicy:
    return parse_policy(policy_data(**overrides), "test policy")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def eventually(condition: Callable[[], Awaitable[Any]], *, timeout: float = 15.0,
                     interval: float = 0.02, message: str = "condition") -> Any:
    """Await `condition()` until it is truthy; fail after `timeout` seconds (generous:
    tests run on loaded machines)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class Clock:
    """Wall time the test moves by hand: step durations pass without sleeping."""

    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class World:
    def __init__(self, redis: str | RedisSection, prefix: str | None = None):
        """On a single node's URL (keys under `prefix`, else a fresh one), or on any
        topology's `redis` section (keys under its keyspace)."""
        if isinstance(redis, RedisSection):
            self.prefix = redis.keyspace
        else:
            self.prefix = prefix or f"ramp-{uuid.uuid4().hex[:8]}"
        self.clock = Clock()
        self.client = redis_client(redis, connect_timeout=1.0, socket_timeout=2.0,
                                   max_connections=16)
        self.report = ReportStore(self.client, self.prefix, clock=self.clock)
        self.reports = RampReports(self.report)
        self.store = RampStore(self.client, self.prefix)
        self.writer = FlagWriter(self.client, self.prefix)
        self._ids = 0

    def runner(self, replica_id: str = "replica-a", **options: Any) -> RampRunner:
        return RampRunner(self.store, self.reports, self.writer, replica_id=replica_id,
                          clock=self.clock, **options)

    async def start(self, policy: RampPolicy | None = None, *, step: int = 0,
                    **options: Any) -> RampState:
        return await start_ramp(self.store, self.reports, self.writer, policy or tiny_policy(),
                                source="test", step=step, now=self.clock(), actor="cli:test",
                                reason="test start", **options)

    async def feed(self, n: int, *, route: str = ROUTE, label: str = "identical",
                   failed: int = 0, latency_s: float = 0.2, orchestrator_usd: float = 0.002,
                   divert: bool = False, fallbacks: int = 0) -> None:
        """`n` compared requests as the request path records them: comparison with latency
        delta, orchestrator outcome, costs by role (and divert outcome)."""
        for index in range(n):
            self._ids += 1
            await self.report.record(ReportEntry(
                route, f"req-{self._ids}", at=self.clock(), model="orch",
                comparison=Comparison(label, 0.0 if label == "identical" else 0.9),  # type: ignore[arg-type]
                latency_delta_s=latency_s,
                costs=(RoleCost("legacy", 0.001), RoleCost("orchestrator", orchestrator_usd)),
                orchestrator="failed" if index < failed else "ok",
                divert=divert, fallback=index < fallbacks))

    async def feed_noise(self, n: int, *, route: str = ROUTE, label: str = "identical") -> None:
        for _ in range(n):
            self._ids += 1
            await self.report.record_noise(route, f"noise-{self._ids}",
                                           Comparison(label, 0.0),  # type: ignore[arg-type]
                                           at=self.clock())

    async def flags(self) -> FlagSnapshot:
        snapshot, problem = await self.writer.read()
        assert snapshot is not None, problem
        return snapshot

    async def audit(self) -> list[AuditEntry]:
        return await self.writer.store.audit(50)

    async def state(self) -> RampState:
        _, state = await self.store.read()
        assert state is not None
        return state

    async def ramp_keys(self) -> list[str]:
        keys = await self.client.keys(f"{self.prefix}:ramp:*")
        return sorted(k.decode() if isinstance(k, bytes) else k for k in keys)

    async def aclose(self) -> None:
        await self.client.aclose()


@asynccontextmanager
async def world(redis: str | RedisSection) -> AsyncIterator[World]:
    w = World(redis)
    try:
        yield w
    finally:
        await w.aclose()


def with_world(server: RedisServer, body: Callable[[World], Awaitable[None]]) -> None:
    """Run `body` against a fresh ramp world on the session's redis-server."""
    async def main() -> None:
        async with world(server.url) as w:
            await body(w)

    run(main())
