"""Every store of llm-shadow used once through the client factory, on whatever topology
the `redis` section names: the flag write script, audit, heartbeats and their SCAN; the
budget's reserve script and settle pipeline; report pipelines; learned-record pipelines
and the feedback claim; and a whole ramp step (state script, lock SET NX, renew and
release scripts, evaluation, history, flags written by the runner)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from proxy.comparison import Comparison
from proxy.config.proxy import RedisSection
from proxy.flags.writer import FlagWriter
from proxy.orchestrator.learned import Sample
from proxy.orchestrator.learned_store import RedisLearningStore
from proxy.redisclient import redis_client
from proxy.report.aggregate_store import ReportStore
from proxy.report.entry import ReportEntry
from proxy.shadow.budget import RedisBudget
from tests.ramp.helpers import ROUTE, tiny_policy, world


@dataclass
class Exercised:
    flags_version: int
    audit_entries: int
    replicas_seen: int
    budget_spent: float
    compared: int
    learned: dict[str, float]
    claimed_twice: tuple[bool, bool]
    ramp_step: int
    ramp_events: list[str]
    route_shadow: float


async def exercise_every_store(redis: RedisSection) -> Exercised:
    root = redis.keyspace
    client = redis_client(redis, connect_timeout=1.0, socket_timeout=2.0, max_connections=16)
    try:
        writer = FlagWriter(client, root)
        snapshot = await writer.update({"shadow_percent": 5}, actor="ha-test", reason="ha")
        audit = await writer.store.audit(10)
        await writer.store.put_status("pod-a", b'{"replica_id": "pod-a"}', 5.0)
        await writer.store.put_status("pod-b", b'{"replica_id": "pod-b"}', 5.0)
        replicas = await writer.store.statuses()

        budget = RedisBudget(client, root, 1.0)
        hour = await budget.reserve(0.25)
        assert hour is not None and await budget.reserve(0.9) is None
        await budget.settle(hour, 0.25, 0.125)

        report = ReportStore(client, root)
        now = time.time()
        assert await report.record_many(
            ReportEntry(ROUTE, f"req-{i}", at=now, model="m",
                        comparison=Comparison("identical", 0.0), latency_delta_s=0.1)
            for i in range(3))
        summary = await report.summary(ROUTE, now - 60)

        learning = RedisLearningStore(root, client=client)
        key = ("simple_query", "qwen-max")
        await learning.apply([(key, {"calls": 2, "latency_sum": 1.5})],
                             [(key, Sample(now, "valid", 0.5, 0.001))])
        records = await learning.load()
        samples = await learning.load_samples()
        assert samples[key]
        claims = (await learning.claim_feedback("req-1", "qwen-max"),
                  await learning.claim_feedback("req-1", "qwen-max"))
        learned = {"calls": records[key].calls, "latency_sum": records[key].latency_sum}
        spent = await budget.spent()
    finally:
        await client.aclose()

    async with world(redis) as ramp:
        await ramp.start(tiny_policy())
        runner = ramp.runner()
        await runner.evaluate_once()  # takes the lock, finds the first step applied
        await ramp.feed(40)
        await ramp.feed_noise(40)
        ramp.clock.advance(61)
        evaluation = await runner.evaluate_once()
        assert evaluation is not None and evaluation.action == "promote", evaluation
        await runner.evaluate_once()  # applies the promoted step's flags
        state = await ramp.state()
        events = [event["event"] for event in await ramp.store.history(10)]
        flags = await ramp.flags()
        await runner.aclose()  # releases the lock (script)
        assert await ramp.store.holder() is None
    return Exercised(snapshot.version, len(audit), len(replicas), spent,
                     summary.compared, learned, claims, state.step, events,
                     flags.routes[ROUTE].shadow_percent)
