"""`redis.sentinel` against a real Sentinel group (one primary, one replica, three
sentinels, passwords on the data nodes and on the sentinels): every store works through
the primary the sentinels name, and when that primary is killed, a replica of
llm-shadow comes back `ready` on the new primary, its hint subscriber resubscribed there,
flags readable and writable, every store working.

The failover test prints its figures (run with `-s`): how long until the sentinels
named the new primary, until a write went through, until the replica was `ready` on the
new version, the states the replica went through, and which of the writes acknowledged
just before the kill survived (replication is asynchronous: on loopback it usually keeps
up, so nothing is lost; the README says what can be)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from proxy.config import Settings, parse_config
from proxy.config.proxy import RedisSection
from proxy.flags.service import FlagService
from proxy.flags.snapshot import FlagSnapshot
from proxy.flags.store import StoreError
from proxy.flags.writer import FlagWriter
from proxy.redisclient import redis_client
from proxy.report.aggregate_store import ReportStore
from proxy.report.entry import ReportEntry, RoleCost
from proxy.shadow.budget import RedisBudget
from tests.fakes.redisha import SentinelGroup
from tests.fakes.servers import async_wait_for
from tests.redisha.stores import exercise_every_store

pytestmark = pytest.mark.integration
DEADLINE = 60.0  # a failover takes seconds; a loaded machine may take many more


def sentinel_section(group: SentinelGroup, prefix: str) -> RedisSection:
    return parse_config({"redis": group.redis_section(prefix)}, "<test>").redis


def test_every_store_works_through_sentinel(sentinel_group: SentinelGroup) -> None:
    done = asyncio.run(exercise_every_store(sentinel_section(sentinel_group, "shop")))
    assert (done.flags_version, done.audit_entries, done.replicas_seen) == (1, 1, 2)
    assert done.budget_spent == pytest.approx(0.125) and done.compared == 3
    assert done.claimed_twice == (True, False) and (done.ramp_step, done.route_shadow) == (1, 100)


def test_a_wrong_sentinel_password_is_an_auth_failure(sentinel_group: SentinelGroup) -> None:
    data = sentinel_group.redis_section("auth")
    data["sentinel"] = {**data["sentinel"], "password": "wrong"}  # type: ignore[dict-item]
    redis = parse_config({"redis": data}, "<test>").redis

    async def scenario() -> StoreError:
        writer = FlagWriter(redis)
        try:
            await writer.read()
        except StoreError as exc:
            return exc
        finally:
            await writer.aclose()
        raise AssertionError("the read worked with a wrong sentinel password")

    failure = asyncio.run(scenario())
    assert failure.kind == "connection" and "No master found" in str(failure)
    assert "wrong" not in str(failure)


async def _write(writer: FlagWriter, changes: dict[str, Any], reason: str) -> FlagSnapshot:
    """Write as an operator would: retried until the store takes it."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return await writer.update(changes, actor="ha-test", reason=reason)
        except StoreError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _failover(settings: Settings, group: SentinelGroup) -> dict[str, Any]:
    redis = settings.config.redis
    service = FlagService(settings)
    states: list[str] = []
    service.watcher.add_listener(lambda view: states.append(view.state))
    writer = FlagWriter(redis)
    client = redis_client(redis, connect_timeout=0.5, socket_timeout=1.0)
    budget = RedisBudget(client, redis.keyspace, 100.0)
    report = ReportStore(client, redis.keyspace)
    watcher = service.watcher
    await service.start()
    try:
        first = await _write(writer, {"shadow_percent": 5}, "before the failover")
        await async_wait_for(lambda: watcher.current.version == first.version
                             and watcher.current.state == "ready", message="ready on v1")
        await async_wait_for(lambda: watcher.stats["subscribes"] >= 1, message="subscribed")
        subscribes = watcher.stats["subscribes"]
        # Writes acknowledged just before the kill: what can a failover lose?
        last = await _write(writer, {"shadow_percent": 6}, "the last write before the kill")
        reserved = [await budget.reserve(0.01) for _ in range(20)]
        entries = [ReportEntry("/openai", f"r{i}", costs=(RoleCost("shadow", 0.01),))
                   for i in range(20)]
        assert await report.record_many(entries) and all(reserved)

        killed_at = time.monotonic()
        old = group.kill_primary()
        states.clear()
        named = await async_wait_for(
            lambda: group.primary_named() not in (None, old), timeout=DEADLINE,
            interval=0.05, message="the sentinels naming a new primary")
        promoted_after = time.monotonic() - killed_at
        after = await _write(writer, {"shadow_percent": 7}, "after the failover")
        written_after = time.monotonic() - killed_at
        await async_wait_for(lambda: watcher.current.version == after.version
                             and watcher.current.state == "ready", timeout=DEADLINE,
                             message="the replica ready on the new primary")
        ready_after = time.monotonic() - killed_at
        await async_wait_for(lambda: watcher.stats["subscribes"] > subscribes,
                             timeout=DEADLINE, message="resubscribed on the new primary")
        hints = watcher.stats["hints"]
        hinted = await _write(writer, {"shadow_percent": 8}, "hinted")
        await async_wait_for(lambda: watcher.stats["hints"] > hints
                             and watcher.current.version == hinted.version,
                             timeout=DEADLINE, message="a hint from the new primary")
        spent = await budget.spent()
        summary = await report.summary("/openai", time.time() - 3600)
        shadow_calls = summary.cost["shadow"].calls if "shadow" in summary.cost else 0
    finally:
        await service.aclose()
        await writer.aclose()
        await client.aclose()
    return {"old": old, "new": named is not None and group.primary_named(),
            "promoted_after": promoted_after, "written_after": written_after,
            "ready_after": ready_after, "states": states,
            "flag_write_kept": after.version == last.version + 1,
            "versions": (first.version, last.version, after.version, hinted.version),
            "budget_kept": round(spent / 0.01), "report_kept": shadow_calls}


def test_a_failover_brings_the_replica_back_ready_on_the_new_primary(
        sentinel_group: SentinelGroup) -> None:
    config = parse_config({"redis": sentinel_group.redis_section("failover"),
                           "flags": {"replica_id": "pod-1"}}, "<test>")
    settings = Settings(config=config, source="<test>", base_dir=Path("."))
    figures = asyncio.run(_failover(settings, sentinel_group))
    print(f"\nsentinel failover: new primary named after {figures['promoted_after']:.2f}s, "
          f"first write after {figures['written_after']:.2f}s, replica ready on the new "
          f"primary after {figures['ready_after']:.2f}s; states {figures['states']}; "
          f"kept: last flag write {figures['flag_write_kept']}, budget "
          f"{figures['budget_kept']}/20 reservations, report {figures['report_kept']}/20 "
          f"increments")
    assert figures["new"] != figures["old"]
    assert figures["states"][-1] == "ready"
    # The stores work on the new primary, scripts and pipelines included.
    done = asyncio.run(exercise_every_store(sentinel_section(sentinel_group, "after")))
    assert (done.flags_version, done.ramp_step, done.claimed_twice) == (1, 1, (True, False))
