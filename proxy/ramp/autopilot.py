"""The ramp runner: a background task in every replica; the one holding the Redis lock
evaluates the ramp every few seconds and promotes, holds, rolls back, or pauses when a
person changed the flags it controls.

Layer: composition (one task, owned by the runtime: `start()` / `aclose()`).

Every tick reads `{prefix}:ramp:state` (one GET). With no ramp, or a ramp that is
rolled back, completed or stopped and applied, that is all: no lock, no other key, no
write. Otherwise the runner takes or renews the lock (`SET NX PX`, renewed per tick; see
`proxy.ramp.state_store`) and, holding it, finishes applying a state's flags if a writer
stopped half-way, or measures the step (`RampReports`), checks whether a person changed
the flags it controls (`levers.interference`: who changed what and why; the ramp then
pauses), decides (`controller.decide`), stores the evaluation, and writes the
transition (state, then flags, both audited).

Safety: the lock is trusted locally only until 80 % of its TTL after the last renewal
started (`holding`), and every state write is fenced by the lock token in Redis, so a
replica that stalled past its lease cannot promote or roll back on stale numbers. Flag
writes follow the state they were derived from (`control.apply_until_stable`).

The request path never waits for any of this: the runner only shares the event loop,
and every Redis operation is bounded by a timeout. A failing tick (Redis away, an
invalid stored state, a bug) is logged once per streak, counted in `failures`, and the
next tick tries again; it never stops the task or the replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from proxy.config import Settings
from proxy.flags.heartbeat import default_replica_id
from proxy.flags.snapshot import SnapshotInvalid, default_snapshot
from proxy.flags.store import StoreError
from proxy.flags.writer import FlagWriter
from proxy.ramp.control import apply_until_stable
from proxy.ramp.controller import Evaluation, decide
from proxy.ramp.levers import interference, killed
from proxy.ramp.readings import RampReports
from proxy.ramp.state import RampState, RampStateInvalid, encode_state
from proxy.ramp.state_store import RampStore
from proxy.redisclient import Client
from proxy.report.aggregate_store import ReportStore, ReportStoreError

log = logging.getLogger("llm_shadow.ramp")

IDLE_INTERVAL = 5.0
LOCK_SAFETY = 0.8
EXPECTED_FAILURES = (StoreError, ReportStoreError, RampStateInvalid, SnapshotInvalid)


class RampRunner:
    def __init__(self, store: RampStore, reports: RampReports, writer: FlagWriter, *,
                 replica_id: str, idle_interval: float = IDLE_INTERVAL,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 config_use_orchestrator: Callable[[], bool] = lambda: True):
        """`clock` is wall time (step timing, report windows: shared between replicas);
        `monotonic` times the lock lease (local only); `config_use_orchestrator` says
        whether this replica's config.json leaves the orchestrator on."""
        self.store = store
        self.reports = reports
        self.writer = writer
        self.replica_id = replica_id
        self.actor = f"ramp:{replica_id}"
        self.idle_interval = idle_interval
        self.clock = clock
        self.monotonic = monotonic
        self.config_use_orchestrator = config_use_orchestrator
        self.last: Evaluation | None = None
        self.ticks = 0
        self.evaluations = 0
        self.failures = 0
        self.lost_locks = 0
        self._token: str | None = None
        self._valid_until = 0.0
        self._delay = idle_interval
        self._tick = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._closing = False

    @property
    def holding(self) -> bool:
        """Whether this replica may act: it holds the lock and its lease is fresh."""
        return self._token is not None and self.monotonic() < self._valid_until

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ramp")

    async def aclose(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self._let_go()
        except StoreError as exc:
            log.info("ramp: lock not released (%s); it expires on its own", exc)

    async def evaluate_once(self) -> Evaluation | None:
        """One tick; the evaluation when this replica evaluated the ramp, else None."""
        async with self._tick:
            return await self._evaluate()

    # --- one tick -----------------------------------------------------------------------

    async def _run(self) -> None:
        # `_closing` ends the loop even when `aclose()`'s cancellation is lost: redis-py
        # sends through `asyncio.wait_for`, which on Python 3.11 can swallow a cancel that
        # races with the send completing (fixed in 3.12); the tick then returns normally.
        while not self._closing:
            try:
                await self.evaluate_once()
                if self._failing:
                    log.info("ramp: evaluations work again")
                    self._failing = False
            except Exception as exc:  # The ramp must never take the replica down: any
                # failure (Redis away, an invalid stored state, a bug) is logged once per
                # streak, counted, and the next tick tries again.
                self._failed(exc)
            self.ticks += 1
            await asyncio.sleep(self._delay)

    async def _evaluate(self) -> Evaluation | None:
        raw, state = await self.store.read()
        if raw is None or state is None or not state.needs_runner:
            self._delay = self.idle_interval
            await self._let_go()
            return None
        policy = state.policy
        self._delay = policy.evaluation_interval_seconds
        if not await self._hold_lock(policy.lock_ttl_seconds):
            return None
        if not state.applied:
            await apply_until_stable(self.store, self.writer, raw, state, actor=self.actor,
                                     token=self._token)
            return None
        now = self.clock()
        measurements = await self.reports.measure(state, now)
        snapshot, _ = await self.writer.read()
        intervention = interference(state, snapshot, replica=self.replica_id,
                                    config_use_orchestrator=self.config_use_orchestrator())
        evaluation = decide(state, measurements, now=now, intervention=intervention,
                            killed=snapshot is not None and killed(snapshot, policy))
        self.last, self.evaluations = evaluation, self.evaluations + 1
        await self.store.put_evaluation({**evaluation.as_dict(),
                                         "evaluated_by": self.replica_id})
        if evaluation.action != "hold" and self.holding:
            await self._transition(raw, state, evaluation, now)
        return evaluation

    async def _transition(self, raw: bytes, state: RampState, evaluation: Evaluation,
                          now: float) -> None:
        reason = evaluation.message
        if evaluation.action == "pause":
            new = state.paused(now=now, actor=self.actor, reason=reason)
        elif evaluation.action == "rollback":
            new = state.rolled_back(now=now, actor=self.actor, reason=reason)
        elif evaluation.action == "complete":
            new = state.completed(now=now, actor=self.actor, reason=reason)
        else:
            baselines = await self.reports.baselines(state.policy.routes, now)
            new = state.promoted(now=now, baselines=baselines, actor=self.actor, reason=reason)
        result = await self.store.write(raw, new, token=self._token)
        if result == "not_holder":
            self._lost()
            return
        if result == "conflict":
            log.info("ramp: the state changed during the evaluation; next tick re-reads it")
            return
        (log.warning if new.status in ("rolled_back", "paused") else log.info)(
            "ramp: %s", reason)
        if not new.applied:
            await apply_until_stable(self.store, self.writer, encode_state(new), new,
                                     actor=self.actor, token=self._token)

    # --- the lock -----------------------------------------------------------------------

    async def _hold_lock(self, ttl: float) -> bool:
        started = self.monotonic()
        if self._token is not None:
            if await self.store.renew(self._token, ttl):
                self._valid_until = started + ttl * LOCK_SAFETY
                return True
            self._lost()
        token = f"{self.replica_id}|{secrets.token_hex(8)}"
        if not await self.store.acquire(token, ttl):
            return False
        self._token, self._valid_until = token, started + ttl * LOCK_SAFETY
        log.info("ramp: replica %s now runs the ramp", self.replica_id)
        return True

    def _lost(self) -> None:
        log.warning("ramp: replica %s lost the ramp lock; another replica runs the ramp",
                    self.replica_id)
        self.lost_locks += 1
        self._token, self._valid_until = None, 0.0

    async def _let_go(self) -> None:
        token, self._token, self._valid_until = self._token, None, 0.0
        if token is not None:
            await self.store.release(token)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if self._failing:
            log.debug("ramp: evaluation failed again: %r", exc)
            return
        self._failing = True
        if isinstance(exc, EXPECTED_FAILURES):
            log.warning("ramp: evaluation failed (%s); retrying every %.1fs", exc, self._delay)
        else:
            log.exception("ramp: evaluation failed; retrying every %.1fs", self._delay)


def build_ramp(settings: Settings, redis_client: Client, *, writer: FlagWriter | None = None,
               replica_id: str | None = None,
               config_use_orchestrator: Callable[[], bool] = lambda: True) -> RampRunner:
    """The runner for one replica. `redis_client` is shared (the caller closes it);
    `writer` defaults to a `FlagWriter` on that client (pass the flag service's writer
    to share it); `config_use_orchestrator` reads this replica's live configuration (so
    a config-file rollback pauses the ramp). Does nothing until an operator runs
    `llm-shadow ramp start`."""
    config = settings.config
    prefix = config.redis.keyspace
    reports = ReportStore.from_config(config.redis, config.comparison, client=redis_client)
    writer = writer or FlagWriter(redis_client, prefix, defaults=default_snapshot(config))
    return RampRunner(RampStore(redis_client, prefix), RampReports(reports), writer,
                      replica_id=replica_id or config.flags.replica_id or default_replica_id(),
                      config_use_orchestrator=config_use_orchestrator)
