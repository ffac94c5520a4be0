"""Comparison aggregates in Redis, shared by every replica, with bounded retention.

Layer: adapter (the only module of the report that talks to Redis). Keys, all under
`{prefix}:report:` and all built by the `*_key` methods below:

    {prefix}:report:routes                   ZSET route -> last time it was recorded
    {prefix}:report:bucket:{route}:{start}   HASH counters of one route and time bucket
    {prefix}:report:top:{route}:{start}      ZSET "label|request_id" -> divergence score,
                                             the `top_requests` highest of the bucket
    {prefix}:report:fine:{route}:{start}     HASH the same counters in fine buckets
    {prefix}:report:finetop:{route}:{start}  ZSET the same top requests per fine bucket
    {prefix}:report:examples:{route}:{label} LIST the last `keep_examples` divergent pairs
                                             of the route with that label (major, minor),
                                             newest first, JSON (`proxy.report.example`)

Two tiers of buckets: `report_bucket_seconds` (an hour by default) kept
`report_retention_hours`, and fine buckets of `report_fine_bucket_seconds` (10 s) kept
`report_fine_retention_minutes` (2 h). Every entry is added to both. A report reads the
fine tier when its whole window is still kept there, else the hourly one; buckets are
counted whole, and the report says which span it counted (`Report.counted_since`), so
`--since 1m` counts one minute (and at most one fine bucket more), never the hour.
`buckets()` (what the ramp reads) is the hourly tier.

`start` is the bucket's start in unix seconds. Every key expires its tier's retention
after its bucket ended, so the data is bounded in time, and each bucket is bounded in
size (a fixed set of counters, reasons from a fixed set, a latency histogram of at most
177 bins, a row of counters per legacy and orchestrator model name from the
configuration, a capped ZSET). Examples: at most `keep_examples` x 2 labels per route,
each at most `proxy.report.example.MAX_EXAMPLE_BYTES`, the list expiring the (hourly)
retention after the last one was added; the report shows only those inside its window.

Writes: `record(entry)` sends one pipeline (one round trip, no transaction: counters
only add, so concurrent replicas need no coordination; an example list is pushed and
trimmed in the same pipeline), bounded by a time budget. A failure is logged, counted in
`dropped` and reported as False, never raised: the request path calls this after the
client has its answer and must not care. At most `max_in_flight` writes run at once (the
client's pool must allow that many connections); a write that cannot start within the
budget is dropped and counted like a failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.comparison.comparator import Comparison
from proxy.config.comparison import ComparisonSection
from proxy.config.proxy import RedisSection
from proxy.redisclient import Client, redis_client
from proxy.redisfailure import FOREIGN, RedisUnavailable, redis_failures
from proxy.report.aggregate import Bucket, Report, RouteReport, RouteSummary, route_report
from proxy.report.entry import Outcome, ReportEntry, RoleCost, increments
from proxy.report.example import KEPT_LABELS, Example, decode

log = logging.getLogger("llm_shadow.report")

class ReportStoreError(RedisUnavailable):
    """Redis could not be read for a report; the message says why, never the URL's
    credentials."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Tier:
    """Buckets of `seconds`, each kept `retention` seconds after it ended."""

    name: str  # "hourly" (report_bucket_seconds) or "fine"
    seconds: int
    retention: int

    def start(self, at: float) -> int:
        return int(at // self.seconds) * self.seconds


class ReportStore:
    def __init__(self, client: Client, prefix: str, *, bucket_seconds: int = 3600,
                 retention_hours: int = 168, top_requests: int = 20, budget: float = 1.0,
                 clock: Callable[[], float] = time.time, owns_client: bool = False,
                 max_in_flight: int = 4, fine_bucket_seconds: int = 10,
                 fine_retention_minutes: int = 120, keep_examples: int = 0):
        self.client = client
        self.prefix = f"{prefix}:report"
        self.bucket_seconds = bucket_seconds
        self.retention = retention_hours * 3600
        self.top_requests = top_requests
        self.hourly = Tier("hourly", bucket_seconds, self.retention)
        self.fine = (Tier("fine", fine_bucket_seconds, fine_retention_minutes * 60)
                     if 0 < fine_bucket_seconds < bucket_seconds else None)
        self.tiers = (self.hourly,) + ((self.fine,) if self.fine else ())
        self.keep_examples = keep_examples
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
                   owns_client=owns,
                   fine_bucket_seconds=comparison.report_fine_bucket_seconds,
                   fine_retention_minutes=comparison.report_fine_retention_minutes,
                   keep_examples=comparison.keep_examples)

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

    def fine_bucket_key(self, route: str, start: int) -> str:
        return f"{self.prefix}:fine:{route}:{start}"

    def fine_top_key(self, route: str, start: int) -> str:
        return f"{self.prefix}:finetop:{route}:{start}"

    def examples_key(self, route: str, label: str) -> str:
        return f"{self.prefix}:examples:{route}:{label}"

    def _keys(self, tier: Tier, route: str, start: int) -> tuple[str, str]:
        """(bucket, top) keys of a tier's bucket."""
        if tier is self.hourly:
            return self.bucket_key(route, start), self.top_key(route, start)
        return self.fine_bucket_key(route, start), self.fine_top_key(route, start)

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
        examples: list[Example] = []
        routes: set[str] = set()
        for entry in batch:
            at = entry.at if entry.at is not None else now
            entry_ints, entry_floats = increments(entry)
            for tier in self.tiers:
                start = tier.start(at)
                ttl = max(1, int(start + tier.seconds + tier.retention - now))
                bucket, top = self._keys(tier, entry.route, start)
                merged_ints = ints.setdefault(bucket, {})
                for name, amount in entry_ints.items():
                    merged_ints[name] = merged_ints.get(name, 0) + amount
                merged_floats = floats.setdefault(bucket, {})
                for name, value in entry_floats.items():
                    merged_floats[name] = merged_floats.get(name, 0.0) + value
                ttls[bucket] = ttl
                comparison = entry.comparison
                if comparison is not None and comparison.score > 0:
                    tops.setdefault(top, {})[f"{comparison.label}|{entry.request_id}"] = \
                        comparison.score
                    ttls[top] = ttl
            if entry.example is not None and self.keep_examples > 0:
                examples.append(entry.example)
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
        self._push_examples(pipe, examples)
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

    def _push_examples(self, pipe: Any, examples: list[Example]) -> None:
        """Newest first, trimmed to `keep_examples` per route and label."""
        touched = set()
        for example in sorted(examples, key=lambda e: e.at):
            if example.label not in KEPT_LABELS:
                continue
            key = self.examples_key(example.route, example.label)
            pipe.lpush(key, example.encode())
            touched.add(key)
        for key in touched:
            pipe.ltrim(key, 0, self.keep_examples - 1)
            pipe.expire(key, self.retention)

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

    async def buckets(self, route: str, since: float, until: float,
                      tier: Tier | None = None) -> list[Bucket]:
        """A route's buckets from the one holding `since` to the one holding `until`
        (the hourly tier unless another is named)."""
        tier = tier or self.hourly
        first = tier.start(max(since, until - tier.retention - tier.seconds))
        starts = list(range(first, tier.start(until) + 1, tier.seconds))
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            bucket, top = self._keys(tier, route, start)
            pipe.hgetall(bucket)
            pipe.zrange(top, 0, -1, withscores=True)
        replies = await pipe.execute()
        out = []
        for index, start in enumerate(starts):
            fields, top_members = replies[2 * index], replies[2 * index + 1]
            out.append(Bucket(route, float(start), _fields(fields),
                              tuple((_text(m), float(s)) for m, s in top_members)))
        return out

    def tier_for(self, since: float, until: float) -> Tier:
        """The fine tier when the whole window is still kept there, else the hourly."""
        fine = self.fine
        if fine is not None and since >= until - fine.retention:
            return fine
        return self.hourly

    async def examples(self, route: str, since: float, until: float) -> list[Example]:
        """The kept pairs of a route recorded in [since, until]: `major` ones first,
        each label newest first."""
        pipe = self.client.pipeline(transaction=False)
        for label in KEPT_LABELS:
            pipe.lrange(self.examples_key(route, label), 0, -1)
        replies = await pipe.execute()
        kept = [example for reply in replies for raw in reply
                if (example := decode(raw)) is not None and since <= example.at <= until]
        return sorted(kept, key=lambda e: (KEPT_LABELS.index(e.label)
                                           if e.label in KEPT_LABELS else 9, -e.at))

    async def summary(self, route: str, since: float,
                      until: float | None = None) -> RouteSummary:
        """The numbers for one route since `since` (unix seconds). Raises
        `ReportStoreError` when Redis cannot be read."""
        end = self.clock() if until is None else until
        return (await self._route_report(route, since, end, self.tier_for(since, end))).summary

    async def report(self, since: float, *, route_prefix: str | None = None,
                     until: float | None = None) -> Report:
        """Every route seen since `since` (optionally only those under `route_prefix`)."""
        end = self.clock() if until is None else until
        tier = self.tier_for(since, end)
        async with redis_failures("read the report's routes", ReportStoreError,
                                  budget=self.budget * 10):
            routes = await self.routes(since)
        if route_prefix:
            routes = [r for r in routes if r == route_prefix or r.startswith(route_prefix)]
        reports = [await self._route_report(route, since, end, tier) for route in routes]
        return Report(end, since, end, tier.seconds, tuple(reports),
                      counted_since=float(tier.start(since)),
                      examples_kept=self.keep_examples)

    async def _route_report(self, route: str, since: float, until: float,
                            tier: Tier) -> RouteReport:
        async with redis_failures(f"read the report of {route}", ReportStoreError,
                                  budget=self.budget * 10):
            buckets = await self.buckets(route, since, until, tier)
            examples = await self.examples(route, since, until)
        return route_report(route, buckets, since=since, until=until,
                            bucket_seconds=tier.seconds, top=self.top_requests,
                            examples=examples)


def _fields(raw: Mapping[Any, Any]) -> dict[str, float]:
    out = {}
    for name, value in raw.items():
        try:
            out[_text(name)] = float(_text(value))
        except ValueError:
            continue
    return out

