"""The long-lived resources of one sidecar process, created and closed together.

Layer: composition. Both listeners (proxy port and admin port) share one set of resources,
so their lifecycle sits above the two ASGI apps: `Runtime` is an async context manager
that `proxy.server` enters before the listeners start and leaves after both stopped.
Everything it creates is closed in reverse order, within the shutdown budget; nothing
it starts waits for Redis.

    legacy transport + pool gate     the legacy path (proxy.forward)
    flag service + config watcher    live flags and config reload (proxy.flags)
    telemetry                        traces and metrics (proxy.telemetry)
    redis (shared, background only)  learned records, shadow budget, report aggregates
    orchestrator pipeline / endpoint the orchestrator target (proxy.orchestrator.target)
    shadow client + runner           shadow jobs and noise samples (proxy.shadow.runner)
    diverter                         divert with legacy fallback (proxy.divert)
    recorder                         after-the-fact usage, cost and spans (proxy.recording.worker)
    ramp runner                      the guarded auto-ramp, when started (proxy.ramp)
"""

from __future__ import annotations

import contextlib
import logging
import time
from types import TracebackType

from proxy.comparison import DivergencePolicy, Limits, load_policy
from proxy.config import Settings
from proxy.config.reload import ConfigWatcher
from proxy.divert import Diverter
from proxy.flags.service import FlagService
from proxy.forward import Forwarder
from proxy.handler import ProxyEndpoint, Traffic
from proxy.orchestrator.pipeline import Pipeline, build_pipeline
from proxy.orchestrator.target import ExternalTarget, InProcessTarget, Target
from proxy.ramp.runner import build_ramp
from proxy.recording.comparer import Comparer
from proxy.recording.worker import ExchangeRecorder
from proxy.redisclient import Client, redis_client
from proxy.report.aggregate_store import ReportStore
from proxy.report.buffer import ReportBuffer
from proxy.routing import RouteTable
from proxy.shadow.budget import Budget, RedisBudget
from proxy.shadow.replay import LegacyReplay
from proxy.shadow.runner import ShadowRunner, _port
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
        self._stack = contextlib.AsyncExitStack()
        config = settings.config
        pool = config.proxy.pool
        limits = PoolLimits(pool.max_connections, pool.max_keepalive_connections,
                            pool.keepalive_expiry)
        self.legacy_transport = build_transport(config.proxy.transport, limits)
        self.legacy_gate = PoolGate(pool.max_connections)
        self.routes = RouteTable(config.proxy.routes)
        legacy = Forwarder(self.legacy_transport, self.legacy_gate)
        # Live flags: `flags.current` is what the request path decides on
        # (proxy.decision.decide); `decisions` counts the outcomes for /flagz.
        self.flag_service = FlagService(settings)
        self.flags = self.flag_service.watcher
        self.decisions = self.flag_service.counters
        self.config_watcher = ConfigWatcher(settings, self._apply_settings,
                                            interval=config.flags.config_reload_interval)
        self.telemetry = build_telemetry(config.telemetry)
        self.redis = self._shared_redis()
        self.pipeline: Pipeline | None = None
        self.target = self._target()
        shadow_limits = PoolLimits(config.shadow.max_connections, config.shadow.max_connections,
                                   pool.keepalive_expiry)
        self.shadow_client = build_client(config.proxy.transport, shadow_limits)
        self.report = (ReportStore.from_config(config.redis, config.comparison,
                                               client=self.redis)
                       if self.redis is not None else None)
        self.report_buffer = ReportBuffer(self.report) if self.report is not None else None
        self.prices = PriceTable.from_config(config)
        self.comparer = Comparer(self._divergence_policy(),
                                 Limits.from_section(config.comparison), self.telemetry,
                                 self.report_buffer)
        self.shadow = ShadowRunner(
            target=self.target,
            replay=LegacyReplay(self.shadow_client, config.shadow.tee_max_bytes),
            budget=self._budget(), comparer=self.comparer, telemetry=self.telemetry,
            prices=self.prices, max_concurrency=config.shadow.max_concurrency,
            timeout=config.shadow.timeout_seconds,
            reserve_usd=config.shadow.reserve_usd_per_call,
            noise_percent=config.comparison.noise_sample_percent,
            cap=config.shadow.tee_max_bytes)
        self.diverter = Diverter(target=self.target, legacy=legacy, shadow=self.shadow,
                                 comparer=self.comparer, telemetry=self.telemetry,
                                 settings=config.divert, prices=self.prices,
                                 tee_bytes=config.shadow.tee_max_bytes)
        # The auto-ramp: idle (one GET per tick) until `llm-shadow ramp start`.
        self.ramp = (build_ramp(settings, self.redis, writer=self.flag_service.writer,
                                config_use_orchestrator=self._config_use_orchestrator)
                     if self.redis is not None else None)
        self.recorder = ExchangeRecorder(
            self.telemetry, self.prices, self.comparer,
            {route.prefix: _port(route.upstream) for route in config.proxy.routes})
        self.endpoint = ProxyEndpoint(
            self.routes,
            legacy,
            body_read_timeout=config.proxy.body_read_timeout,
            request_id_header=config.proxy.request_id_header,
            max_header_bytes=config.proxy.max_header_bytes,
            recorder=self.recorder,
            traffic=Traffic(flags=self.flags, decisions=self.decisions, shadow=self.shadow,
                            divert=self.diverter, telemetry=self.telemetry,
                            shadow_settings=config.shadow,
                            task_hint_header=config.orchestrator.task_hint_header.encode(),
                            inject_usage_routes=config.comparison.inject_stream_usage_routes),
        )

    def _shared_redis(self) -> Client:
        """One client for background Redis work (learned records, budget, report, ramp);
        the flags have their own, with tight timeouts."""
        config = self.settings.config
        return redis_client(config.redis, connect_timeout=config.redis.connect_timeout,
                            socket_timeout=max(config.redis.socket_timeout, 1.0),
                            max_connections=32)

    def _target(self) -> Target:
        config = self.settings.config
        endpoint = config.orchestrator.endpoint
        if endpoint:
            client = build_client(config.proxy.transport, PoolLimits(
                config.orchestrator.max_connections, config.orchestrator.max_connections,
                config.proxy.pool.keepalive_expiry))
            self._stack.push_async_callback(client.aclose)
            return ExternalTarget(
                endpoint, client, config.proxy.routes[0].timeouts,
                forward_credentials=config.orchestrator.endpoint_forward_credentials)
        self.pipeline = build_pipeline(self.settings, self.redis)
        return InProcessTarget(self.pipeline)

    def _divergence_policy(self) -> DivergencePolicy:
        """The divergence policy file; the built-in default (with a warning) when the
        file does not exist. An invalid file raises `ConfigError`."""
        path = self.settings.resolve(self.settings.config.comparison.policy_file)
        if not path.exists():
            log.warning("divergence policy %s not found: using the built-in default", path)
            return load_policy(None)
        return load_policy(path)

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
        log.info("llm-shadow ready: config %s, %d routes, orchestrator %s",
                 self.settings.source, len(self.settings.config.proxy.routes),
                 self.target.name)
        return self

    async def _start(self) -> None:
        """Start everything; closing runs in reverse: shadows are cancelled first, then
        the recorder drains, then the report buffer flushes what both left."""
        stack = self._stack
        stack.push_async_callback(self.telemetry.aclose)
        stack.push_async_callback(self.legacy_transport.aclose)
        stack.push_async_callback(self.shadow_client.aclose)
        if self.redis is not None:
            stack.push_async_callback(self.redis.aclose)
        # Both start background tasks and return at once: start-up never waits for Redis.
        await self.flag_service.start()
        stack.push_async_callback(self.flag_service.aclose)
        await self.config_watcher.start()
        stack.push_async_callback(self.config_watcher.aclose)
        if self.ramp is not None:
            await self.ramp.start()
            stack.push_async_callback(self.ramp.aclose)
        if self.pipeline is not None:
            await self.pipeline.start()
            stack.push_async_callback(self.pipeline.aclose)
        self.flags.add_listener(self.shadow.on_flags)
        self.telemetry.observe_flags(self._observe_flags)
        if self.report_buffer is not None:
            self.report_buffer.start()
            stack.push_async_callback(self.report_buffer.aclose)
        self.recorder.start()
        stack.push_async_callback(self.recorder.aclose)
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
            "in_flight": self.endpoint.in_flight,
            "legacy_pool": {"in_use": self.legacy_gate.in_use, "size": self.legacy_gate.size},
            "shadow": {"in_flight": len(self.shadow.tasks),
                       "max_concurrency": self.shadow.max_concurrency,
                       "completed": self.shadow.completed,
                       "skipped": dict(self.shadow.skipped)},
            "recorder": {"queued": self.recorder.queue.qsize(),
                         "dropped": self.recorder.dropped},
            "ramp": None if self.ramp is None else {
                "holding": self.ramp.holding, "evaluations": self.ramp.evaluations,
                "failures": self.ramp.failures},
            "report": None if self.report_buffer is None or self.report is None else {
                "pending": len(self.report_buffer.pending),
                "dropped": self.report_buffer.dropped + self.report.dropped},
        }
