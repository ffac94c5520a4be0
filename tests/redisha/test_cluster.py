"""`redis.cluster: true` against a real three-node Redis Cluster: every key of llm-shadow
carries the hash tag, so all of them live on the one node that owns its slot and every
Lua script and pipeline runs there; every store works; a replica follows the flags, with
hints published by the write script reaching a subscriber on any node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from proxy.config import Settings, parse_config
from proxy.config.proxy import RedisSection
from proxy.flags.hints import RedisHints
from proxy.flags.service import FlagService
from proxy.flags.store import StoreError, minimal_acl
from proxy.flags.writer import FlagWriter
from tests.fakes.redisha import ClusterNodes
from tests.fakes.servers import async_wait_for
from tests.flags.helpers import FAST_FLAGS
from tests.redisha.stores import exercise_every_store

pytestmark = pytest.mark.integration


def cluster_section(cluster: ClusterNodes, prefix: str) -> RedisSection:
    return parse_config({"redis": {"url": cluster.url, "cluster": True, "key_prefix": prefix,
                                   "connect_timeout": 0.5, "socket_timeout": 1.0}},
                        "<test>").redis


def test_every_store_works_and_every_key_lives_in_one_slot(cluster: ClusterNodes) -> None:
    redis = cluster_section(cluster, "shop")
    done = asyncio.run(exercise_every_store(redis))
    assert (done.flags_version, done.audit_entries, done.replicas_seen) == (1, 1, 2)
    assert done.budget_spent == pytest.approx(0.125)
    assert done.compared == 3 and done.learned == {"calls": 2, "latency_sum": 1.5}
    assert done.claimed_twice == (True, False)
    assert (done.ramp_step, done.route_shadow) == (1, 100)
    assert done.ramp_events[:2] == ["promote", "start"]
    owner = cluster.node_of_slot(key_slot(b"{shop}"))
    keys = {port: [k for k in cluster.keys_on(port) if "shop" in k] for port in cluster.ports}
    assert keys[owner] and all(k.startswith("{shop}:") for k in keys[owner])
    assert [port for port, found in keys.items() if found] == [owner]


def test_hints_reach_a_subscriber_on_any_node(cluster: ClusterNodes) -> None:
    """The write script's classic PUBLISH is delivered on every node of the cluster."""
    redis = cluster_section(cluster, "hints")

    async def scenario() -> list[list[int | None]]:
        writer = FlagWriter(redis)
        seen: list[list[int | None]] = []
        try:
            for turn in range(len(cluster.ports)):
                hints = RedisHints(redis, f"{redis.keyspace}:flags:changed",
                                   connect_timeout=0.5, socket_timeout=1.0,
                                   ping_interval=0.2, watchdog=2.0)
                hints._turn = turn  # subscribe on each node in turn
                got: list[int | None] = []
                subscribed = asyncio.Event()
                task = asyncio.create_task(hints.run(subscribed.set, got.append))
                await asyncio.wait_for(subscribed.wait(), 10)
                written = await writer.update({"shadow_percent": turn + 1}, actor="t")
                await async_wait_for(lambda v=written.version, g=got: v in g,
                                     message=f"the hint on node {turn}")
                seen.append(got)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await hints.aclose()
        finally:
            await writer.aclose()
        return seen

    assert asyncio.run(scenario()) == [[1], [2], [3]]


def test_a_replica_follows_the_flags_in_a_cluster(cluster: ClusterNodes) -> None:
    config = parse_config({"redis": {"url": cluster.url, "cluster": True,
                                     "key_prefix": "replica"},
                           "flags": {**FAST_FLAGS, "replica_id": "pod-1"}}, "<test>")
    settings = Settings(config=config, source="<test>", base_dir=Path("."))

    async def scenario() -> tuple[str, int, float, int, list[str]]:
        service = FlagService(settings)
        await service.start()
        try:
            await async_wait_for(lambda: service.watcher.current.state == "ready"
                                 and service.watcher.stats["subscribes"] >= 1,
                                 message="ready and subscribed")
            snapshot = await service.writer.update({"divert_percent": 7}, actor="t")
            await async_wait_for(lambda: service.watcher.current.version == snapshot.version,
                                 message="the new version")
            await async_wait_for(lambda: service.watcher.stats["hints"] >= 1
                                 and service.heartbeat.beats >= 2, message="a hint, beats")
            statuses = await service.store.statuses()
            view = service.watcher.current
            return (view.state, view.version, view.snapshot.divert_percent,
                    service.watcher.stats["hints"], [s.decode() for s in statuses])
        finally:
            await service.aclose()

    state, version, divert, hints, statuses = asyncio.run(scenario())
    assert (state, version, divert) == ("ready", 1, 7) and hints >= 1
    assert len(statuses) == 1 and '"pod-1"' in statuses[0]


def test_the_minimal_acls_work_in_a_cluster(cluster: ClusterNodes) -> None:
    """The documented users, created on every node: a replica that also runs the ramp
    uses every store, and a flag reader follows the flags but cannot write them."""
    keyspace = cluster_section(cluster, "acl").keyspace
    roles = minimal_acl(keyspace, cluster=True)
    for port in cluster.ports:
        with redis.Redis(port=port) as admin:
            for role, rules in roles.items():
                admin.execute_command("ACL", "SETUSER", f"ls-{role}", "reset",
                                      f">{role}-pw", *rules)

    def as_user(role: str) -> RedisSection:
        url = f"redis://ls-{role}:{role}-pw@127.0.0.1:{cluster.ports[0]}/0"
        return parse_config({"redis": {"url": url, "cluster": True, "key_prefix": "acl"}},
                            "<test>").redis

    done = asyncio.run(exercise_every_store(as_user("replica-ramp")))
    assert (done.flags_version, done.ramp_step, done.compared) == (1, 1, 3)
    config = parse_config({"redis": as_user("flag-reader").model_dump(),
                           "flags": {**FAST_FLAGS, "replica_id": "reader"}}, "<test>")

    async def scenario() -> str:
        service = FlagService(Settings(config=config, source="<test>", base_dir=Path(".")))
        writer = FlagWriter(as_user("writer"))
        await service.start()
        try:
            await async_wait_for(lambda: service.watcher.stats["subscribes"] >= 1,
                                 message="subscribed")
            written = await writer.update({"kill": True}, actor="writer")
            await async_wait_for(lambda: service.watcher.current.version == written.version
                                 and service.watcher.stats["hints"] >= 1
                                 and service.heartbeat.beats >= 1, message="reader follows")
            try:
                await service.writer.update({"kill": False}, actor="intruder")
            except StoreError as exc:
                return exc.kind
            return "written"
        finally:
            await service.aclose()
            await writer.aclose()

    assert asyncio.run(scenario()) in ("auth", "error")
