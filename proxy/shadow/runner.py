"""Shadow: the legacy answer goes to the client; the orchestrator answers the same
request on the side, and the two answers are compared once both are complete.

Layer: composition (background tasks). The guarantees, each tested:

- nothing on the request path awaits shadow work: `launch` is synchronous, the job runs
  in its own task, on the orchestrator's own client and pool;
- bounded: at most `max_concurrency` jobs; when full the shadow is dropped (counted),
  never queued; each job has its own deadline and no retries;
- light while it waits: when the orchestrator is an endpoint with a fixed number of
  connections, a job waits for one of them (at most the pool timeout, as a request
  waiting in the pool would) before it builds its request. A job waiting behind an
  orchestrator that holds every connection then keeps about 40 objects alive instead of
  about 85, which halves the garbage collector's work it adds to every other request
  (with `max_concurrency` raised far above the connections, that work was most of what
  such shadows added to a legacy request answered in 5 ms);
- shed under pressure: while the shedder says the process is overloaded (event-loop lag
  or CPU throttling, `proxy.shadow.shedding`), no shadow or noise resample starts
  (counted as `overload`); the check is one attribute read;
- owned: every task is kept in a set until done, and cancelled on kill, rollback or
  fail-safe (so their pool slots return) and at shutdown;
- budgeted: a job reserves its estimated cost from the shared hourly budget before it
  calls, and settles the real cost after;
- every skip and drop is counted by reason; those due to load (`REPORTED_SKIPS`) also
  go to the report, as a count the report buffer writes once per route and reason at
  its next flush (never an entry per request, which at saturation would crowd out the
  comparisons).

Failures inside a job never reach the client; the one broad catch is in `_run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from proxy.comparison import in_noise_sample
from proxy.deadline import GRACE, Deadline
from proxy.decision import Decision, orchestrator_allowed
from proxy.errors import ProxyError, UpstreamTimeout
from proxy.exchange import Captured
from proxy.flags.view import FlagView
from proxy.headers import RawHeaders, upstream_request_headers
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.orchestrator.target import OrchestratorFailed, Target, TargetCall, TargetReply
from proxy.recording.calls import (
    endpoint_cost,
    legacy_call,
    orchestrator_calls,
    orchestrator_costs,
    price,
    usage_of,
)
from proxy.recording.comparer import Comparer, failure_outcome
from proxy.report.entry import RoleCost
from proxy.shadow.budget import Budget, BudgetUnavailable
from proxy.shadow.replay import LegacyReplay, capture
from proxy.shadow.shedding import Shedder
from proxy.telemetry.recorder import SpanRef, Telemetry
from proxy.transport import PoolGate
from proxy.usage.prices import PriceTable

log = logging.getLogger("llm_shadow.shadow")

SKIP_REASONS = ("sampled_out", "not_eligible", "body_too_large", "concurrency_full",
                "overload", "budget_spent", "budget_unavailable", "kill", "error", "timeout")
# Skips that also go to the comparison report: shadows that were due and did not run
# because of load, so the compared sample is smaller and leans to calm periods.
REPORTED_SKIPS = frozenset({"overload", "concurrency_full"})

# Legacy decisions whose reason is also a reason no shadow ran, for the skip counters.
_SKIP_FOR_DECISION = {"outside_bands": "sampled_out", "not_eligible": "not_eligible",
                      "kill": "kill", "route_kill": "kill"}


def skip_reason(decision: Decision) -> str | None:
    """Why a request the decision kept on legacy was not shadowed, when that counts."""
    if decision.action != "legacy":
        return None
    return _SKIP_FOR_DECISION.get(decision.reason)


@dataclass
class ShadowJob:
    """One shadow: the call to make, and where the legacy answer will arrive. For the
    shadow of a divert, the orchestrator already answered (`orchestrator_answer`) and
    the legacy call is the one to make."""

    call: TargetCall
    parent: SpanRef | None
    orchestrator_answer: Captured | None = None
    orchestrator_result: OrchestratorAnswer | None = None  # the in-process pipeline's
    legacy: asyncio.Future[Captured | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def route(self) -> str:
        return self.call.route

    @property
    def legacy_headers(self) -> RawHeaders:
        """The legacy request's headers as the legacy path sends them (worked out in
        the job, never on the request path)."""
        return upstream_request_headers(self.call.client_headers)

    def legacy_finished(self, captured: Captured | None) -> None:
        """Hand over the legacy answer (None when there is none to compare)."""
        if not self.legacy.done():
            self.legacy.set_result(captured)


class ShadowRunner:
    def __init__(self, *, target: Target, replay: LegacyReplay, budget: Budget,
                 comparer: Comparer, telemetry: Telemetry, prices: PriceTable,
                 max_concurrency: int, timeout: float, reserve_usd: float,
                 noise_percent: float, cap: int, shedder: Shedder | None = None,
                 connections: PoolGate | None = None, connection_wait: float = 5.0):
        self.target = target
        self.replay = replay
        self.budget = budget
        self.comparer = comparer
        self.telemetry = telemetry
        self.prices = prices
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.reserve_usd = reserve_usd
        self.noise_percent = noise_percent
        self.cap = cap
        self.shedder = shedder if shedder is not None else Shedder(0.0)
        # The orchestrator endpoint's connections (None: the in-process pipeline).
        self.connections = connections
        self.connection_wait = connection_wait
        # Each job's task and the route it shadows (a route kill cancels that route's).
        self.tasks: dict[asyncio.Task[None], str] = {}
        self.skipped: Counter[str] = Counter()
        self.completed = 0
        self._closing = False

    # --- the request path: synchronous, never awaits ---------------------------------

    def skip(self, reason: str, route: str | None = None) -> None:
        self.skipped[reason] += 1
        self.telemetry.count_shadow_skipped(reason, route)
        if reason in REPORTED_SKIPS and route is not None:
            self.comparer.skipped(route, reason)

    def refuse(self, route: str) -> str | None:
        """Why no shadow may start now (counted), or None: call it before preparing a
        job, so a refused shadow costs nothing more."""
        if self.shedder.shedding:
            reason = "overload"
        elif len(self.tasks) >= self.max_concurrency:
            reason = "concurrency_full"
        else:
            return None
        self.skip(reason, route)
        return reason

    def spawn(self, job: ShadowJob) -> None:
        """Start a job `refuse` let through."""
        task = asyncio.get_running_loop().create_task(self._run(job))
        self.tasks[task] = job.route
        task.add_done_callback(self._forget)

    def launch(self, job: ShadowJob) -> bool:
        """Start a shadow if there is room; False (and counted) when dropped."""
        if self.refuse(job.route) is not None:
            job.legacy_finished(None)
            return False
        self.spawn(job)
        return True

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.pop(task, None)

    # --- kill, rollback, shutdown ------------------------------------------------------

    def on_flags(self, view: FlagView) -> None:
        """A watcher listener: the shadows of every route the flags now keep from the
        orchestrator (kill, route kill, fail-safe, rollback, percentages at 0) are
        cancelled at once and their connections returned."""
        for task, route in list(self.tasks.items()):
            if not orchestrator_allowed(view, route):
                task.cancel("shadow cancelled: flags forbid orchestrator traffic")

    async def aclose(self, timeout: float = 5.0) -> None:
        self._closing = True
        for task in list(self.tasks):
            task.cancel("shutting down")
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        await self.budget.release()  # the jobs settled: give back the unused lease

    # --- the job ---------------------------------------------------------------------

    async def _run(self, job: ShadowJob) -> None:
        route = job.route
        try:
            # Let the legacy request leave first. The job is created before the legacy
            # call starts, so its first step would otherwise run before the transport's
            # own task writes the legacy body, and its work (budget reservation,
            # building the orchestrator request) would delay legacy instead of
            # overlapping legacy's wait. Measured one request at a time with legacy
            # answering in 5 ms: +0.17-0.22 ms p50 without this, +0.04-0.08 ms with it.
            await asyncio.sleep(0)
            if job.orchestrator_answer is None:
                await self._orchestrator_shadow(job)
            else:
                await self._legacy_shadow(job)
        except asyncio.CancelledError:
            if not self._closing:
                self.skip("kill", route)
            raise
        except Exception:  # a shadow fault must never reach the client: count and log it
            self.skip("error", route)
            log.exception("shadow job for request %s failed", job.call.request_id)

    async def _reserve(self, route: str) -> str | None:
        """The budget hour the call may spend in, or None (counted) when it may not."""
        try:
            hour = await self.budget.reserve(self.reserve_usd)
        except BudgetUnavailable:
            self.skip("budget_unavailable", route)
            return None
        if hour is None:
            self.skip("budget_spent", route)
        return hour

    async def _orchestrator_shadow(self, job: ShadowJob) -> None:
        route = job.route
        hour = await self._reserve(route)
        if hour is None:
            job.legacy_finished(None)
            return
        cost = self.reserve_usd
        started = time.monotonic()
        try:
            candidate, answer, failure = await self._ask(job)
            if answer is not None:
                cost = answer.cost_usd
            elif candidate is not None:
                cost = endpoint_cost(self.prices, job.call.api, candidate, job.call.payload,
                                     self.reserve_usd)
        finally:
            await self.budget.settle(hour, self.reserve_usd, cost)
        self.telemetry.record_workflow(job.parent, *orchestrator_calls(
            job.call, answer, start=started, end=time.monotonic(), failure=failure))
        # The spend counts now: a kill while legacy is still streaming must not lose it.
        self.comparer.costs(route, job.call.request_id, orchestrator_costs(answer) if
                            answer is not None else (RoleCost("orchestrator", cost),),
                            answer=answer)
        legacy = await job.legacy
        if failure is not None or candidate is None:
            self.comparer.outcome(route=route, request_id=job.call.request_id,
                                  outcome=failure_outcome(failure))
            return
        if legacy is None or legacy.status >= 400 or not legacy.completed:
            # Nothing to compare against: legacy failed, or its answer was cut short (the
            # client went away); the orchestrator's outcome still counts.
            self.comparer.outcome(route=route, request_id=job.call.request_id, outcome="ok")
            return
        self.comparer.candidate(job.call, legacy=legacy, candidate=candidate,
                                parent=job.parent, outcome="ok", answer=answer)
        self.completed += 1
        await self._noise(job, legacy)

    async def _ask(self, job: ShadowJob,
                   ) -> tuple[Captured | None, OrchestratorAnswer | None, str | None]:
        """The orchestrator's complete answer, or why there is none. The in-process
        pipeline ends its model calls at the deadline and hands back its answer (with
        those calls, for the trace, the real cost and learning): the job waits `GRACE`
        longer for it."""
        route = job.route
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout + GRACE), self._connection():
                reply = await self.target.call(job.call, Deadline.after(self.timeout, started))
                return await collect(reply, started, self.cap), reply.answer, None
        except TimeoutError:
            self.skip("timeout", route)
            return None, None, "timeout"
        except OrchestratorFailed as failed:
            if failed.reason == "deadline":  # the pipeline ended its calls at the deadline
                self.skip("timeout", route)
                return None, failed.answer, "timeout"
            return None, failed.answer, failed.reason
        except ProxyError as exc:  # the answer's body failed midway: the orchestrator's fault
            if isinstance(exc, UpstreamTimeout):
                self.skip("timeout", route)
                return None, None, "timeout"
            if exc.code == "pool_exhausted":  # no connection came free in time
                return None, None, "pool_exhausted"
            return None, None, "incomplete"

    def _connection(self) -> contextlib.AbstractAsyncContextManager[None]:
        """One of the orchestrator endpoint's connections, held until the answer is read
        (collect closes it); the pool's 503 when none comes free in time."""
        if self.connections is None:
            return contextlib.nullcontext()
        return self.connections.slot(self.connection_wait)

    async def _legacy_shadow(self, job: ShadowJob) -> None:
        """The shadow of a divert: the legacy call runs now, the orchestrator already
        answered the client."""
        route = job.route
        hour = await self._reserve(route)
        if hour is None:
            return
        captured = await self._replay(job, "shadow", hour)
        assert job.orchestrator_answer is not None
        if captured is None or captured.status >= 400:
            return
        self.comparer.candidate(job.call, legacy=captured, candidate=job.orchestrator_answer,
                                parent=job.parent, outcome="ok", divert=True,
                                answer=job.orchestrator_result)
        self.completed += 1

    async def _replay(self, job: ShadowJob, role: str, hour: str) -> Captured | None:
        """A background legacy call, priced, traced, and settled against the budget
        (whatever happens: a failed or cancelled call gives its reservation back)."""
        route = job.route
        cost: float | None = None
        try:
            async with asyncio.timeout(self.timeout):
                captured = await self.replay.call(job.call.destination, job.call.method,
                                                  job.legacy_headers, job.call.body)
            usage = usage_of(job.call.api, captured, job.call.payload)
            cost = price(self.prices, usage, job.call.payload)
        except TimeoutError:
            self.skip("timeout", route)
            return None
        finally:
            await self.budget.settle(hour, self.reserve_usd, cost or 0.0)
        if job.call.api is not None:
            self.telemetry.record_model_call(job.parent, legacy_call(
                role=role, destination=job.call.destination, captured=captured,
                payload=job.call.payload, usage=usage, cost_usd=cost,
                content=self.telemetry.captures_content))
        self.comparer.costs(route, job.call.request_id,
                            (RoleCost("noise" if role == "noise" else "shadow", cost),))
        return captured

    async def _noise(self, job: ShadowJob, legacy: Captured) -> None:
        """For a sampled share of compared requests, a second legacy call measures how
        much legacy disagrees with itself: the noise floor divergence is judged against."""
        if not in_noise_sample(job.call.request_id, self.noise_percent):
            return
        route = job.route
        if self.shedder.shedding:
            self.skip("overload", route)
            return
        hour = await self._reserve(route)
        if hour is None:
            return
        resample = await self._replay(job, "noise", hour)
        if resample is None or resample.status >= 400:
            return
        self.comparer.noise(job.call, legacy=legacy, resample=resample)


async def collect(reply: TargetReply, started: float, cap: int) -> Captured:
    try:
        return await capture(reply.parts, reply.status, reply.headers, started, cap)
    finally:
        await reply.aclose()

