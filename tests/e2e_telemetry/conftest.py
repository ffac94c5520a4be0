"""One parallel run for the whole package: the proxy (at --log-level debug, so the
secrets test also covers debug logging), the OTLP/HTTP receiver it exports to, the fake
legacy upstream and the fake orchestrator models. See `stack` for the layout."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.e2e_telemetry.stack import (
    ROUTE_FLAGS,
    LoggingProxy,
    Stack,
    default_behaviours,
    otel_env,
    proxy_config,
)
from tests.fakes.models import ModelFleet
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.servers import RedisServer, ThreadedServer
from tests.fakes.upstream import FakeUpstream

_prefixes = itertools.count()


@pytest.fixture(scope="package")
def receiver() -> Iterator[tuple[OtlpReceiver, ThreadedServer]]:
    store = OtlpReceiver()
    with ThreadedServer(store) as server:
        yield store, server


@pytest.fixture(scope="package")
def fleet() -> Iterator[ModelFleet]:
    with ModelFleet(default_behaviours()) as models:
        yield models


@pytest.fixture(scope="package")
def running(receiver: tuple[OtlpReceiver, ThreadedServer],
            upstream_server: tuple[FakeUpstream, ThreadedServer], redis_server: RedisServer,
            fleet: ModelFleet) -> Iterator[Stack]:
    store, server = receiver
    upstream, upstream_http = upstream_server
    config = proxy_config(upstream_http.url, redis_server.url,
                          f"e2e-telemetry-{next(_prefixes)}", fleet)
    proxy = LoggingProxy(config, otel_env(server.url), log_level="debug")
    with proxy:
        stack = Stack(proxy, store, upstream, upstream_http.url, fleet)
        stack.flag_version = stack.set_flags({"routes": ROUTE_FLAGS, "reason": "e2e telemetry"})
        yield stack


@pytest.fixture
def stack(running: Stack) -> Stack:
    """The package's run, with the fakes back to their default behaviour."""
    running.reset()
    return running
