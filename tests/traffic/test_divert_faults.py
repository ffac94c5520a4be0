"""A divert on real sockets against an orchestrator that fails in every way it can
before its answer is committed: the client gets legacy's answer, byte for byte, and the
fallback reason is counted. After a stream's first byte went out, a failure aborts the
stream, and the cut is counted.

The orchestrator is `tests.fakes.chaos` (raw sockets: half a body then a closed
connection, a reset, a body without a length cut short); legacy is the fake upstream;
flags are in a real Redis; the proxy is a real `llm-shadow serve`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.chaos import ChaosOrchestrator
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream
from tests.traffic.conftest import Rig, make_config, next_prefix

pytestmark = pytest.mark.integration

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
MESSAGES = {"model": "claude-test", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hello"}]}
RESPONSES = {"model": "gpt-4o-mini", "input": "hello"}
PATHS = {"chat": ("/openai/v1/chat/completions", CHAT),
         "anthropic": ("/anthropic/v1/messages", MESSAGES),
         "responses": ("/openai/v1/responses", RESPONSES)}


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosOrchestrator]:
    with ChaosOrchestrator(stall_seconds=3.0, slow_seconds=3.0) as orchestrator:
        yield orchestrator


@pytest.fixture(scope="module")
def legacy() -> Iterator[tuple[FakeUpstream, ThreadedServer]]:
    fake = FakeUpstream()
    with ThreadedServer(fake) as server:
        yield fake, server


@pytest.fixture(scope="module")
def rig(redis_server: RedisServer, legacy: tuple[FakeUpstream, ThreadedServer],
        chaos: ChaosOrchestrator) -> Iterator[Rig]:
    """One proxy for the module (each test counts from where the last one left off)."""
    prefix = next_prefix()
    config = make_config(legacy[1].url, redis_server, prefix,
                         orchestrator={"endpoint": chaos.url},
                         divert={"shadow_legacy": False, "fallback_after_seconds": 1.0})
    with ProxyProcess(config) as proxy:
        rig = Rig(proxy, redis_server, prefix, legacy[0])
        rig.set_flags(divert_percent=100)
        yield rig


class Counts:
    """What the proxy and the orchestrator counted during one test."""

    def __init__(self, rig: Rig, chaos: ChaosOrchestrator):
        self.rig, self.chaos = rig, chaos
        self.before = rig.statz()["divert"]
        self.served = dict(chaos.served)
        self.legacy_calls = len(rig.legacy.requests)

    def added(self, kind: str) -> dict[str, int]:
        now, then = self.rig.statz()["divert"][kind], self.before[kind]
        return {k: v - then.get(k, 0) for k, v in now.items() if v != then.get(k, 0)}

    def served_now(self, mode: str) -> int:
        return self.chaos.served[mode] - self.served.get(mode, 0)

    def legacy_now(self) -> int:
        return len(self.rig.legacy.requests) - self.legacy_calls


def direct(legacy: ThreadedServer, path: str, body: dict[str, Any]) -> bytes:
    """Legacy's answer to the same request, asked without the proxy."""
    upstream_path = path.split("/", 2)[2]
    return httpx.post(f"{legacy.url}/{upstream_path}", json=body, timeout=30).content


def post(rig: Rig, path: str, body: dict[str, Any], mode: str) -> httpx.Response:
    return httpx.post(rig.proxy.url + path, json=body, timeout=30,
                      headers={"x-chaos": mode})


@pytest.mark.parametrize("mode,reason", [
    ("cut", "incomplete"), ("reset_mid", "incomplete"), ("cut_unframed", "invalid_json"),
    ("stall", "fallback_budget"), ("slow", "fallback_budget"), ("hang", "fallback_budget"),
    ("reset", "error"), ("status_500", "status_500"),
])
@pytest.mark.parametrize("api", ["chat", "anthropic", "responses"])
def test_a_non_streamed_answer_is_whole_before_it_is_sent_or_legacy_answers(
    rig: Rig, legacy: tuple[FakeUpstream, ThreadedServer], chaos: ChaosOrchestrator,
    api: str, mode: str, reason: str,
) -> None:
    path, body = PATHS[api]
    counts = Counts(rig, chaos)
    response = post(rig, path, body, mode)
    assert response.status_code == 200
    assert response.content == direct(legacy[1], path, body)
    assert counts.served_now(mode) == 1
    assert counts.added("fallbacks") == {reason: 1}


@pytest.mark.parametrize("api", ["chat", "anthropic", "responses"])
def test_a_whole_answer_is_served(rig: Rig, chaos: ChaosOrchestrator, api: str) -> None:
    path, body = PATHS[api]
    counts = Counts(rig, chaos)
    response = post(rig, path, body, "answer")
    assert response.status_code == 200
    assert b"orchestrator: hello" in response.content
    assert counts.legacy_now() == 0
    assert counts.added("fallbacks") == {}


def test_an_answer_over_the_routes_body_limit_falls_back(
    redis_server: RedisServer, legacy: tuple[FakeUpstream, ThreadedServer],
    chaos: ChaosOrchestrator,
) -> None:
    prefix = next_prefix()
    config = make_config(legacy[1].url, redis_server, prefix,
                         orchestrator={"endpoint": chaos.url},
                         divert={"shadow_legacy": False})
    config["proxy"]["routes"][0]["max_body_bytes"] = 200
    with ProxyProcess(config) as proxy:
        rig = Rig(proxy, redis_server, prefix, legacy[0])
        rig.set_flags(divert_percent=100)
        response = post(rig, "/openai/v1/chat/completions", CHAT, "answer")
        assert response.content == direct(legacy[1], "/openai/v1/chat/completions", CHAT)
        assert rig.statz()["divert"]["fallbacks"] == {"too_large": 1}


@pytest.mark.parametrize("mode", ["cut", "reset_mid"])
def test_a_stream_cut_after_its_first_byte_is_aborted_and_counted(
    rig: Rig, chaos: ChaosOrchestrator, mode: str,
) -> None:
    counts = Counts(rig, chaos)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
            "POST", rig.proxy.url + "/openai/v1/chat/completions",
            json={**CHAT, "stream": True}, headers={"x-chaos": mode},
            timeout=30) as response:
        for chunk in response.iter_raw():
            received += chunk
    assert b'"content":"orche' in received  # the orchestrator's stream began
    assert b"[DONE]" not in received
    assert counts.legacy_now() == 0, "legacy must not be spliced onto a partial answer"
    wait_for(lambda: counts.added("streams_cut") == {"incomplete": 1},
             message="the cut stream counted")
    metrics = httpx.get(rig.proxy.admin_url + "/metrics", timeout=10).text
    assert "llm_shadow_divert_streams_cut_total" in metrics


def test_a_stream_failing_before_its_first_byte_falls_back(
    rig: Rig, legacy: tuple[FakeUpstream, ThreadedServer], chaos: ChaosOrchestrator,
) -> None:
    counts = Counts(rig, chaos)
    stream = {**CHAT, "stream": True}
    response = post(rig, "/openai/v1/chat/completions", stream, "hang")
    assert response.status_code == 200
    assert response.content == direct(legacy[1], "/openai/v1/chat/completions", stream)
    assert counts.added("fallbacks") == {"fallback_budget": 1}
