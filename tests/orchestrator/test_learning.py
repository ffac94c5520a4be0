"""Learned records shared through a real redis-server: replicas see each other's
updates, feedback counts once, an unreachable store queues and catches up, memory mode
says so in the log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis.asyncio as aioredis

from proxy.orchestrator.learned_store import MemoryLearningStore, RedisLearningStore
from proxy.orchestrator.learning import FeedbackResult, Learning
from tests.fakes.servers import RedisServer
from tests.orchestrator.conftest import run

pytestmark = pytest.mark.integration


def replica(url: str, prefix: str, **options: Any) -> tuple[Learning, aioredis.Redis]:
    client = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return Learning(RedisLearningStore(prefix, client=client), **options), client


def test_replicas_share_records_through_redis(redis_server: RedisServer) -> None:
    async def go() -> None:
        (a, ca), (b, cb) = replica(redis_server.url, "share"), replica(redis_server.url, "share")
        for _ in range(50):
            a.observe("simple_query", "qwen", "valid", latency=0.5, cost=0.001)
            b.observe("simple_query", "qwen", "error", latency=0.1, cost=0.0)
        a.agreement("simple_query", "qwen", True)
        await a.sync()
        await b.sync()
        await a.sync()
        for learning in (a, b):
            record = learning.record("simple_query", "qwen")
            assert (record.calls, record.answered, record.errors, record.agreed) == (100, 50, 50, 1)
            assert record.latency_sum == pytest.approx(30.0)
        keys = sorted(k.decode() for k in await ca.keys("share:*"))
        assert keys == ["share:learning:index", "share:learning:record:simple_query:qwen",
                        "share:learning:samples:simple_query:qwen"]
        samples = await b.samples()
        assert len(samples[("simple_query", "qwen")]) == 100
        await ca.aclose()
        await cb.aclose()

    run(go())


def test_feedback_counts_once_across_replicas(redis_server: RedisServer) -> None:
    async def go() -> None:
        (a, ca), (b, cb) = replica(redis_server.url, "fb"), replica(redis_server.url, "fb")
        assert await a.feedback("req-1", "qwen", "data_validation", False) \
            is FeedbackResult.RECORDED
        assert await b.feedback("req-1", "qwen", "data_validation", True) \
            is FeedbackResult.DUPLICATE
        assert await a.feedback("req-1", "qwen", "data_validation", False) \
            is FeedbackResult.DUPLICATE
        assert await b.feedback("req-2", "qwen", "data_validation", True) \
            is FeedbackResult.RECORDED
        await a.sync()
        record = a.record("data_validation", "qwen")
        assert (record.feedback_correct, record.feedback_incorrect) == (1, 1)
        assert 0 < await ca.ttl("fb:learning:feedback:req-1:qwen") <= 7 * 24 * 3600
        await ca.aclose()
        await cb.aclose()

    run(go())


def test_an_unreachable_store_queues_and_catches_up(own_redis: RedisServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llm_shadow.orchestrator.learning")

    async def go() -> None:
        learning, client = replica(own_redis.url, "down")
        await learning.sync()
        own_redis.stop()
        learning.observe("simple_query", "qwen", "valid", latency=1.0, cost=0.01)
        assert await learning.feedback("r", "qwen", "simple_query", True) \
            is FeedbackResult.QUEUED
        await learning.sync()
        await learning.sync()
        assert not learning.reachable
        record = learning.record("simple_query", "qwen")
        assert (record.calls, record.feedback_correct) == (1, 1)  # still counted locally
        own_redis.start()
        await learning.sync()
        assert learning.reachable
        other, other_client = replica(own_redis.url, "down")
        await other.sync()
        assert other.record("simple_query", "qwen").feedback_correct == 1
        await client.aclose()
        await other_client.aclose()

    run(go())
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per state change, not per attempt
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_memory_mode_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def go() -> None:
        learning = Learning(MemoryLearningStore())
        await learning.start()
        await learning.aclose()

    run(go())
    assert "kept in memory only (no Redis)" in caplog.text
    assert "not shared between replicas" in caplog.text


def test_the_queue_is_bounded() -> None:
    learning = Learning(MemoryLearningStore(), pending_limit=100)
    for _ in range(150):
        learning.observe("t", "m", "valid", latency=0.1, cost=0.0)
    assert learning.dropped == 50
    assert learning.record("t", "m").calls == 150  # the local view keeps everything


def test_memory_feedback_is_deduplicated() -> None:
    async def go() -> list[FeedbackResult]:
        learning = Learning(MemoryLearningStore())
        return [await learning.feedback("r", "m", "t", True),
                await learning.feedback("r", "m", "t", False)]

    assert run(go()) == [FeedbackResult.RECORDED, FeedbackResult.DUPLICATE]


def test_start_never_waits_for_redis() -> None:
    from tests.fakes.servers import async_wait_for

    async def go() -> None:
        learning, client = replica("redis://127.0.0.1:9/0", "absent")
        await learning.start()  # returns at once; the first sync runs in the background
        learning.observe("simple_query", "m", "valid", latency=0.1, cost=0.0)
        assert learning.record("simple_query", "m").calls == 1
        await async_wait_for(lambda: not learning.reachable, message="the failed first sync")
        await learning.aclose()
        await client.aclose()

    run(go())
