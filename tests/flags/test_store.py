"""The Redis store and the writer, against a real redis-server: atomic write with audit
and hint, concurrent writers, heartbeats, error mapping, the sync API."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import orjson
import pytest
from redis.asyncio import Redis

from proxy.flags.replicas import parse_status
from proxy.flags.snapshot import FlagSnapshot, SnapshotInvalid, parse_snapshot
from proxy.flags.store import RedisFlagStore, StoreError
from proxy.flags.writer import FlagWriter, rollback_sync, update_flags_sync
from tests.fakes.faultproxy import FaultProxy, redis_through
from tests.fakes.servers import RedisServer
from tests.flags.helpers import run

_prefixes = itertools.count()


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test, so tests share the session's redis-server safely."""
    return f"test-store-{next(_prefixes)}"


def store_for(url: str, prefix: str) -> RedisFlagStore:
    return RedisFlagStore.from_url(url, prefix, connect_timeout=0.5, socket_timeout=0.5)


def test_write_sets_snapshot_appends_audit_and_publishes(redis_server: RedisServer,
                                                         prefix: str) -> None:
    async def scenario() -> None:
        listener = Redis.from_url(redis_server.url)
        pubsub = listener.pubsub()
        await pubsub.subscribe(f"{prefix}:flags:changed")
        await pubsub.get_message(timeout=2)  # the subscribe confirmation
        writer = FlagWriter(redis_server.url, prefix)
        first = await writer.update({"shadow_percent": 5}, actor="alice", reason="start")
        second = await writer.update({"divert_percent": 1.5}, actor="bob")
        assert (first.version, second.version) == (1, 2)
        stored = parse_snapshot(await listener.get(f"{prefix}:flags"))
        assert (stored.shadow_percent, stored.divert_percent, stored.updated_by) == \
            (5, 1.5, "bob")
        hints = [await pubsub.get_message(timeout=2) for _ in range(2)]
        assert [m["data"] for m in hints if m] == [b"1", b"2"]
        entries = await writer.store.audit(10)
        assert [(e.version, e.previous_version, e.actor, e.reason) for e in entries] == \
            [(2, 1, "bob", ""), (1, None, "alice", "start")]
        assert entries[1].changes == {"shadow_percent": 5}
        await writer.aclose()
        await pubsub.aclose()
        await listener.aclose()

    run(scenario())


def test_concurrent_writers_both_land_in_order(redis_server: RedisServer, prefix: str) -> None:
    async def scenario() -> None:
        writers = [FlagWriter(redis_server.url, prefix) for _ in range(4)]
        changes = [{"routes": {f"/r{n}": {"shadow_percent": n}}} for n in range(4)]
        results = await asyncio.gather(*(
            w.update(c, actor=f"w{n}")
            for n, (w, c) in enumerate(zip(writers, changes, strict=True))))
        assert sorted(r.version for r in results) == [1, 2, 3, 4]
        final, _ = await writers[0].read()
        assert final is not None and set(final.routes) == {"/r0", "/r1", "/r2", "/r3"}
        assert len(await writers[0].store.audit(10)) == 4
        for writer in writers:
            await writer.aclose()

    run(scenario())


def test_compare_and_set_refuses_a_stale_base(redis_server: RedisServer, prefix: str) -> None:
    async def scenario() -> None:
        store = store_for(redis_server.url, prefix)
        writer = FlagWriter(store)
        await writer.update({"kill": True}, actor="t")
        entry = (await store.audit(1))[0]
        assert not await store.compare_and_set(None, b'{"version": 9}', entry)
        assert parse_snapshot(await store.read() or b"").version == 1
        await store.aclose()

    run(scenario())


def test_an_invalid_stored_snapshot_blocks_updates_but_not_rollback(
        redis_server: RedisServer, prefix: str) -> None:
    async def scenario() -> None:
        store = store_for(redis_server.url, prefix)
        await store.client.set(f"{prefix}:flags", b'{"version": 6, "shadow_percent": 500}')
        writer = FlagWriter(store, defaults=FlagSnapshot(shadow_percent=1))
        with pytest.raises(SnapshotInvalid, match="rollback"):
            await writer.update({"divert_percent": 1}, actor="t")
        rolled = await writer.rollback(actor="t", reason="repair")
        assert (rolled.version, rolled.kill, rolled.shadow_percent, rolled.reason) == \
            (7, True, 0, "repair")
        await store.aclose()

    run(scenario())


def test_rollback_clears_route_overrides(redis_server: RedisServer, prefix: str) -> None:
    async def scenario() -> None:
        writer = FlagWriter(redis_server.url, prefix)
        await writer.update({"shadow_percent": 50, "routes": {"/a": {"divert_percent": 9}}},
                            actor="t")
        rolled = await writer.rollback(actor="t")
        assert (rolled.kill, rolled.shadow_percent, rolled.divert_percent, rolled.routes) == \
            (True, 0, 0, {})
        await writer.aclose()

    run(scenario())


