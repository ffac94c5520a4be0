"""Fixtures for shadow and divert end to end: a legacy upstream, an orchestrator (the
built-in pipeline over fake model servers, or an external one), real Redis, and a proxy
whose flags the test sets through the real writer."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from proxy.flags.writer import rollback_sync, update_flags_sync
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream

_prefixes = itertools.count()


@dataclass
class Rig:
    """One proxy and everything around it."""

    proxy: ProxyProcess
    redis: RedisServer
    prefix: str
    legacy: FakeUpstream

    def set_flags(self, **changes: Any) -> int:
        snapshot = update_flags_sync(self.redis.url, self.prefix, changes, actor="test",
                                     reason="test")
        self.wait_version(snapshot.version)
        return snapshot.version

    def rollback(self) -> int:
        snapshot = rollback_sync(self.redis.url, self.prefix, actor="test", reason="test")
        self.wait_version(snapshot.version)
        return snapshot.version

    def wait_version(self, version: int) -> None:
        wait_for(lambda: self.flagz()["version"] >= version, message=f"flags v{version}")

    def flagz(self) -> dict[str, Any]:
        return httpx.get(self.proxy.admin_url + "/flagz", timeout=5).json()

    def statz(self) -> dict[str, Any]:
        return httpx.get(self.proxy.admin_url + "/statz", timeout=5).json()

    def skipped(self, reason: str) -> int:
        return int(self.statz()["shadow"]["skipped"].get(reason, 0))

    def shadows_idle(self) -> bool:
        return self.statz()["shadow"]["in_flight"] == 0


def make_config(legacy_url: str, redis: RedisServer, prefix: str,
                **sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "proxy": {"routes": routes_to(legacy_url)},
        "redis": {"url": redis.url, "key_prefix": prefix},
        "flags": {"poll_interval": 0.1},
        "comparison": {"noise_sample_percent": 0},
    }
    for name, value in sections.items():
        config[name] = value
    return config


def next_prefix() -> str:
    return f"test-traffic-{next(_prefixes)}"


@pytest.fixture
def legacy_server() -> Iterator[tuple[FakeUpstream, ThreadedServer]]:
    fake = FakeUpstream()
    with ThreadedServer(fake) as server:
        yield fake, server


@pytest.fixture
def orchestrator_server() -> Iterator[tuple[FakeUpstream, ThreadedServer]]:
    """An external OpenAI-compatible orchestrator (`orchestrator.endpoint`)."""
    fake = FakeUpstream()
    fake.default.answer = "orchestrator answer"
    with ThreadedServer(fake) as server:
        yield fake, server
