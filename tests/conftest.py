"""Shared fixtures: a clean environment, a real redis-server, the fake upstream, and the
proxy as a real process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from proxy import redisclient
from tests.fakes.clients import close_sdk_clients
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import RedisServer, ThreadedServer
from tests.fakes.upstream import FakeUpstream

POLLUTING = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE",
             "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


@pytest.fixture(autouse=True)
def closed_sdk_clients() -> Iterator[None]:
    """Every SDK client a test opened with `sdk_client()` is closed when it ends."""
    yield
    close_sdk_clients()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LLM_SHADOW_*, OTEL_*, proxy or SSL variables leak in from the developer's shell."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(("LLM_SHADOW_", "OTEL_")) or upper in POLLUTING:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fresh_memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own empty in-process Redis behind `memory://` (one process
    shares one, so without this a test would see the keys the previous one wrote)."""
    monkeypatch.setattr(redisclient, "_memory_server", None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session, on a free port; tests that stop or restart it
    must use `own_redis` instead."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop and restart."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[tuple[FakeUpstream, ThreadedServer]]:
    fake = FakeUpstream()
    with ThreadedServer(fake) as server:
        yield fake, server


@pytest.fixture
def upstream(upstream_server: tuple[FakeUpstream, ThreadedServer]) -> FakeUpstream:
    """The session's fake upstream, reset to default behaviour for this test."""
    fake, _ = upstream_server
    fake.reset()
    return fake


@pytest.fixture
def upstream_url(upstream_server: tuple[FakeUpstream, ThreadedServer]) -> str:
    return upstream_server[1].url


@pytest.fixture(scope="session")
def passthrough_proxy(
    upstream_server: tuple[FakeUpstream, ThreadedServer],
) -> Iterator[ProxyProcess]:
    """`llm-shadow serve` routing /openai and /anthropic to the fake upstream, with Redis
    pointed at a closed port (legacy only: the pass-through needs no Redis)."""
    config = {"proxy": {"routes": routes_to(upstream_server[1].url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config) as proxy:
        yield proxy


def tight_routes(upstream_url: str, **route: object) -> list[dict[str, object]]:
    timeouts = {"connect": 0.5, "read": 2.0, "write": 2.0, "pool": 0.5}
    return [{**entry, "timeouts": timeouts, "max_body_bytes": 4096, **route}
            for entry in routes_to(upstream_url)]


@pytest.fixture(scope="session")
def tight_proxy(
    upstream_server: tuple[FakeUpstream, ThreadedServer],
) -> Iterator[ProxyProcess]:
    """A proxy with small limits, so that limits and timeouts show within seconds: bodies
    up to 4 KiB, a 1 s body deadline, a 2 s read timeout and a pool of 4 connections."""
    config = {"proxy": {"routes": tight_routes(upstream_server[1].url),
                        "body_read_timeout": 1.0,
                        "pool": {"max_connections": 4, "max_keepalive_connections": 4}},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config) as proxy:
        yield proxy
