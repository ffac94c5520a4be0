"""Shadow and divert against an external orchestrator (`orchestrator.endpoint`) on real
sockets: whatever the orchestrator does, a shadowed request's legacy answer is untouched,
and a divert falls back to legacy before its first byte."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from proxy.decision import bucket_of
from tests.fakes.clients import sdk_client
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.traffic.conftest import Rig, make_config, next_prefix

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def rig(redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
        orchestrator_server: tuple[FakeUpstream, ThreadedServer]) -> Iterator[Rig]:
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": orchestrator_server[1].url},
                         shadow={"max_concurrency": 2, "timeout_seconds": 30})
    with ProxyProcess(config) as proxy:
        yield Rig(proxy, redis_server, prefix, legacy_server[0])


def post(rig: Rig, body: dict | None = None, **headers: str) -> httpx.Response:
    return httpx.post(rig.proxy.url + "/openai/v1/chat/completions", json=body or CHAT,
                      headers={"authorization": "Bearer sk-legacy-key", **headers},
                      timeout=30)


def direct(url: str, body: dict | None = None) -> bytes:
    return httpx.post(url + "/v1/chat/completions", json=body or CHAT,
                      headers={"authorization": "Bearer sk-legacy-key"}).content


@pytest.mark.parametrize("fault", [
    Behaviour(hang="headers"), Behaviour(status=500), Behaviour(reset_after=1),
    Behaviour(latency_ms=1500), Behaviour(hang="body"),
], ids=["hangs", "500", "resets", "slow", "stalls mid-stream"])
def test_orchestrator_faults_leave_legacy_byte_identical(
    rig: Rig, orchestrator_server: tuple[FakeUpstream, ThreadedServer],
    legacy_server: tuple[FakeUpstream, ThreadedServer], fault: Behaviour,
) -> None:
    orchestrator, _ = orchestrator_server
    orchestrator.default = fault
    reference = direct(legacy_server[1].url, {**CHAT, "stream": True})
    rig.set_flags(shadow_percent=100)
    response = post(rig, {**CHAT, "stream": True})
    assert response.status_code == 200
    assert response.content == reference
    wait_for(lambda: len(orchestrator.requests) == 1, message="the shadow was sent")
    if fault.hang or fault.latency_ms:
        # Ordering, not timing: the client had its whole answer while the shadow was
        # still waiting on the orchestrator.
        assert orchestrator.requests[0].finished_at is None
    rig.rollback()
    wait_for(rig.shadows_idle, message="shadow cancelled by the rollback")


def test_orchestrator_down_leaves_legacy_unaffected(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": "http://127.0.0.1:9"})
    with ProxyProcess(config) as proxy:
        rig = Rig(proxy, redis_server, prefix, legacy_server[0])
        rig.set_flags(shadow_percent=100)
        for _ in range(5):
            assert post(rig).status_code == 200
        wait_for(lambda: rig.skipped("error") + rig.statz()["shadow"]["completed"] >= 0
                 and rig.shadows_idle())
    assert len(legacy_server[0].requests) == 5


def test_full_shadow_slots_drop_and_count(
    rig: Rig, orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    orchestrator, _ = orchestrator_server
    orchestrator.default = Behaviour(hang="headers")
    rig.set_flags(shadow_percent=100)
    for _ in range(5):
        assert post(rig).status_code == 200
    assert rig.statz()["shadow"]["in_flight"] == 2
    assert rig.skipped("concurrency_full") == 3
    assert len(orchestrator.requests) == 2
    rig.rollback()
    wait_for(rig.shadows_idle)


def test_marker_headers_and_kill_cancels_in_flight_shadows(
    rig: Rig, orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    orchestrator, _ = orchestrator_server
    orchestrator.default = Behaviour(hang="headers")
    rig.set_flags(shadow_percent=100)
    for _ in range(2):
        assert post(rig, **{"x-llm-shadow-role": "divert"}).status_code == 200
    wait_for(lambda: len(orchestrator.requests) == 2)
    sent = orchestrator.requests[0]
    assert sent.header("x-llm-shadow-role") == "shadow"
    assert sent.header("via") == "1.1 llm-shadow"
    # Trace context flows even when no trace is exported (OTEL_TRACES_EXPORTER=none).
    assert (sent.header("traceparent") or "").startswith("00-")
    assert sent.header("authorization") is None, "the legacy key reached the orchestrator"
    rig.set_flags(kill=True)
    wait_for(rig.shadows_idle, message="in-flight shadows cancelled")
    wait_for(lambda: all(r.disconnected for r in orchestrator.requests),
             message="the orchestrator saw its requests cancelled")
    assert rig.skipped("kill") == 2
    assert post(rig).status_code == 200
    assert len(orchestrator.requests) == 2, "no new shadow after the kill"


def test_stateful_endpoints_are_never_shadowed(
    rig: Rig, orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    rig.set_flags(shadow_percent=100, divert_percent=100)
    for path in ("/openai/v1/files", "/openai/v1/batches", "/openai/v1/assistants",
                 "/openai/v1/models"):
        assert httpx.post(rig.proxy.url + path, json={}).status_code == 200
    assert orchestrator_server[0].requests == []
    assert rig.skipped("not_eligible") == 4


def test_rejected_requests_are_not_shadowed(
    rig: Rig, orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    rig.set_flags(shadow_percent=100)
    response = httpx.post(rig.proxy.url + "/openai/v1/chat/completions",
                          content=b"x" * (33 * 1024 * 1024), timeout=60)
    assert response.status_code == 413
    assert orchestrator_server[0].requests == []


def test_shadow_body_over_the_shadow_limit_is_skipped(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
    orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": orchestrator_server[1].url},
                         shadow={"max_body_bytes": 1024})
    with ProxyProcess(config) as proxy:
        rig = Rig(proxy, redis_server, prefix, legacy_server[0])
        rig.set_flags(shadow_percent=100)
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
        assert post(rig, big).status_code == 200
        assert rig.skipped("body_too_large") == 1
    assert len(legacy_server[0].requests[-1].body) > 5000
    assert orchestrator_server[0].requests == []


def test_budget_spent_stops_shadowing(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
    orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": orchestrator_server[1].url},
                         shadow={"budget_usd_per_hour": 0.025, "reserve_usd_per_call": 0.01})
    with ProxyProcess(config) as proxy:
        rig = Rig(proxy, redis_server, prefix, legacy_server[0])
        rig.set_flags(shadow_percent=100)
        for _ in range(4):
            assert post(rig).status_code == 200
            wait_for(rig.shadows_idle)
        assert rig.skipped("budget_spent") == 2
    assert len(orchestrator_server[0].requests) == 2


@pytest.mark.parametrize("fault,reason", [
    (Behaviour(status=500), "status_500"), (Behaviour(hang="headers"), "timeout"),
    (Behaviour(reset_after=0), "error"),
], ids=["500", "timeout", "reset before the first byte"])
def test_divert_falls_back_to_legacy_before_the_first_byte(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
    orchestrator_server: tuple[FakeUpstream, ThreadedServer], fault: Behaviour, reason: str,
) -> None:
    orchestrator, server = orchestrator_server
    orchestrator.default = fault
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": server.url},
                         divert={"fallback_after_seconds": 1.0, "shadow_legacy": False})
    with ProxyProcess(config) as proxy:
        rig = Rig(proxy, redis_server, prefix, legacy_server[0])
        rig.set_flags(divert_percent=100)
        client = sdk_client(openai.OpenAI(base_url=proxy.url + "/openai/v1",
                                          api_key="sk-legacy", max_retries=0))
        answer = client.chat.completions.create(**CHAT, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in answer
                       if chunk.choices)
    assert text == "Answer to: hello"
    assert len(orchestrator.requests) == 1
    assert len(legacy_server[0].requests) == 1


def test_divert_failing_mid_stream_aborts_and_never_splices_legacy(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
    orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    orchestrator, server = orchestrator_server
    orchestrator.default = Behaviour(reset_after=3, answer="orchestrator answer")
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": server.url},
                         divert={"shadow_legacy": False})
    with ProxyProcess(config) as proxy:
        Rig(proxy, redis_server, prefix, legacy_server[0]).set_flags(divert_percent=100)
        received = b""
        with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
                "POST", proxy.url + "/openai/v1/chat/completions",
                json={**CHAT, "stream": True}, timeout=30) as response:
            for chunk in response.iter_raw():
                received += chunk
    assert received.count(b"data: ") == 3
    assert b"[DONE]" not in received
    assert legacy_server[0].requests == [], "legacy must not be called after bytes went out"


def test_divert_success_with_legacy_as_the_shadow(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
    orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    orchestrator, server = orchestrator_server
    prefix = next_prefix()
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": server.url})
    with ProxyProcess(config) as proxy:
        rig = Rig(proxy, redis_server, prefix, legacy_server[0])
        rig.set_flags(divert_percent=100)
        response = post(rig)
        assert response.json()["choices"][0]["message"]["content"] == "orchestrator answer"
        wait_for(lambda: len(legacy_server[0].requests) == 1,
                 message="the legacy call ran as the divert's shadow")
        wait_for(lambda: rig.statz()["shadow"]["completed"] == 1)
    assert orchestrator.requests[0].header("x-llm-shadow-role") == "divert"


@pytest.mark.parametrize("percent", [0.0, 37.0, 100.0])
def test_divert_percentages_select_exactly_the_bucket_band(
    rig: Rig, orchestrator_server: tuple[FakeUpstream, ThreadedServer], percent: float,
) -> None:
    rig.set_flags(divert_percent=percent)
    keys = [f"conversation-{i}" for i in range(120)]
    answered_by_orchestrator = set()
    with httpx.Client(timeout=30) as client:
        for key in keys:
            response = client.post(rig.proxy.url + "/openai/v1/chat/completions", json=CHAT,
                                   headers={"x-conversation-id": key})
            if response.json()["choices"][0]["message"]["content"] == "orchestrator answer":
                answered_by_orchestrator.add(key)
    expected = {key for key in keys if bucket_of(key) < percent * 100}
    assert answered_by_orchestrator == expected
    if percent == 0:
        assert not expected
    if percent == 100:
        assert expected == set(keys)


def test_credentials_in_the_query_never_reach_the_orchestrator(
    rig: Rig, orchestrator_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    rig.set_flags(shadow_percent=100)
    response = httpx.post(rig.proxy.url + "/openai/v1/chat/completions"
                          "?api-version=2024-10-21&key=SENTINEL4&api_key=S5", json=CHAT)
    assert response.status_code == 200
    wait_for(lambda: len(orchestrator_server[0].requests) == 1)
    assert orchestrator_server[0].requests[0].query == "api-version=2024-10-21"