def test_heartbeats_expire(redis_server: RedisServer, prefix: str) -> None:
    async def scenario() -> None:
        store = store_for(redis_server.url, prefix)
        record = {"replica_id": "r1", "version": 3, "state": "ready", "source": "redis",
                  "seen_at": "now"}
        await store.put_status("r1", orjson.dumps(record), ttl=0.2)
        await store.put_status("r2", orjson.dumps({**record, "replica_id": "r2"}), ttl=30)
        statuses = [parse_status(raw) for raw in await store.statuses()]
        assert sorted(s.replica_id for s in statuses if s) == ["r1", "r2"]
        ttl = await store.client.pttl(f"{prefix}:replicas:r1")
        assert 0 < ttl <= 200
        await store.aclose()

    run(scenario())


def test_unreachable_redis_is_a_connection_error() -> None:
    async def scenario() -> None:
        store = store_for("redis://127.0.0.1:9/0", "x")
        with pytest.raises(StoreError) as info:
            await store.read()
        assert info.value.kind == "connection"
        await store.aclose()

    run(scenario())


@pytest.fixture
def fault(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as proxy:
        redis_through(proxy)
        yield proxy


def test_black_holed_redis_is_a_timeout_bounded_by_the_budget(fault: FaultProxy,
                                                              prefix: str) -> None:
    async def scenario() -> None:
        fault.set_mode("blackhole")
        store = RedisFlagStore.from_url(fault.url, prefix, connect_timeout=0.1,
                                        socket_timeout=0.1)
        # No retries hide behind this: redis-py 8 would retry 10 times by default.
        with pytest.raises(StoreError) as info:
            await asyncio.wait_for(store.read(), timeout=10)
        assert info.value.kind == "timeout"
        await store.aclose()

    run(scenario())


def test_reset_connections_are_connection_errors(fault: FaultProxy, prefix: str) -> None:
    async def scenario() -> None:
        store = store_for(fault.url, prefix)
        await store.read()
        fault.set_mode("reset")
        with pytest.raises(StoreError) as info:
            await store.read()
        assert info.value.kind == "connection"
        fault.set_mode("pass")
        assert await store.read() is None
        await store.aclose()

    run(scenario())


def test_wrong_password_is_an_auth_error(tmp_path: object) -> None:
    server = RedisServer()
    server.start()
    try:
        async def scenario() -> None:
            admin = Redis.from_url(server.url)
            await admin.config_set("requirepass", "right")
            await admin.aclose()
            url = f"redis://:wrong@127.0.0.1:{server.port}/0"
            store = store_for(url, "x")
            with pytest.raises(StoreError) as info:
                await store.read()
            assert info.value.kind == "auth"
            assert "wrong" not in str(info.value)
            await store.aclose()

        run(scenario())
    finally:
        server.cleanup()


def test_sync_api_works_inside_a_running_loop(redis_server: RedisServer, prefix: str) -> None:
    async def caller() -> FlagSnapshot:
        # MigrationAdapter may be called from async code: the sync API must not need
        # (or break) the caller's loop.
        update_flags_sync(redis_server.url, prefix,
                          {"feature_flags": {"enable_validation": False}},
                          actor="adapter", reason="week 3")
        return rollback_sync(redis_server.url, prefix, actor="adapter")

    rolled = run(caller())
    assert rolled.version == 2 and rolled.kill
    assert rolled.feature_flags.enable_validation is False


def test_sync_api_raises_store_error_when_unreachable() -> None:
    with pytest.raises(StoreError):
        update_flags_sync("redis://127.0.0.1:9/0", "x", {"kill": True}, actor="a")


def test_the_documented_minimal_acls_are_enough(own_redis: RedisServer) -> None:
    """A replica can read, subscribe and heartbeat but not write flags; a writer can do
    everything the CLI does."""
    from proxy.flags.service import FlagService
    from proxy.flags.store import minimal_acl
    from tests.flags.test_watcher_redis import reach, settings_for

    async def scenario() -> None:
        admin = Redis.from_url(own_redis.url)
        for role, rules in minimal_acl("acl").items():
            await admin.acl_setuser(f"ls-{role}", reset=True)
            await admin.execute_command("ACL", "SETUSER", f"ls-{role}", f">{role}-pw", *rules)
        await admin.acl_setuser("default", enabled=False)
        base = f"127.0.0.1:{own_redis.port}/0"
        writer_url, replica_url = f"redis://ls-writer:writer-pw@{base}", \
            f"redis://ls-flag-reader:flag-reader-pw@{base}"
        writer = FlagWriter(writer_url, "acl")
        await writer.update({"shadow_percent": 5}, actor="w")
        service = FlagService(settings_for(replica_url, "acl", replica_id="acl-replica"))
        await service.start()
        await reach(service, "ready", 1)
        snapshot = await writer.update({"kill": True}, actor="w")
        await reach(service, "ready", snapshot.version)
        assert service.watcher.stats["updates_hint"] >= 1
        assert service.heartbeat.beats >= 1
        assert [parse_status(r) for r in await writer.store.statuses()]
        assert len(await writer.store.audit(5)) == 2
        await writer.rollback(actor="w")
        replica_as_writer = FlagWriter(replica_url, "acl")
        with pytest.raises(StoreError) as info:
            await replica_as_writer.update({"kill": False}, actor="intruder")
        assert info.value.kind in ("auth", "error")
        await replica_as_writer.aclose()
        await service.aclose()
        await writer.aclose()
        await admin.aclose()

    run(scenario())
