"""The long-lived resources of one sidecar process, created and closed together.

Layer: composition. Both listeners (proxy port and admin port) share one set of resources,
so their lifecycle sits above the two ASGI apps: `Runtime` is an async context manager
that `proxy.server` enters before the listeners start and leaves after both stopped.
Everything it creates is closed in reverse order, within the shutdown budget.
"""

from __future__ import annotations

import contextlib
import logging
import time
from types import TracebackType

from proxy.config import Settings
from proxy.config.watch import ConfigWatcher
from proxy.flags.service import FlagService
from proxy.forward import Forwarder
from proxy.handler import ProxyEndpoint
from proxy.routing import RouteTable
from proxy.transport import PoolGate, PoolLimits, build_transport

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
        self.endpoint = ProxyEndpoint(
            self.routes,
            Forwarder(self.legacy_transport, self.legacy_gate),
            body_read_timeout=config.proxy.body_read_timeout,
            request_id_header=config.proxy.request_id_header,
            max_header_bytes=config.proxy.max_header_bytes,
        )
        # Live flags: `flags.current` is what the request path decides on
        # (proxy.decision.decide); `decisions` counts the outcomes for /flagz.
        self.flag_service = FlagService(settings)
        self.flags = self.flag_service.watcher
        self.decisions = self.flag_service.counters
        self.config_watcher = ConfigWatcher(settings, self.flag_service.apply_settings,
                                            interval=config.flags.config_reload_interval)

    async def __aenter__(self) -> Runtime:
        self._stack.push_async_callback(self.legacy_transport.aclose)
        # Both start background tasks and return at once: start-up never waits for Redis.
        await self.flag_service.start()
        self._stack.push_async_callback(self.flag_service.aclose)
        await self.config_watcher.start()
        self._stack.push_async_callback(self.config_watcher.aclose)
        self.ready = True
        log.info("llm-shadow ready: config %s, %d routes", self.settings.source,
                 len(self.settings.config.proxy.routes))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ready = False
        await self._stack.aclose()
