"""Shedding on real sockets: while the proxy's event loop lags, shadows are not launched
(counted as `overload` in /statz, the metrics and the report) and legacy answers as
always; once the loop is calm again, shadows resume.

The lag is real: the test stops the proxy process (SIGSTOP) for 60 ms out of every
100 ms, which is what an event loop blocked by CPU work or a CPU quota looks like from
inside: timers fire late (by up to 60 ms, against the default 10 ms threshold). Nothing
here depends on how loaded the machine is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from proxy.config.comparison import ComparisonSection
from proxy.config.proxy import RedisSection
from proxy.config.shadow import ShadowSection
from proxy.report.aggregate_store import ReportStore
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream
from tests.traffic.conftest import Rig, make_config, next_prefix

pytestmark = pytest.mark.integration

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


class Stalls:
    """Stops and continues a process in a loop, from a thread, until the block ends."""

    def __init__(self, pid: int, stopped: float = 0.06, running: float = 0.04):
        self.pid, self.stopped, self.running = pid, stopped, running
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(self.stopped)
            os.kill(self.pid, signal.SIGCONT)
            time.sleep(self.running)

    def __enter__(self) -> Stalls:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        os.kill(self.pid, signal.SIGCONT)


def skipped_in_report(rig: Rig) -> dict[str, int]:
    async def read() -> dict[str, int]:
        store = ReportStore.from_config(RedisSection(url=rig.redis.url, key_prefix=rig.prefix),
                                        ComparisonSection())
        try:
            return (await store.summary("/openai", time.time() - 3600)).shadow_skipped
        finally:
            await store.aclose()

    return asyncio.run(read())


@pytest.fixture
def rig(redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
        orchestrator_server: tuple[FakeUpstream, ThreadedServer]) -> Iterator[Rig]:
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": orchestrator_server[1].url},
                         shadow={"shed_lag_ms": ShadowSection().shed_lag_ms})
    with ProxyProcess(config) as proxy:
        yield Rig(proxy, redis_server, prefix, legacy_server[0])


def test_a_lagging_event_loop_sheds_shadows_then_they_resume(
    rig: Rig, legacy_server: tuple[FakeUpstream, ThreadedServer],
    orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    orchestrator, _ = orchestrator_server
    reference = httpx.post(legacy_server[1].url + "/v1/chat/completions", json=CHAT).content
    rig.set_flags(shadow_percent=100)
    assert rig.proxy.process is not None
    with Stalls(rig.proxy.process.pid):
        wait_for(lambda: rig.statz()["pressure"]["shedding"], message="shedding starts")
        for _ in range(3):
            response = httpx.post(rig.proxy.url + "/openai/v1/chat/completions", json=CHAT,
                                  timeout=30)
            assert response.status_code == 200
            assert response.content == reference
        stats = rig.statz()
    assert stats["shadow"]["skipped"]["overload"] == 3
    assert stats["pressure"]["lag_max_ms"] > stats["pressure"]["shed_lag_ms"]
    assert orchestrator.requests == [], "no shadow launched while shedding"
    metrics = httpx.get(rig.proxy.admin_url + "/metrics", timeout=10).text
    assert 'llm_shadow_shadow_skip_reason="overload"' in metrics
    wait_for(lambda: skipped_in_report(rig).get("overload") == 3,
             message="overload skips in the report")

    wait_for(lambda: not rig.statz()["pressure"]["shedding"], message="shedding ends")
    assert httpx.post(rig.proxy.url + "/openai/v1/chat/completions", json=CHAT,
                      timeout=30).status_code == 200
    wait_for(lambda: len(orchestrator.requests) == 1, message="shadows resumed")
    assert rig.statz()["pressure"]["shed_episodes"] >= 1
