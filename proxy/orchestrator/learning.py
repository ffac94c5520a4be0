"""The orchestrator's memory: an in-process view of every learned record, kept in step
with the shared store.

Layer: adapter-facing core (asyncio, no I/O library of its own; I/O goes through a
`LearningStore`). Selection reads the in-process view, so the request path never waits
for Redis. Each call's outcome is applied to the view at once and queued; `sync()` sends
the queue to the store as increments and reloads the view, which brings in what the other
replicas learned. The proxy runs `sync()` in a background task every `refresh_seconds`;
the Python API calls it after each request.

If the store is unreachable, updates wait in a bounded queue (oldest dropped and counted
when full) and the view keeps working locally; the state change is logged once, not per
request. With no Redis at all the store is memory and the log says so at start.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from proxy.background import stop
from proxy.orchestrator.learned import (
    Evidence,
    ModelRecord,
    Outcome,
    RecordKey,
    Sample,
    agreement_delta,
    call_delta,
    feedback_delta,
    reliability,
)
from proxy.orchestrator.learned_store import (
    Delta,
    LearningStore,
    MemoryLearningStore,
    StoreUnavailable,
    describe,
)

log = logging.getLogger("llm_shadow.orchestrator.learning")


class FeedbackResult(enum.StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    QUEUED = "queued"  # the store is unreachable: counted here, sent when it is back


class Learning:
    def __init__(self, store: LearningStore | None = None, evidence: Evidence | None = None,
                 *, pending_limit: int = 10_000, refresh_seconds: float = 2.0,
                 clock: Callable[[], float] = time.time):
        self.store: LearningStore = store or MemoryLearningStore()
        self.evidence = evidence or Evidence()
        self.refresh_seconds = refresh_seconds
        self.dropped = 0
        self.reachable = True
        self._clock = clock
        self._pending_limit = pending_limit
        self._base: dict[RecordKey, ModelRecord] = {}
        self._view: dict[RecordKey, ModelRecord] = {}
        self._pending: list[Delta] = []
        self._samples: list[tuple[RecordKey, Sample]] = []
        self._local_claims: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()

    # --- reading -----------------------------------------------------------------------

    def record(self, task: str, model: str) -> ModelRecord:
        return self._view.get((task, model), ModelRecord())

    def records(self) -> dict[RecordKey, ModelRecord]:
        return dict(self._view)

    def reliability(self, task: str, model: str) -> float:
        return reliability(self.record(task, model), self.evidence)

    async def samples(self) -> dict[RecordKey, list[Sample]]:
        """Recent calls per record, for reports (reads the store; not for the hot path)."""
        await self.sync()
        try:
            stored = await self.store.load_samples()
        except StoreUnavailable:
            stored = {}
        for key, sample in self._samples:  # not yet sent: newest first, like the store
            stored.setdefault(key, []).insert(0, sample)
        return stored

    # --- writing -----------------------------------------------------------------------

    def observe(self, task: str, model: str, outcome: Outcome, *, latency: float | None,
                cost: float, input_tokens: int = 0, output_tokens: int = 0) -> None:
        """One model call finished (or was cancelled)."""
        key = (task, model)
        self._add(key, call_delta(outcome, latency=latency, cost=cost,
                                  input_tokens=input_tokens, output_tokens=output_tokens))
        self._samples.append((key, Sample(self._clock(), outcome, latency, cost)))
        if len(self._samples) > self._pending_limit:
            del self._samples[0]

    def agreement(self, task: str, model: str, agreed: bool) -> None:
        """Whether the model's answer was in the merged (winning) group."""
        self._add((task, model), agreement_delta(agreed))

    async def feedback(self, request_id: str, model: str, task: str,
                       was_correct: bool) -> FeedbackResult:
        """Explicit feedback; counted once per (request, model) across every replica."""
        claim = (request_id, model)
        try:
            fresh = await self.store.claim_feedback(request_id, model)
        except StoreUnavailable:
            if claim in self._local_claims:
                return FeedbackResult.DUPLICATE
            self._remember(claim)
            self._add((task, model), feedback_delta(was_correct))
            self._mark(False)
            return FeedbackResult.QUEUED
        if not fresh or claim in self._local_claims:
            return FeedbackResult.DUPLICATE
        self._remember(claim)
        self._add((task, model), feedback_delta(was_correct))
        await self.sync()
        return FeedbackResult.QUEUED if not self.reachable else FeedbackResult.RECORDED

    async def read_through(self) -> tuple[dict[RecordKey, ModelRecord],
                                          dict[RecordKey, list[Sample]]]:
        """Records and recent samples as the store has them plus what this process has
        not sent yet, without changing any state (safe from another thread's loop, which
        the sync Python API uses for reports). Falls back to the local view if the store
        is unreachable."""
        pending, unsent = list(self._pending), list(self._samples)
        try:
            records = await self.store.load()
            samples = await self.store.load_samples()
        except StoreUnavailable:
            return dict(self._view), {key: [s for k, s in reversed(unsent) if k == key]
                                      for key in {k for k, _ in unsent}}
        for key, delta in pending:
            records[key] = records.get(key, ModelRecord()).plus(delta)
        for key, sample in unsent:
            samples.setdefault(key, []).insert(0, sample)
        return records, samples

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a learning coroutine in the background, owned here (for sync callers)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def settle(self) -> None:
        """Wait for background feedback started by sync callers."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _remember(self, claim: tuple[str, str]) -> None:
        if len(self._local_claims) >= 100_000:  # bound: the store dedupes across replicas
            self._local_claims.clear()
        self._local_claims.add(claim)

    def _add(self, key: RecordKey, delta: Mapping[str, float]) -> None:
        self._view[key] = self._view.get(key, ModelRecord()).plus(delta)
        self._pending.append((key, delta))
        if len(self._pending) > self._pending_limit:
            del self._pending[0]
            self.dropped += 1

    # --- syncing -----------------------------------------------------------------------

    async def sync(self) -> None:
        """Send queued updates to the store, then reload everything every replica
        learned. Never raises for an unreachable store."""
        async with self._lock:
            deltas, samples = self._pending, self._samples
            self._pending, self._samples = [], []
            try:
                await self.store.apply(deltas, samples)
            except StoreUnavailable:
                self._requeue(deltas, samples)
                self._mark(False)
                return
            for key, delta in deltas:
                self._base[key] = self._base.get(key, ModelRecord()).plus(delta)
            try:
                self._base = await self.store.load()
            except StoreUnavailable:
                self._mark(False)
            else:
                self._mark(True)
            self._rebuild_view()

    def _requeue(self, deltas: Sequence[Delta],
                 samples: Sequence[tuple[RecordKey, Sample]]) -> None:
        self._pending = [*deltas, *self._pending]
        self._samples = [*samples, *self._samples]
        overflow = len(self._pending) - self._pending_limit
        if overflow > 0:
            del self._pending[:overflow]
            self.dropped += overflow
        del self._samples[:max(0, len(self._samples) - self._pending_limit)]

    def _rebuild_view(self) -> None:
        view = dict(self._base)
        for key, delta in self._pending:
            view[key] = view.get(key, ModelRecord()).plus(delta)
        self._view = view

    def _mark(self, reachable: bool) -> None:
        if reachable and not self.reachable:
            log.info("learning store reachable again; queued updates sent")
        elif not reachable and self.reachable:
            log.warning("learning store unreachable: learning continues in this replica and "
                        "up to %d updates wait to be sent", self._pending_limit)
        self.reachable = reachable

    # --- lifecycle ---------------------------------------------------------------------

    def announce(self) -> None:
        """Say in the log where learned records live (memory is a warning)."""
        if self.store.kind == "memory":
            log.warning("learned model records are kept in memory only (no Redis): they are "
                        "not shared between replicas and are lost on restart")
        else:
            log.info("learned model records are kept in %s", describe(self.store))

    async def start(self) -> None:
        """Start the background sync; its first round (loading what the replicas learned)
        runs at once, but start-up never waits for Redis."""
        self.announce()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="learning-sync")

    async def _run(self) -> None:
        # `_closing` ends the loop even when the cancel is lost inside redis-py on
        # Python 3.11 (see proxy.background).
        while not self._closing:
            await self.sync()
            await asyncio.sleep(self.refresh_seconds)

    async def aclose(self) -> None:
        """Stop the background sync and send what is still queued (best effort)."""
        self._closing = True
        if self._task is not None:
            await stop([self._task])
            self._task = None
        await self.settle()
        await self.sync()
