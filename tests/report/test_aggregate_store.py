"""The report store against a real redis-server: replicas add up, retention is bounded,
one round trip per record, failures are counted and never raised."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from proxy.comparison import Comparison
from proxy.config.comparison import ComparisonSection
from proxy.config.proxy import RedisSection
from proxy.redisclient import redis_client
from proxy.report.aggregate_store import ReportStore, ReportStoreError
from proxy.report.entry import ReportEntry, RoleCost
from proxy.report.example import Example, Side
from tests.fakes.servers import RedisServer, free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
HOUR = 3600
NOW = 1_800_000_000.0  # a bucket boundary: 1_800_000_000 % 3600 == 0


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now


async def with_store(url: str, body: Callable[[ReportStore], Awaitable[T]], *,
                     prefix: str | None = None, clock: Clock | None = None,
                     **options: Any) -> T:
    client = redis_client(url, connect_timeout=1.0, socket_timeout=2.0)
    store = ReportStore(client, prefix or f"t-{uuid.uuid4().hex[:8]}", clock=clock or Clock(),
                        **options)
    try:
        return await body(store)
    finally:
        await client.aclose()


def comparison(label: str, score: float) -> Comparison:
    return Comparison(label, score)  # type: ignore[arg-type]


def test_record_and_summary(redis_server: RedisServer) -> None:
    async def body(store: ReportStore) -> None:
        for index, (label, score) in enumerate([("identical", 0.0), ("minor", 0.3),
                                                 ("major", 0.9), ("equivalent", 0.05)]):
            assert await store.record(ReportEntry(
                "/openai", f"req-{index}", at=NOW - 10, model="gpt-4o-mini",
                comparison=comparison(label, score), latency_delta_s=0.2 * (index + 1),
                costs=(RoleCost("legacy", 0.001), RoleCost("orchestrator", 0.0005)),
                orchestrator="ok"))
        assert await store.record_noise("/openai", "req-0", comparison("minor", 0.2), at=NOW - 10)
        summary = await store.summary("/openai", NOW - HOUR)
        assert summary.compared == 4
        assert summary.labels == {"identical": 1, "equivalent": 1, "minor": 1, "major": 1}
        assert summary.noise_samples == 1 and summary.noise_floor == 1.0
        assert summary.cost["legacy"].usd == pytest.approx(0.004)
        assert summary.cost["orchestrator"].per_request == pytest.approx(0.0005)
        assert summary.latency_samples == 4
        assert summary.latency_delta_p50_ms == pytest.approx(400, rel=0.1)
        assert [t.request_id for t in summary.top] == ["req-2", "req-1", "req-3"]
        assert summary.models["gpt-4o-mini"]["compared"] == 4

    run(lambda: with_store(redis_server.url, body))


def test_every_replica_contributes(redis_server: RedisServer) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"

    async def replica(store: ReportStore) -> None:
        await asyncio.gather(*(store.record_comparison("/openai", f"r{i}",
                                                       comparison("major", 0.8), at=NOW - 5)
                               for i in range(25)))

    for _ in range(3):
        run(lambda: with_store(redis_server.url, replica, prefix=prefix))

    async def read(store: ReportStore) -> int:
        return (await store.summary("/openai", NOW - HOUR)).labels["major"]

    assert run(lambda: with_store(redis_server.url, read, prefix=prefix)) == 75


def test_keys_expire_and_the_top_set_is_bounded(redis_server: RedisServer) -> None:
    async def body(store: ReportStore) -> dict[str, Any]:
        for index in range(30):
            await store.record_comparison("/openai", f"r{index}",
                                          comparison("minor", index / 100), at=NOW + 1)
        start = store.bucket_start(NOW + 1)
        client = store.client
        return {
            "keys": sorted(k.decode() for k in await client.keys(f"{store.prefix}:*")),
            "bucket_ttl": await client.ttl(store.bucket_key("/openai", start)),
            "top_ttl": await client.ttl(store.top_key("/openai", start)),
            "top_size": await client.zcard(store.top_key("/openai", start)),
            "routes_ttl": await client.ttl(store.routes_key),
            "fine_ttl": await client.ttl(store.fine_bucket_key("/openai", int(NOW))),
            "fine_top_ttl": await client.ttl(store.fine_top_key("/openai", int(NOW))),
            "prefix": store.prefix,
        }

    out = run(lambda: with_store(redis_server.url, body, retention_hours=2, top_requests=5,
                                 fine_bucket_seconds=10, fine_retention_minutes=30))
    prefix = out["prefix"]
    assert out["keys"] == [f"{prefix}:bucket:/openai:{int(NOW)}",
                           f"{prefix}:fine:/openai:{int(NOW)}",
                           f"{prefix}:finetop:/openai:{int(NOW)}", f"{prefix}:routes",
                           f"{prefix}:top:/openai:{int(NOW)}"]
    # A fine bucket lives for its own 10 s plus the fine retention (30 min) after it.
    assert 1790 < out["fine_ttl"] <= 1810 and 1790 < out["fine_top_ttl"] <= 1810
    assert prefix.endswith(":report")
    # The bucket lives for its own hour plus the retention (2 h) after it.
    assert 2 * HOUR < out["bucket_ttl"] <= 3 * HOUR
    assert 2 * HOUR < out["top_ttl"] <= 3 * HOUR
    assert 0 < out["routes_ttl"] <= 3 * HOUR
    assert out["top_size"] == 5


def test_since_selects_buckets_and_routes(redis_server: RedisServer) -> None:
    clock = Clock()

    async def body(store: ReportStore) -> None:
        for hours_ago in (0, 1, 5, 30):
            await store.record_comparison("/openai", f"h{hours_ago}", comparison("major", 0.7),
                                          at=NOW - hours_ago * HOUR + 1)
        clock.now = NOW - 30 * HOUR
        await store.record_comparison("/old", "x", comparison("minor", 0.2),
                                      at=NOW - 30 * HOUR)
        clock.now = NOW + 10
        assert (await store.summary("/openai", NOW - 2 * HOUR)).compared == 2
        assert (await store.summary("/openai", NOW - 24 * HOUR)).compared == 3
        report = await store.report(NOW - 24 * HOUR)
        assert [r.summary.route for r in report.routes] == ["/openai"]
        everything = await store.report(NOW - 48 * HOUR)
        assert [r.summary.route for r in everything.routes] == ["/old", "/openai"]
        only = await store.report(NOW - 48 * HOUR, route_prefix="/op")
        assert [r.summary.route for r in only.routes] == ["/openai"]
        timeline = (await store.report(NOW - 24 * HOUR)).routes[0].timeline
        assert [p.start for p in timeline] == [NOW - 5 * HOUR, NOW - HOUR, NOW]

    run(lambda: with_store(redis_server.url, body, clock=clock))


def test_one_round_trip_per_record(redis_server: RedisServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from redis.asyncio.client import Pipeline

    calls: list[int] = []
    original = Pipeline.execute

    async def counting(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(self.command_stack))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counting)

    async def body(store: ReportStore) -> None:
        await store.record(ReportEntry(
            "/openai", "r", at=NOW, comparison=comparison("major", 0.9), latency_delta_s=1.0,
            noise=comparison("minor", 0.3), costs=(RoleCost("legacy", 0.1),),
            orchestrator="ok", divert=True))

    run(lambda: with_store(redis_server.url, body))
    assert len(calls) == 1 and calls[0] > 10


def test_unreachable_redis_is_counted_not_raised() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def body(store: ReportStore) -> None:
        assert not await store.record_comparison("/openai", "r", comparison("major", 0.9))
        assert not await store.record_costs("/openai", "r", [RoleCost("legacy", 0.1)])
        assert store.dropped == 2
        with pytest.raises(ReportStoreError, match="cannot reach Redis"):
            await store.summary("/openai", NOW - HOUR)
        with pytest.raises(ReportStoreError):
            await store.report(NOW - HOUR)

    run(lambda: with_store(url, body, budget=2.0))


def test_a_redis_restart_loses_nothing_but_what_it_held(own_redis: RedisServer) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"

    async def write(store: ReportStore) -> bool:
        return await store.record_comparison("/openai", "r", comparison("minor", 0.2), at=NOW)

    assert run(lambda: with_store(own_redis.url, write, prefix=prefix))
    own_redis.stop()
    assert not run(lambda: with_store(own_redis.url, write, prefix=prefix))
    own_redis.start()
    assert run(lambda: with_store(own_redis.url, write, prefix=prefix))


def test_from_config_uses_the_sections(redis_server: RedisServer) -> None:
    async def body() -> None:
        redis = RedisSection(url=redis_server.url, key_prefix="cfg-test")
        comparison_section = ComparisonSection(report_bucket_seconds=600,
                                               report_retention_hours=3,
                                               report_top_requests=7)
        store = ReportStore.from_config(redis, comparison_section)
        try:
            assert store.prefix == "cfg-test:report"
            assert (store.bucket_seconds, store.retention, store.top_requests) == (
                600, 3 * HOUR, 7)
            assert await store.record_outcome("/openai", "r", "failed", divert=True,
                                              fallback=True)
            summary = await store.summary("/openai", store.clock() - 600)
            assert summary.error_rate == 1.0 and summary.fallback_rate == 1.0
        finally:
            await store.aclose()

    asyncio.run(body())


def test_a_short_window_counts_only_itself(redis_server: RedisServer) -> None:
    """54 comparisons in the hour, 4 in the last minute: `--since 1m` counts 4."""
    clock = Clock(NOW + 1800)  # half way through an hourly bucket

    async def body(store: ReportStore) -> None:
        for index in range(50):
            await store.record_comparison("/openai", f"early-{index}",
                                          comparison("minor", 0.3), at=NOW + 600 + index)
        for index in range(4):
            await store.record_comparison("/openai", f"late-{index}",
                                          comparison("major", 0.9), at=clock.now - 30 + index)
        minute = await store.report(clock.now - 60)
        assert minute.bucket_seconds == 10
        assert minute.counted_from == clock.now - 60  # on a 10 s boundary here
        [route] = minute.routes
        assert route.summary.compared == 4 and route.summary.labels["major"] == 4
        odd = await store.report(clock.now - 65)
        assert odd.counted_from == clock.now - 70  # whole buckets, and it says so
        hour = await store.report(clock.now - HOUR)
        assert hour.routes[0].summary.compared == 54 and hour.bucket_seconds == 10
        # Beyond the fine retention, the hourly buckets are read, whole.
        day = await store.report(clock.now - 24 * HOUR)
        assert day.bucket_seconds == HOUR and day.counted_from <= clock.now - 24 * HOUR
        assert day.routes[0].summary.compared == 54

    run(lambda: with_store(redis_server.url, body, clock=clock, fine_bucket_seconds=10,
                           fine_retention_minutes=120))


def test_without_fine_buckets_the_report_reads_hourly_ones(redis_server: RedisServer) -> None:
    clock = Clock(NOW + 1800)

    async def body(store: ReportStore) -> None:
        await store.record_comparison("/openai", "a", comparison("major", 0.9), at=NOW + 10)
        report = await store.report(clock.now - 60)
        assert report.bucket_seconds == HOUR and report.counted_from == NOW
        assert report.routes[0].summary.compared == 1
        keys = await store.client.keys(f"{store.prefix}:fine*")
        assert keys == []

    run(lambda: with_store(redis_server.url, body, clock=clock, fine_bucket_seconds=0))


def example(label: str, at: float, request_id: str) -> Example:
    return Example("/openai", request_id, at, label, "fact_changed", 1.0, Side("Paris."),
                   Side("Lyon."), evidence=("Paris → Lyon",))


def test_examples_keep_the_last_n_per_label_and_expire_with_the_report(
        redis_server: RedisServer) -> None:
    clock = Clock(NOW + 100)

    async def body(store: ReportStore) -> None:
        entries = [ReportEntry("/openai", f"M{i}", at=NOW + i,
                               comparison=comparison("major", 1.0),
                               example=example("major", NOW + i, f"M{i}")) for i in range(5)]
        entries += [ReportEntry("/openai", f"m{i}", at=NOW + 10 + i,
                                comparison=comparison("minor", 0.3),
                                example=example("minor", NOW + 10 + i, f"m{i}"))
                    for i in range(2)]
        assert await store.record_many(entries[:3])
        assert await store.record_many(entries[3:])
        major = store.examples_key("/openai", "major")
        assert major == f"{store.prefix}:examples:/openai:major"
        assert await store.client.llen(major) == 3
        ttl = await store.client.ttl(major)
        assert 2 * HOUR - 5 <= ttl <= 2 * HOUR
        report = await store.report(NOW)
        kept = report.routes[0].examples
        assert [e.request_id for e in kept] == ["M4", "M3", "M2", "m1", "m0"]  # major first
        assert kept[0].evidence == ("Paris → Lyon",)
        # Only pairs inside the window are shown.
        later = await store.report(NOW + 11)
        assert [e.request_id for e in later.routes[0].examples] == ["m1"]

    run(lambda: with_store(redis_server.url, body, clock=clock, retention_hours=2,
                           keep_examples=3))


def test_examples_are_not_kept_when_keep_examples_is_zero(redis_server: RedisServer) -> None:
    async def body(store: ReportStore) -> None:
        assert await store.record(ReportEntry("/openai", "x", at=NOW,
                                              comparison=comparison("major", 1.0),
                                              example=example("major", NOW, "x")))
        assert await store.client.keys(f"{store.prefix}:examples:*") == []

    run(lambda: with_store(redis_server.url, body, keep_examples=0))


def test_a_bad_stored_example_is_skipped(redis_server: RedisServer) -> None:
    async def body(store: ReportStore) -> None:
        await store.record(ReportEntry("/openai", "x", at=NOW,
                                       comparison=comparison("major", 1.0),
                                       example=example("major", NOW, "x")))
        await store.client.lpush(store.examples_key("/openai", "major"), b"{not json")
        kept = await store.examples("/openai", NOW - 1, NOW + 1)
        assert [e.request_id for e in kept] == ["x"]

    run(lambda: with_store(redis_server.url, body, keep_examples=3))
