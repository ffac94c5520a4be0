"""What a replica does when Redis fails in each way it can, against a real redis-server
and the fault proxy, with fast timings. Each case waits for its condition with a deadline."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from proxy.config import Settings
from proxy.decision import decide
from proxy.flags.hints import RedisHints
from proxy.flags.service import FlagService
from proxy.flags.snapshot import FlagSnapshot
from proxy.flags.store import RedisFlagStore
from proxy.flags.view import LocalLayer
from proxy.flags.watcher import FlagWatcher, WatchTiming
from proxy.flags.writer import FlagWriter
from tests.fakes.faultproxy import FaultProxy, redis_through
from tests.fakes.servers import RedisServer, async_wait_for
from tests.flags.helpers import FAST_FLAGS, config, run

CHAT = "/v1/chat/completions"
_prefixes = itertools.count()


def settings_for(url: str, prefix: str, **flags: Any) -> Settings:
    cfg = config(redis={"url": url, "key_prefix": prefix, "connect_timeout": 0.1,
                        "socket_timeout": 0.2},
                 flags={**FAST_FLAGS, **flags})
    return Settings(config=cfg, source="<test>", base_dir=Path("."))


@asynccontextmanager
async def service(url: str, prefix: str | None = None, **flags: Any
                  ) -> AsyncIterator[FlagService]:
    flag_service = FlagService(settings_for(url, prefix or f"wr-{next(_prefixes)}", **flags))
    await flag_service.start()
    try:
        yield flag_service
    finally:
        await flag_service.aclose()


def state(flag_service: FlagService) -> str:
    return flag_service.watcher.current.state


async def reach(flag_service: FlagService, wanted: str, version: int | None = None) -> None:
    def holds() -> bool:
        view = flag_service.watcher.current
        return view.state == wanted and (version is None or view.version == version)

    await async_wait_for(holds, timeout=15, message=f"state {wanted} version {version}")


@pytest.fixture
def fault(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as proxy:
        redis_through(proxy)
        yield proxy


def test_row1_redis_refused_at_start_serves_legacy_then_recovers(own_redis: RedisServer
                                                                 ) -> None:
    own_redis.stop()

    async def scenario() -> None:
        async with service(own_redis.url) as flags:
            view = flags.watcher.current
            assert (view.state, view.source) == ("not_ready", "default")
            assert decide(view, "/openai", CHAT, "k", (CHAT,)).reason == "not_ready"
            await async_wait_for(lambda: flags.watcher.stats["read_errors_connection"] >= 2,
                                 message="failed reads")
            assert state(flags) == "not_ready"
            own_redis.start()
            await reach(flags, "ready")
            assert flags.watcher.current.source == "default"

    run(scenario())


def test_row2_black_holed_at_start_does_not_block_start_up(fault: FaultProxy) -> None:
    async def scenario() -> None:
        fault.set_mode("blackhole")
        async with service(fault.url) as flags:
            assert state(flags) == "not_ready"
            await async_wait_for(lambda: flags.watcher.stats["read_errors_timeout"] >= 1,
                                 message="a timed-out read")
            assert state(flags) == "not_ready"
            fault.set_mode("pass")
            await reach(flags, "ready")

    run(scenario())


def test_row3_redis_down_goes_stale_then_failsafe_then_recovers(own_redis: RedisServer
                                                                ) -> None:
    async def scenario() -> None:
        prefix = "row3"
        writer = FlagWriter(own_redis.url, prefix)
        await writer.update({"shadow_percent": 100}, actor="t")
        async with service(own_redis.url, prefix) as flags:
            await reach(flags, "ready", 1)
            own_redis.stop()
            await reach(flags, "stale")
            # Last-known-good still applies while stale.
            assert decide(flags.watcher.current, "/o", CHAT, "k", (CHAT,)).action == "shadow"
            await reach(flags, "failsafe")
            assert decide(flags.watcher.current, "/o", CHAT, "k", (CHAT,)).action == "legacy"
            own_redis.start()
            # Row 4: restarted without persistence, the key is gone: config defaults.
            await reach(flags, "ready", 0)
            assert flags.watcher.current.source == "default"
            assert flags.watcher.stats["missing"] >= 1
            # Re-seeding brings the replica back to a stored snapshot.
            seeding = FlagWriter(own_redis.url, prefix)
            seeded = await seeding.rollback(actor="runbook")
            await seeding.aclose()
            await reach(flags, "ready", seeded.version)
            assert flags.watcher.current.source == "redis"
        await writer.aclose()

    run(scenario())


def test_row9_malformed_snapshot_goes_failsafe(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        prefix = f"wr-{next(_prefixes)}"
        raw = Redis.from_url(redis_server.url)
        async with service(redis_server.url, prefix) as flags:
            await reach(flags, "ready")
            for bad in (b"{not json", b'{"shadow_percent": 150}', b'{"kill": "no"}'):
                await raw.set(f"{prefix}:flags", bad)
                await reach(flags, "failsafe")
                await FlagWriter(raw, prefix).rollback(actor="t")
                await reach(flags, "ready")
            assert flags.watcher.stats["invalid"] == 3
        await raw.aclose()

    run(scenario())


def test_row6_lost_hints_are_caught_by_the_poll(fault: FaultProxy,
                                                redis_server: RedisServer) -> None:
    async def scenario() -> None:
        prefix = f"wr-{next(_prefixes)}"
        async with service(fault.url, prefix) as flags:
            await reach(flags, "ready")
            fault.set_mode("drop_subscriber")
            writer = FlagWriter(redis_server.url, prefix)
            for n in range(1, 4):
                await writer.update({"shadow_percent": n}, actor="t")
                await reach(flags, "ready", n)
            assert fault.dropped_messages >= 1
            assert flags.watcher.stats["updates_poll"] >= 1
            await writer.aclose()

    run(scenario())


def test_rows7_8_dead_subscriber_is_recreated_while_the_poll_keeps_flags_fresh(
        fault: FaultProxy, redis_server: RedisServer) -> None:
    """Only the subscriber's connection goes half-open (it runs through the fault proxy,
    the poll does not): the watchdog recreates it; flags stay ready meanwhile."""
    async def scenario() -> None:
        prefix = f"wr-{next(_prefixes)}"
        store = RedisFlagStore.from_url(redis_server.url, prefix, connect_timeout=0.1,
                                        socket_timeout=0.2)
        hints = RedisHints(fault.url, store.keys.changed, connect_timeout=0.1,
                           socket_timeout=0.2, ping_interval=0.1, watchdog=0.4)
        watcher = FlagWatcher(store, hints, defaults=FlagSnapshot(), local=LocalLayer(),
                              timing=WatchTiming(0.05, 0.3, 0.6, 0.2))
        await watcher.start()
        await async_wait_for(lambda: watcher.stats["subscribes"] == 1, message="subscribed")
        fault.set_mode("blackhole")
        await async_wait_for(lambda: watcher.stats["subscriber_errors_timeout"] >= 1,
                             message="watchdog fired")
        writer = FlagWriter(redis_server.url, prefix)
        snapshot = await writer.update({"divert_percent": 3}, actor="t")
        await async_wait_for(lambda: watcher.current.version == snapshot.version,
                             message="poll applied it")
        assert watcher.current.state == "ready"
        fault.set_mode("pass")
        await async_wait_for(lambda: watcher.stats["subscribes"] >= 2, message="resubscribed")
        await watcher.aclose()
        await hints.aclose()
        await store.aclose()
        await writer.aclose()

    run(scenario())


def test_propagation8_an_older_hint_does_not_regress(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        prefix = f"wr-{next(_prefixes)}"
        writer = FlagWriter(redis_server.url, prefix)
        for n in range(3):
            await writer.update({"shadow_percent": n}, actor="t")
        async with service(redis_server.url, prefix, poll_interval=2.0, stale_after=10.0,
                           max_stale=20.0) as flags:
            await reach(flags, "ready", 3)
            raw = Redis.from_url(redis_server.url)
            skipped = flags.watcher.stats["hints_skipped"]
            await raw.publish(f"{prefix}:flags:changed", "1")
            await async_wait_for(lambda: flags.watcher.stats["hints_skipped"] > skipped,
                                 message="stale hint seen and skipped")
            assert flags.watcher.current.version == 3
            await raw.aclose()
        await writer.aclose()

    run(scenario())


def test_row11_auth_failure_is_unreachable_not_a_tight_loop(own_redis: RedisServer) -> None:
    async def scenario() -> None:
        admin = Redis.from_url(own_redis.url)
        await admin.config_set("requirepass", "right")
        await admin.aclose()
        url = f"redis://:wrong@127.0.0.1:{own_redis.port}/0"
        async with service(url) as flags:
            await async_wait_for(lambda: flags.watcher.stats["read_errors_auth"] >= 2,
                                 message="auth errors")
            assert state(flags) == "not_ready"

    run(scenario())


def test_heartbeat_reports_version_and_state(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        prefix = f"wr-{next(_prefixes)}"
        async with service(redis_server.url, prefix, replica_id="replica-a") as flags:
            await reach(flags, "ready")
            writer = FlagWriter(redis_server.url, prefix)
            snapshot = await writer.update({"kill": True}, actor="t")
            await writer.aclose()

            async def reported() -> bool:
                from proxy.flags.replicas import parse_status

                statuses = [parse_status(r) for r in await flags.store.statuses()]
                return any(s and s.replica_id == "replica-a" and s.version == snapshot.version
                           for s in statuses)

            deadline = asyncio.get_running_loop().time() + 15
            while not await reported():
                assert asyncio.get_running_loop().time() < deadline, "no heartbeat"
                await asyncio.sleep(0.02)

    run(scenario())
