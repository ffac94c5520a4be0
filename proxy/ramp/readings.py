"""Reading the comparison report for the ramp: baselines when a step starts, and each
measured route's numbers in the current step.

Layer: adapter (over `proxy.report.aggregate_store.ReportStore`; the arithmetic is in
`proxy.ramp.measurement`). Two reads per route and evaluation, one pipeline each: the
step's buckets, and the noise window's buckets. Failures become `ReportStoreError`
(through `proxy.redisfailure`, the one mapping of redis-py errors).
"""

from __future__ import annotations

from collections.abc import Iterable

from proxy.ramp.measurement import Baseline, RouteMeasurement, measure, since_baseline
from proxy.ramp.state import RampState
from proxy.redisfailure import redis_failures
from proxy.report.aggregate import Bucket
from proxy.report.aggregate_store import ReportStore, ReportStoreError


class RampReports:
    def __init__(self, reports: ReportStore, *, budget: float = 5.0):
        self.reports = reports
        self.budget = budget

    async def baselines(self, routes: Iterable[str], now: float) -> dict[str, Baseline]:
        """Each route's counters in the bucket current at `now` (the step's start)."""
        out = {}
        for route in routes:
            buckets = await self._buckets(route, now, now)
            start = self.reports.bucket_start(now)
            fields = next((b.fields for b in buckets if b.start == start), {})
            out[route] = Baseline(start=start, fields=dict(fields))
        return out

    async def measure(self, state: RampState, now: float) -> dict[str, RouteMeasurement]:
        policy = state.policy
        since = state.step_started_at
        out = {}
        for route in policy.routes:
            step = since_baseline(await self._buckets(route, since, now), since,
                                  state.baselines.get(route))
            noise = await self._buckets(route, now - policy.noise_window_seconds, now)
            out[route] = measure(route, step, noise, since=since, until=now,
                                 bucket_seconds=self.reports.bucket_seconds)
        return out

    async def _buckets(self, route: str, since: float, until: float) -> list[Bucket]:
        async with redis_failures(f"read the comparison report for {route}",
                                  ReportStoreError, budget=self.budget):
            return await self.reports.buckets(route, since, until)
