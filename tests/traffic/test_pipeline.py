"""Shadow and divert with the built-in orchestrator pipeline over fake model servers, the
official SDKs as the legacy client, and the comparison report in real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from proxy.comparison import in_noise_sample
from proxy.config.comparison import ComparisonSection
from proxy.config.proxy import RedisSection
from proxy.report.aggregate_store import ReportStore
from tests.fakes.clients import sdk_client
from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream
from tests.traffic.conftest import Rig, make_config, next_prefix

MESSAGES: Any = [{"role": "user", "content": "What is the capital of France?"}]


def echo(prompt: str) -> str:
    """What the fake legacy upstream answers, so models agreeing with legacy say it too."""
    return f"Answer to: {prompt}"


@pytest.fixture
def fleet() -> Iterator[ModelFleet]:
    with ModelFleet({"alpha": ModelBehaviour(answer=echo),
                     "beta": ModelBehaviour(answer=echo)}) as models:
        yield models


def start(redis: RedisServer, legacy_url: str, fleet: ModelFleet, **sections: Any) -> Rig:
    prefix = next_prefix()
    sections.setdefault("orchestrator", {"simple_query_model_count": 2})
    config = make_config(legacy_url, redis, prefix, models=fleet.entries(), **sections)
    proxy = ProxyProcess(config, env={"LLM_SHADOW_ADMIN_TOKEN": "admin-token",
                                      **fleet.keys()}).start()
    return Rig(proxy, redis, prefix, FakeUpstream())


def summary(rig: Rig, route: str = "/openai") -> Any:
    async def read() -> Any:
        store = ReportStore.from_config(RedisSection(url=rig.redis.url, key_prefix=rig.prefix),
                                        ComparisonSection())
        try:
            return await store.summary(route, time.time() - 3600)
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_shadow_compares_and_reports(redis_server: RedisServer, fleet: ModelFleet,
                                     legacy_server: tuple[FakeUpstream, ThreadedServer]) -> None:
    rig = start(redis_server, legacy_server[1].url, fleet)
    try:
        rig.set_flags(shadow_percent=100)
        client = sdk_client(openai.OpenAI(base_url=rig.proxy.url + "/openai/v1",
                                          api_key="sk-legacy", max_retries=0))
        for i in range(3):
            reply = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"question {i}"}])
            assert reply.choices[0].message.content == f"Answer to: question {i}"
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
            "Answer to: What is the capital of France?"
        wait_for(lambda: rig.statz()["shadow"]["completed"] == 4, message="4 comparisons")
        wait_for(lambda: summary(rig).compared == 4, message="report aggregates")
        result = summary(rig)
        assert result.labels["identical"] == 4
        assert result.cost["orchestrator"].calls == 8
        for model in fleet:
            assert all(r.header("authorization") != "Bearer sk-legacy" for r in model.requests)
    finally:
        rig.proxy.stop()


def test_divert_answers_in_the_clients_wire_format(
    redis_server: RedisServer, fleet: ModelFleet,
    legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    rig = start(redis_server, legacy_server[1].url, fleet,
                divert={"shadow_legacy": False})
    try:
        rig.set_flags(divert_percent=100)
        client = sdk_client(openai.OpenAI(base_url=rig.proxy.url + "/openai/v1",
                                          api_key="k", max_retries=0))
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                               messages=MESSAGES)
        assert raw.headers["x-llm-shadow-models"] in ("alpha,beta", "beta,alpha")
        assert float(raw.headers["x-llm-shadow-confidence"]) >= 0.8
        assert raw.parse().choices[0].message.content == echo(MESSAGES[0]["content"])
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
            echo(MESSAGES[0]["content"])
        claude = sdk_client(anthropic.Anthropic(base_url=rig.proxy.url + "/anthropic",
                                                api_key="k", max_retries=0))
        message = claude.messages.create(model="claude-test", max_tokens=64,
                                         messages=MESSAGES)
        assert message.content[0].text == echo(MESSAGES[0]["content"])  # type: ignore[union-attr]
        with claude.messages.stream(model="claude-test", max_tokens=64,
                                    messages=MESSAGES) as events:
            assert "".join(events.text_stream) == echo(MESSAGES[0]["content"])
        assert legacy_server[0].requests == []
    finally:
        rig.proxy.stop()


def test_divert_with_disagreeing_models_falls_back_to_legacy(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    with ModelFleet({"alpha": ModelBehaviour(answer="Paris"),
                     "beta": ModelBehaviour(answer="Lyon")}) as fleet:
        rig = start(redis_server, legacy_server[1].url, fleet,
                    divert={"shadow_legacy": False})
        try:
            rig.set_flags(divert_percent=100)
            response = httpx.post(rig.proxy.url + "/openai/v1/chat/completions",
                                  json={"model": "m", "messages": MESSAGES}, timeout=30)
            assert response.json()["choices"][0]["message"]["content"] == \
                echo(MESSAGES[0]["content"])
            assert "x-llm-shadow-models" not in response.headers
            assert len(legacy_server[0].requests) == 1
            wait_for(lambda: summary(rig).fallback_rate == 1.0, message="fallback reported")
        finally:
            rig.proxy.stop()


def test_full_migration_without_legacy_never_calls_legacy(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    with ModelFleet({"down": ModelBehaviour(status=503)}) as fleet:
        rig = start(redis_server, legacy_server[1].url, fleet,
                    orchestrator={"simple_query_model_count": 1})
        try:
            rig.set_flags(system={"migration_mode": "full"}, legacy_system={"enabled": False})
            response = httpx.post(rig.proxy.url + "/openai/v1/chat/completions",
                                  json={"model": "m", "messages": MESSAGES}, timeout=30)
            assert response.status_code == 502
            assert response.json()["error"]["code"] == "orchestrator_failed"
            assert legacy_server[0].requests == []
            rig.set_flags(system={"use_orchestrator": False})
            response = httpx.post(rig.proxy.url + "/openai/v1/chat/completions",
                                  json={"model": "m", "messages": MESSAGES}, timeout=30)
            assert response.status_code == 200
            assert len(legacy_server[0].requests) == 1
        finally:
            rig.proxy.stop()


def test_noise_samples_measure_legacy_against_itself(
    redis_server: RedisServer, fleet: ModelFleet,
    legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    rig = start(redis_server, legacy_server[1].url, fleet,
                comparison={"noise_sample_percent": 50})
    try:
        rig.set_flags(shadow_percent=100)
        ids = [f"req-{i}" for i in range(8)]
        for request_id in ids:
            httpx.post(rig.proxy.url + "/openai/v1/chat/completions",
                       json={"model": "gpt-4o-mini", "messages": MESSAGES},
                       headers={"x-request-id": request_id}, timeout=30)
        sampled = [r for r in ids if in_noise_sample(r, 50)]
        wait_for(lambda: summary(rig).noise_samples == len(sampled), message="noise samples")
        assert len(legacy_server[0].requests) == len(ids) + len(sampled)
        assert summary(rig).noise_floor == 0.0
    finally:
        rig.proxy.stop()


def test_feedback_through_the_admin_port_needs_the_token_and_an_answered_request(
    redis_server: RedisServer, fleet: ModelFleet,
    legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    rig = start(redis_server, legacy_server[1].url, fleet, divert={"shadow_legacy": False})
    try:
        rig.set_flags(divert_percent=100)
        answered = httpx.post(rig.proxy.url + "/openai/v1/chat/completions",
                              headers={"x-request-id": "r1"},
                              json={"model": "gpt-4o-mini", "messages": MESSAGES})
        assert answered.headers["x-llm-shadow-models"]
        body = {"request_id": "r1", "model_name": "alpha", "task_type": "simple_query",
                "was_correct": False}
        token = {"authorization": "Bearer admin-token"}
        assert httpx.post(rig.proxy.admin_url + "/feedback", json=body).status_code == 401
        ok = httpx.post(rig.proxy.admin_url + "/feedback", json=body, headers=token)
        assert ok.status_code == 200, ok.text
        assert ok.json()["results"][0]["result"] == "recorded"
        typo = httpx.post(rig.proxy.admin_url + "/feedback", headers=token,
                          json={**body, "request_id": "r2"})
        assert typo.status_code == 404
        assert typo.json()["error"]["code"] == "unknown_request_id"
        report = httpx.get(rig.proxy.admin_url + "/report?format=json").json()
        row = report["models"]["alpha"]["task_types"]["simple_query"]
        assert row["feedback_incorrect"] == 1
    finally:
        rig.proxy.stop()


def test_latency_delta_compares_both_durations(
    redis_server: RedisServer, fleet: ModelFleet,
    legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    """Legacy takes 300 ms here, the orchestrator's fake models answer at once: the
    delta (orchestrator minus legacy) must be clearly negative."""
    rig = start(redis_server, legacy_server[1].url, fleet)
    try:
        rig.set_flags(shadow_percent=100)
        for i in range(3):
            httpx.post(rig.proxy.url + "/openai/v1/chat/completions", timeout=30,
                       json={"model": "m", "messages": [{"role": "user", "content": f"{i}"}]},
                       headers={"x-fake-latency-ms": "300"})
        wait_for(lambda: summary(rig).latency_samples == 3, message="3 latency samples")
        assert summary(rig).latency_delta_p50_ms < -150
    finally:
        rig.proxy.stop()
