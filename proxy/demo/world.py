"""Everything the demo runs, in this process and event loop, started and stopped together:
the fake legacy upstream and orchestrator models, the proxy (the real `Runtime` and both
listeners, as `llm-shadow serve` runs them), and the trace destination.

Layer: composition. Start order: bind every socket (so all ports are known), write and
load the configuration, start the fakes, build the runtime (with the trace exporter
chosen by `proxy.demo.traces`), enter it, serve its listeners. Stop order is the
reverse; leaving the runtime flushes the report aggregates and the spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from proxy.demo import settings as demo_settings
from proxy.demo.servers import LoopbackServer, loopback_socket, port_of, wait_started
from proxy.demo.settings import MODELS, DemoSettings, Ports, Tuning
from proxy.demo.storage import Store, seed_flags
from proxy.demo.traces import Destination, SpanCounter, count_spans, exporting_to
from proxy.demo.upstreams import FakeLegacy, FakeModel, Latency, Regression
from proxy.runtime import Runtime
from proxy.server import Listeners

START_BUDGET_SECONDS = 15.0
RUNTIME_CLOSE_BUDGET_SECONDS = 20.0
log = logging.getLogger("llm_shadow.demo")


class DemoFailed(Exception):
    """Something the demo exists to show did not happen; the message says what was seen."""


class Closable(Protocol):
    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...


@dataclass
class World:
    store: Store
    demo: DemoSettings
    destination: Destination
    legacy: FakeLegacy
    legacy_server: LoopbackServer
    models: Mapping[str, FakeModel]
    model_servers: Mapping[str, LoopbackServer]
    regression: Regression
    runtime: Runtime
    listeners: Listeners
    spans: SpanCounter | None
    legacy_key: str

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.demo.settings.config.proxy.listen.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.demo.settings.config.proxy.admin.port}"


@contextlib.asynccontextmanager
async def running_world(store: Store, folder: Path, destination: Destination,
                        tuning: Tuning) -> AsyncIterator[World]:
    rng = random.Random(tuning.seed)
    regression = Regression()
    legacy_key = "sk-demo-legacy-" + secrets.token_hex(12)
    legacy = FakeLegacy(legacy_key, random.Random(rng.random()))
    keys = demo_settings.model_keys()
    models = {m.name: FakeModel(m.name, keys[m.name], random.Random(rng.random()),
                                Latency(*m.latency), regression) for m in MODELS}
    legacy_server = LoopbackServer("legacy", legacy)
    model_servers = {name: LoopbackServer(name, app) for name, app in models.items()}
    proxy_socket, admin_socket = loopback_socket(), loopback_socket()
    ports = Ports(legacy=legacy_server.url,
                  models={name: server.url + "/v1" for name, server in model_servers.items()},
                  proxy=port_of(proxy_socket), admin=port_of(admin_socket))
    demo = demo_settings.write_settings(folder, ports, store, tuning, keys,
                                        traces_file=destination.path)
    fakes = [legacy_server, *model_servers.values()]
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(proxy_socket.close)  # closed already by uvicorn once it served
        stack.callback(admin_socket.close)
        for server in fakes:
            server.start()
            stack.push_async_callback(server.stop)
        await _started(fakes, "the fake LLM servers")
        await seed_flags(store, demo.settings)
        with exporting_to(destination):
            runtime = Runtime(demo.settings)
        spans = count_spans(runtime.telemetry.providers.tracer_provider)
        await runtime.__aenter__()
        stack.push_async_callback(_close_runtime, runtime)
        listeners = Listeners(runtime)
        serving = asyncio.get_running_loop().create_task(
            listeners.serve([proxy_socket], [admin_socket]), name="demo-proxy")
        stack.push_async_callback(_stop_listeners, listeners, serving)
        await _started([listeners], "the proxy's listeners")
        yield World(store, demo, destination, legacy, legacy_server, models, model_servers,
                    regression, runtime, listeners, spans, legacy_key)


async def _close_runtime(runtime: Closable) -> None:
    """Leave the runtime within a budget. On Python 3.11 a cancellation can be lost
    inside redis-py (its `asyncio.wait_for`), and a background loop that lost it and has
    no closing flag of its own never ends, so its owner's `aclose()` would wait forever.
    Past the budget, the wait is cancelled, which cancels the stuck task a second time
    (that one lands); the runtime's other resources are still closed in order."""
    budget = asyncio.timeout(RUNTIME_CLOSE_BUDGET_SECONDS)
    with contextlib.suppress(TimeoutError):
        async with budget:
            await runtime.__aexit__(None, None, None)
    if budget.expired():
        log.warning("the proxy runtime did not close within %gs; a background task that "
                    "ignored its cancellation was cancelled again", RUNTIME_CLOSE_BUDGET_SECONDS)


async def _started(servers: list[Any], what: str) -> None:
    try:
        await wait_started(servers, START_BUDGET_SECONDS)
    except TimeoutError:
        raise DemoFailed(f"{what} did not start within {START_BUDGET_SECONDS:g}s") from None


async def _stop_listeners(listeners: Listeners, serving: asyncio.Task[None]) -> None:
    listeners.stop()
    try:
        await asyncio.wait_for(serving, 10.0)
    except TimeoutError:
        listeners.stop()  # a second stop exits without waiting for streams
