"""The long-lived resources of one sidecar process, created and closed together.

Layer: composition. Both listeners (proxy port and admin port) share one set of resources,
so their lifecycle sits above the two ASGI apps: `Runtime` is an async context manager
that `proxy.server` enters before the listeners start and leaves after both stopped.
Everything it creates is closed in reverse order, within the shutdown budget; nothing
it starts waits for Redis.

    legacy transport + pool gate     the legacy path (proxy.forward)
    flag service + config watcher    live flags and config reload (proxy.flags)
    telemetry                        traces and metrics (proxy.telemetry)
    redis (shared, background only)  learned records, shadow and judge budgets, report
                                     aggregates, the ramp's state and its report reads
    orchestrator pipeline / endpoint the orchestrator target (proxy.orchestrator)
    shadow client + runner           shadow jobs and noise samples (proxy.shadow)
    pressure probe                   event-loop lag and CPU throttling: sheds shadows
    judge (own client)               the optional judge of comparisons (proxy.judge)
    diverter                         divert with legacy fallback (proxy.divert)
    recorder                         after-the-fact usage, cost and spans (proxy.recording)
    ramp runner                      the guarded auto-ramp, when started (proxy.ramp)

The ASGI apps that use them are put together in `proxy.app`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from types import TracebackType
from typing import Any

from proxy.comparison import Limits
from proxy.config import ConfigError, Settings
from proxy.config.policyfiles import load_divergence
from proxy.config.reload import ConfigWatcher
from proxy.divert import Diverter
from proxy.flags.service import FlagService
from proxy.forward import Forwarder
from proxy.handler import Load
from proxy.judge.grader import build_judge
from proxy.orchestrator.external import ExternalTarget
from proxy.orchestrator.pipeline import Pipeline, build_pipeline
from proxy.orchestrator.target import InProcessTarget, Target
from proxy.ramp.autopilot import build_ramp
from proxy.recording.comparer import Comparer
from proxy.recording.worker import ExchangeRecorder
from proxy.redisclient import Client, redis_client
from proxy.report.aggregate_store import ReportStore
from proxy.report.buffer import ReportBuffer
from proxy.routing import RouteTable
from proxy.shadow.budget import Budget, RedisBudget
from proxy.shadow.probe import PressureProbe
from proxy.shadow.replay import LegacyReplay
from proxy.shadow.runner import ShadowRunner
from proxy.shadow.shedding import Shedder
from proxy.telemetry.records import FlagObservation
from proxy.telemetry.setup import build_telemetry
from proxy.transport import PoolGate, PoolLimits, build_client, build_transport
from proxy.usage.prices import PriceTable

log = logging.getLogger("llm_shadow.runtime")


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.started_at = time.monotonic()
        self.ready = False
        self.draining = False
        self.load = Load()
        self._stack = contextlib.AsyncExitStack()
        config = settings.config
        self._legacy_path()
        # Live flags: `flags.current` is what the request path decides on
        # (proxy.decision.decide); `decisions` counts the outcomes for /flagz.
        self.flag_service = FlagService(settings)
        self.flags = self.flag_service.watcher
        self.decisions = self.flag_service.counters
        self.config_watcher = ConfigWatcher(settings, self._apply_settings,
                                            interval=config.flags.config_reload_interval)
        self.telemetry = build_telemetry(config.telemetry, base_dir=settings.base_dir)
        self.redis = self._shared_redis()
        self.pipeline: Pipeline | None = None
        self.target = self._target()
        self.prices = PriceTable.from_config(config)
        self._comparison()
        self._orchestrator_paths()
        # The auto-ramp: idle (one GET per tick) until `llm-shadow ramp start`.
        self.ramp = build_ramp(settings, self.redis, writer=self.flag_service.writer,
                               config_use_orchestrator=self._config_use_orchestrator)
        self.recorder = ExchangeRecorder(self.telemetry, self.prices, self.comparer)

    def _legacy_path(self) -> None:
        """The legacy client: its own transport and pool, gated so an exhausted pool is
        a quick 503 rather than a queue."""
        proxy = self.settings.config.proxy
        pool = proxy.pool
        limits = PoolLimits(pool.max_connections, pool.max_keepalive_connections,
                            pool.keepalive_expiry)
        self.legacy_transport = build_transport(proxy.transport, limits)
        self.legacy_gate = PoolGate(pool.max_connections)
        self.routes = RouteTable(proxy.routes)
        self.legacy = Forwarder(self.legacy_transport, self.legacy_gate,
                                proxy.request_id_header.lower().encode())

    def _comparison(self) -> None:
        """The comparer and where its results go: spans, and the report in Redis."""
        config = self.settings.config
        self.report = ReportStore.from_config(config.redis, config.comparison,
                                              client=self.redis)
        self.report_buffer = ReportBuffer(self.report)
        self.judge = build_judge(self.settings, self.redis, self.telemetry, self.report_buffer)
        # The divergence policy file (the built-in default when there is none); an
        # invalid file raises `ConfigError`.
        self.comparer = Comparer(load_divergence(self.settings),
                                 Limits.from_section(config.comparison), self.telemetry,
                                 self.report_buffer, judge=self.judge,
                                 keep_examples=config.comparison.keep_examples)

    def _orchestrator_paths(self) -> None:
        """Shadow (its own client and pool, never the legacy one) and divert."""
        config = self.settings.config
        shadow = config.shadow
        # Event-loop lag (and CPU throttling) above `shed_lag_ms` stops new shadows.
        self.probe = PressureProbe(Shedder(shadow.shed_lag_ms))
        self.shadow_client = build_client(config.proxy.transport, PoolLimits(
            shadow.max_connections, shadow.max_connections,
            config.proxy.pool.keepalive_expiry))
        self.shadow = ShadowRunner(
            target=self.target, replay=LegacyReplay(self.shadow_client, shadow.tee_max_bytes),
            budget=self._budget(), comparer=self.comparer, telemetry=self.telemetry,
            prices=self.prices, max_concurrency=shadow.max_concurrency,
            timeout=shadow.timeout_seconds, reserve_usd=shadow.reserve_usd_per_call,
            noise_percent=config.comparison.noise_sample_percent, cap=shadow.tee_max_bytes,
            shedder=self.probe.shedder, **self._endpoint_connections())
        self.diverter = Diverter(target=self.target, legacy=self.legacy, shadow=self.shadow,
                                 comparer=self.comparer, telemetry=self.telemetry,
                                 settings=config.divert, prices=self.prices,
                                 tee_bytes=shadow.tee_max_bytes)

    def _shared_redis(self) -> Client:
        """One client for background Redis work (learned records, budgets, report, ramp);
        the flags have their own, with tight timeouts."""
        config = self.settings.config
        return redis_client(config.redis, connect_timeout=config.redis.connect_timeout,
                            socket_timeout=max(config.redis.socket_timeout, 1.0),
                            max_connections=32)

    def _target(self) -> Target:
        config = self.settings.config
        endpoint = config.orchestrator.endpoint
        if endpoint:
            transport = build_transport(config.proxy.transport, PoolLimits(
                config.orchestrator.max_connections, config.orchestrator.max_connections,
                config.proxy.pool.keepalive_expiry))
            self._stack.push_async_callback(transport.aclose)
            return ExternalTarget(
                endpoint, transport, config.proxy.routes[0].timeouts,
                forward_credentials=config.orchestrator.endpoint_forward_credentials)
        self.pipeline = build_pipeline(self.settings, self.redis)
        return InProcessTarget(self.pipeline)

    def _endpoint_connections(self) -> dict[str, Any]:
        """For an orchestrator endpoint, the gate of its connections that shadows wait at
        (before building a request, see `proxy.shadow.runner`), and how long they wait."""
        config = self.settings.config
        if not config.orchestrator.endpoint:
            return {}
        return {"connections": PoolGate(config.orchestrator.max_connections),
                "connection_wait": config.proxy.routes[0].timeouts.pool}

    def _config_use_orchestrator(self) -> bool:
        """Whether this replica's (hot-reloaded) config.json leaves the orchestrator on."""
        return self.flags.current.local.use_orchestrator

    def _budget(self) -> Budget:
        config = self.settings.config
        return RedisBudget(self.redis, config.redis.keyspace, config.shadow.budget_usd_per_hour)

    def _apply_settings(self, settings: Settings) -> None:
        """A configuration reload (file change or SIGHUP) that passed validation."""
        self.flag_service.apply_settings(settings)
        if self.pipeline is not None:
            self.pipeline.apply_settings(settings)
        self._apply_comparison(settings)

    def _apply_comparison(self, settings: Settings) -> None:
        """The divergence policy (re-read), the comparison bounds and the noise share
        apply from the next comparison; an invalid policy file keeps the running one."""
        section = settings.config.comparison
        try:
            self.comparer.policy = load_divergence(settings)
        except ConfigError as exc:
            log.error("divergence policy not reloaded, keeping the running one:\n%s", exc)
        self.comparer.limits = Limits.from_section(section)
        self.shadow.noise_percent = section.noise_sample_percent
        self.judge.apply_settings(settings)

    def _observe_flags(self) -> FlagObservation:
        view = self.flags.current
        return FlagObservation(view.version, view.state, view.age(time.monotonic()))

    async def __aenter__(self) -> Runtime:
        try:
            await self._start()
        except BaseException:  # whatever started before the failure is closed again
            await self._stack.aclose()
            raise
        self.ready = True
        log.info("llm-shadow ready: %s, %d routes, orchestrator %s",
                 f"config {self.settings.source}" if self.settings.has_file
                 else "no config file: built-in defaults",
                 len(self.settings.config.proxy.routes), self.target.name)
        return self

    async def _start(self) -> None:
        """Start everything; closing runs in reverse: shadows are cancelled first, then
        the recorder drains, then judgements in flight are cancelled, then the report
        buffer flushes what they all left."""
        stack = self._stack
        stack.push_async_callback(self.telemetry.aclose)
        stack.push_async_callback(self.legacy_transport.aclose)
        stack.push_async_callback(self.shadow_client.aclose)
        stack.push_async_callback(self.redis.aclose)
        # Both start background tasks and return at once: start-up never waits for Redis.
        await self.flag_service.start()
        stack.push_async_callback(self.flag_service.aclose)
        await self.config_watcher.start()
        stack.push_async_callback(self.config_watcher.aclose)
        await self.ramp.start()
        stack.push_async_callback(self.ramp.aclose)
        if self.pipeline is not None:
            await self.pipeline.start()
            stack.push_async_callback(self.pipeline.aclose)
        self.flags.add_listener(self.shadow.on_flags)
        self.telemetry.observe_flags(self._observe_flags)
        self.report_buffer.start()
        stack.push_async_callback(self.report_buffer.aclose)
        self.judge.announce()
        stack.push_async_callback(self.judge.aclose)  # after what starts judgements
        self.recorder.start()
        stack.push_async_callback(self.recorder.aclose)
        self.probe.start()
        stack.push_async_callback(self.probe.aclose)
        stack.push_async_callback(self.shadow.aclose)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ready = False
        await self._stack.aclose()

    def stats(self) -> dict[str, object]:
        """What `/statz` shows: pools, in-flight work, shadow skips, recorder drops."""
        return {
            "in_flight": self.load.in_flight,
            "legacy_pool": {"in_use": self.legacy_gate.in_use, "size": self.legacy_gate.size},
            "shadow": {"in_flight": len(self.shadow.tasks),
                       "max_concurrency": self.shadow.max_concurrency,
                       "completed": self.shadow.completed,
                       "skipped": dict(self.shadow.skipped)},
            "pressure": self.probe.stats(),
            "divert": {"fallbacks": dict(self.diverter.fallbacks),
                       "streams_cut": dict(self.diverter.cuts)},
            "judge": self.judge.stats(),
            "recorder": {"queued": self.recorder.queue.qsize(),
                         "dropped": self.recorder.dropped},
            "ramp": {"holding": self.ramp.holding, "evaluations": self.ramp.evaluations,
                     "failures": self.ramp.failures},
            "report": {"pending": len(self.report_buffer.pending),
                       "dropped": self.report_buffer.dropped + self.report.dropped},
        }
