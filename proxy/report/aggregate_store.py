"""Comparison aggregates in Redis, shared by every replica, with bounded retention.

Layer: adapter (the only module of the report that talks to Redis). Keys, all under
`{prefix}:report:`:

    {prefix}:report:routes                  ZSET route -> last time it was recorded
    {prefix}:report:bucket:{route}:{start}  HASH counters of one route and time bucket
    {prefix}:report:top:{route}:{start}     ZSET "label|request_id" -> divergence score,
                                            the `top_requests` highest of the bucket

`start` is the bucket's start in unix seconds (buckets of `report_bucket_seconds`).
Every key expires `report_retention_hours` after its bucket ended, so the data is
bounded in time, and each bucket is bounded in size (a fixed set of counters, a latency
histogram of at most 177 bins, one counter pair per model name, a capped ZSET).

Writes: `record(entry)` sends one pipeline (one round trip, no transaction: counters
only add, so concurrent replicas need no coordination), bounded by a time budget. A
failure is logged, counted in `dropped` and reported as False, never raised: the
request path calls this after the client has its answer and must not care. At most
`max_in_flight` writes run at once (the client's pool must allow that many connections);
a write that cannot start within the budget is dropped and counted like a failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from proxy.comparison.compare import Comparison
from proxy.config.comparison import ComparisonSection
from proxy.config.proxy import RedisSection
from proxy.redisclient import Client, redis_client
from proxy.redisfailure import FOREIGN, RedisUnavailable, redis_failures
from proxy.report.aggregate import Bucket, Report, RouteReport, RouteSummary, route_report
from proxy.report.entry import Outcome, ReportEntry, RoleCost, increments

log = logging.getLogger("llm_shadow.report")

class ReportStoreError(RedisUnavailable):
    """Redis could not be read for a report; the message says why, never the URL's
    credentials."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ReportStore:
    def __init__(self, client: Client, prefix: str, *, bucket_seconds: int = 3600,
                 retention_hours: int = 168, top_requests: int = 20, budget: float = 1.0,
                 clock: Callable[[], float] = time.time, owns_client: bool = False,
                 max_in_flight: int = 4):
        self.client = client
        self.prefix = f"{prefix}:report"
        self.bucket_seconds = bucket_seconds
        self.retention = retention_hours * 3600
        self.top_requests = top_requests
        self.budget = budget
        self.clock = clock
        self.dropped = 0
        self._owns_client = owns_client
        # At most this many writes use the client at once (redis-py fails at once, it
        # does not wait, when its pool is exhausted); the others wait within the budget.
        self._slots = asyncio.Semaphore(max_in_flight)

    @classmethod
    def from_config(cls, redis: RedisSection, comparison: ComparisonSection, *,
                    client: Client | None = None, budget: float = 1.0) -> ReportStore:
        """With `client`, share it (the caller closes it); else open one on the
        configured Redis, closed by `aclose()`."""
        owns = client is None
        if client is None:
            client = redis_client(redis, connect_timeout=redis.connect_timeout,
                                  socket_timeout=max(redis.socket_timeout, budget),
                                  max_connections=4)
        return cls(client, redis.keyspace, bucket_seconds=comparison.report_bucket_seconds,
                   retention_hours=comparison.report_retention_hours,
                   top_requests=comparison.report_top_requests, budget=budget,
                   owns_client=owns)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    # --- keys --------------------------------------------------------------------------

    @property
    def routes_key(self) -> str:
        return f"{self.prefix}:routes"

    def bucket_key(self, route: str, start: int) -> str:
        return f"{self.prefix}:bucket:{route}:{start}"

    def top_key(self, route: str, start: int) -> str:
        return f"{self.prefix}:top:{route}:{start}"

    def bucket_start(self, at: float) -> int:
        return int(at // self.bucket_seconds) * self.bucket_seconds

    # --- writes ------------------------------------------------------------------------

    async def record(self, entry: ReportEntry) -> bool:
        """Add one entry's counters; one round trip; False (and counted) on failure."""
        return await self.record_many((entry,))

    async def record_many(self, entries: Iterable[ReportEntry]) -> bool:
        """Add many entries' counters, merged per bucket, in one round trip; False (and
        every entry counted as dropped) on failure."""
        now = self.clock()
        batch = list(entries)
        if not batch:
            return True
        ints: dict[str, dict[str, int]] = {}
        floats: dict[str, dict[str, float]] = {}
        ttls: dict[str, int] = {}
        tops: dict[str, dict[str, float]] = {}
        routes: set[str] = set()
        for entry in batch:
            start = self.bucket_start(entry.at if entry.at is not None else now)
            ttl = max(1, int(start + self.bucket_seconds + self.retention - now))
            bucket = self.bucket_key(entry.route, start)
            entry_ints, entry_floats = increments(entry)
            merged_ints = ints.setdefault(bucket, {})
            for name, amount in entry_ints.items():
                merged_ints[name] = merged_ints.get(name, 0) + amount
            merged_floats = floats.setdefault(bucket, {})
            for name, value in entry_floats.items():
                merged_floats[name] = merged_floats.get(name, 0.0) + value
            ttls[bucket] = ttl
            comparison = entry.comparison
            if comparison is not None and comparison.score > 0:
                top = self.top_key(entry.route, start)
                tops.setdefault(top, {})[f"{comparison.label}|{entry.request_id}"] = \
                    comparison.score
                ttls[top] = ttl
            routes.add(entry.route)
        pipe = self.client.pipeline(transaction=False)
        for bucket, counters in ints.items():
            for name, amount in counters.items():
                pipe.hincrby(bucket, name, amount)
        for bucket, sums in floats.items():
            for name, value in sums.items():
                pipe.hincrbyfloat(bucket, name, value)
        for top, members in tops.items():
            pipe.zadd(top, members)
            pipe.zremrangebyrank(top, 0, -(self.top_requests + 1))
        for key, ttl in ttls.items():
            pipe.expire(key, ttl)
        pipe.zadd(self.routes_key, dict.fromkeys(routes, now))
        pipe.zremrangebyscore(self.routes_key, "-inf", now - self.retention)
        pipe.expire(self.routes_key, self.retention + self.bucket_seconds)
        try:
            async with asyncio.timeout(self.budget), self._slots:
                await pipe.execute()
        except FOREIGN as exc:
            self.dropped += len(batch)
            log.warning("report: %d entries not recorded (%s)", len(batch),
                        type(exc).__name__)
            return False
        return True

    async def record_comparison(self, route: str, request_id: str, comparison: Comparison,
                                *, latency_delta_s: float | None = None,
                                model: str | None = None, at: float | None = None) -> bool:
        return await self.record(ReportEntry(route, request_id, at=at, model=model,
                                             comparison=comparison,
                                             latency_delta_s=latency_delta_s))

    async def record_noise(self, route: str, request_id: str, noise: Comparison, *,
                           at: float | None = None) -> bool:
        return await self.record(ReportEntry(route, request_id, at=at, noise=noise))

    async def record_costs(self, route: str, request_id: str, costs: Iterable[RoleCost],
                           *, at: float | None = None) -> bool:
        return await self.record(ReportEntry(route, request_id, at=at, costs=tuple(costs)))

    async def record_outcome(self, route: str, request_id: str, outcome: Outcome | None, *,
                             divert: bool = False, fallback: bool = False,
                             at: float | None = None) -> bool:
        return await self.record(ReportEntry(route, request_id, at=at, orchestrator=outcome,
                                             divert=divert, fallback=fallback))

    # --- reads -------------------------------------------------------------------------

    async def routes(self, since: float) -> list[str]:
        members = await self.client.zrangebyscore(self.routes_key, since - self.bucket_seconds,
                                                  "+inf")
        return sorted(_text(m) for m in members)

    async def buckets(self, route: str, since: float, until: float) -> list[Bucket]:
        first = self.bucket_start(max(since, until - self.retention - self.bucket_seconds))
        starts = list(range(first, self.bucket_start(until) + 1, self.bucket_seconds))
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self.bucket_key(route, start))
            pipe.zrange(self.top_key(route, start), 0, -1, withscores=True)
        replies = await pipe.execute()
        out = []
        for index, start in enumerate(starts):
            fields, top = replies[2 * index], replies[2 * index + 1]
            out.append(Bucket(route, float(start), _fields(fields),
                              tuple((_text(m), float(s)) for m, s in top)))
        return out

    async def summary(self, route: str, since: float,
                      until: float | None = None) -> RouteSummary:
        """The numbers for one route since `since` (unix seconds): what the ramp
        controller reads. Raises `ReportStoreError` when Redis cannot be read."""
        return (await self._route_report(route, since, until)).summary

    async def report(self, since: float, *, route_prefix: str | None = None,
                     until: float | None = None) -> Report:
        """Every route seen since `since` (optionally only those under `route_prefix`)."""
        end = self.clock() if until is None else until
        async with redis_failures("read the report's routes", ReportStoreError,
                                  budget=self.budget * 10):
            routes = await self.routes(since)
        if route_prefix:
            routes = [r for r in routes if r == route_prefix or r.startswith(route_prefix)]
        reports = [await self._route_report(route, since, end) for route in routes]
        return Report(end, since, end, self.bucket_seconds, tuple(reports))

    async def _route_report(self, route: str, since: float,
                            until: float | None) -> RouteReport:
        end = self.clock() if until is None else until
        async with redis_failures(f"read the report of {route}", ReportStoreError,
                                  budget=self.budget * 10):
            buckets = await self.buckets(route, since, end)
        return route_report(route, buckets, since=since, until=end,
                            bucket_seconds=self.bucket_seconds, top=self.top_requests)


def _fields(raw: Mapping[Any, Any]) -> dict[str, float]:
    out = {}
    for name, value in raw.items():
        try:
            out[_text(name)] = float(_text(value))
        except ValueError:
            continue
    return out

