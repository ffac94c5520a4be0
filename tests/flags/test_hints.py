"""The pub/sub subscriber against a real redis-server and the fault proxy: hints arrive,
a silent connection is given up by the watchdog, dropped messages go unnoticed (which is
why the watcher polls)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from proxy.flags.hints import RedisHints, parse_hint
from proxy.flags.store import StoreError
from proxy.flags.writer import FlagWriter
from tests.fakes.faultproxy import FaultProxy, redis_through
from tests.fakes.servers import RedisServer, async_wait_for
from tests.flags.helpers import run

_prefixes = itertools.count()


def hints_for(url: str, prefix: str) -> RedisHints:
    return RedisHints(url, f"{prefix}:flags:changed", connect_timeout=0.3,
                      socket_timeout=0.3, ping_interval=0.1, watchdog=0.5)


class Recorder:
    def __init__(self) -> None:
        self.subscribed = 0
        self.hints: list[int | None] = []

    def on_subscribed(self) -> None:
        self.subscribed += 1

    def on_hint(self, version: int | None) -> None:
        self.hints.append(version)


@pytest.fixture
def fault(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as proxy:
        redis_through(proxy)
        yield proxy


@pytest.mark.parametrize(("data", "version"), [
    (b"7", 7), ("12", 12), (b"", None), (b"x", None), (b"-1", None), (b"\xff", None)])
def test_parse_hint(data: object, version: int | None) -> None:
    assert parse_hint(data) == version


def test_hints_arrive_after_the_subscription_is_confirmed(redis_server: RedisServer) -> None:
    prefix = f"test-hints-{next(_prefixes)}"

    async def scenario() -> None:
        source, seen = hints_for(redis_server.url, prefix), Recorder()
        task = asyncio.create_task(source.run(seen.on_subscribed, seen.on_hint))
        await async_wait_for(lambda: seen.subscribed == 1, message="subscribed")
        writer = FlagWriter(redis_server.url, prefix)
        await writer.update({"kill": True}, actor="t")
        await writer.update({"kill": False}, actor="t")
        await async_wait_for(lambda: seen.hints == [1, 2], message="two hints")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.aclose()
        await source.aclose()

    run(scenario())


def test_watchdog_gives_up_on_a_silent_connection(fault: FaultProxy) -> None:
    async def scenario() -> None:
        source, seen = hints_for(fault.url, "wd"), Recorder()
        task = asyncio.create_task(source.run(seen.on_subscribed, seen.on_hint))
        await async_wait_for(lambda: seen.subscribed == 1, message="subscribed")
        fault.set_mode("blackhole")  # half-open: no FIN, no pongs
        with pytest.raises(StoreError) as info:
            await asyncio.wait_for(task, timeout=10)
        assert info.value.kind == "timeout"
        await source.aclose()

    run(scenario())


def test_a_reset_connection_ends_the_subscription(fault: FaultProxy) -> None:
    async def scenario() -> None:
        source, seen = hints_for(fault.url, "rst"), Recorder()
        task = asyncio.create_task(source.run(seen.on_subscribed, seen.on_hint))
        await async_wait_for(lambda: seen.subscribed == 1, message="subscribed")
        fault.set_mode("reset")
        with pytest.raises(StoreError) as info:
            await asyncio.wait_for(task, timeout=10)
        assert info.value.kind == "connection"
        await source.aclose()

    run(scenario())


def test_dropped_messages_go_unnoticed_while_pongs_flow(fault: FaultProxy,
                                                        redis_server: RedisServer) -> None:
    prefix = f"test-hints-{next(_prefixes)}"

    async def scenario() -> None:
        source, seen = hints_for(fault.url, prefix), Recorder()
        task = asyncio.create_task(source.run(seen.on_subscribed, seen.on_hint))
        await async_wait_for(lambda: seen.subscribed == 1, message="subscribed")
        fault.set_mode("drop_subscriber")
        writer = FlagWriter(redis_server.url, prefix)
        await writer.update({"kill": True}, actor="t")
        await async_wait_for(lambda: fault.dropped_messages >= 1, message="drop")
        # Pongs keep arriving, so the watchdog stays quiet: only the poll can help.
        await asyncio.sleep(0.7)  # longer than the watchdog: the subscriber must survive
        assert not task.done() and seen.hints == []
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.aclose()
        await source.aclose()

    run(scenario())
