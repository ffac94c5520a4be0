"""The shared hourly budget of shadow (and judge) spend, on a real redis-server: a
reservation never lets the hour's total pass the limit, settling replaces it by the real
cost in the hour it was made, many shadows at once wait for the budget's few Redis slots
instead of failing, and an unreachable Redis is `BudgetUnavailable` (the shadow is
skipped, never run unbudgeted).

Reservations come out of a lease taken from Redis in one step: most shadows reserve and
settle without a round trip, replicas together still never pass the limit, a cost above
the lease is charged at once, and the unused part goes back when the hour turns and at
shutdown, so the hour's total ends exactly at what was spent."""

from __future__ import annotations

import asyncio
import calendar
import time
import uuid
from collections.abc import Callable

import pytest

from proxy.redisclient import redis_client
from proxy.shadow.budget import BudgetUnavailable, RedisBudget, hour_key
from tests.fakes.servers import RedisServer

pytestmark = pytest.mark.integration


def budget(url: str, limit: float, *, pool: int = 8, kind: str = "shadow",
           prefix: str | None = None, clock: Callable[[], float] = time.time) -> RedisBudget:
    client = redis_client(url, connect_timeout=1.0, socket_timeout=1.0, max_connections=pool)
    return RedisBudget(client, prefix or f"budget-{uuid.uuid4().hex[:8]}", limit, kind=kind,
                       clock=clock)


async def in_redis(shared: RedisBudget, hour: str | None = None) -> float:
    """The hour's total as every replica reads it."""
    return float(await shared.client.get(hour or hour_key(shared.prefix)) or 0)


async def grants(shared: RedisBudget) -> int:
    """Lease requests the server has run so far (the budget's only script)."""
    stats = await shared.client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0)
               for name in ("evalsha", "eval"))


def test_reservations_stop_at_the_limit_and_settle_to_the_real_cost(
        redis_server: RedisServer) -> None:
    async def go() -> tuple[list[str | None], float]:
        shared = budget(redis_server.url, 1.0)
        try:
            hours = [await shared.reserve(0.4) for _ in range(3)]
            first = hours[0]
            assert first is not None
            await shared.settle(first, 0.4, 0.1)  # the call cost less than reserved
            return hours, await shared.spent()
        finally:
            await shared.client.aclose()

    hours, spent = asyncio.run(go())
    assert hours[2] is None  # 0.4 + 0.4 + 0.4 > 1.0
    assert spent == pytest.approx(0.5)


def test_many_shadows_at_once_wait_for_a_slot_instead_of_failing(
        redis_server: RedisServer) -> None:
    """64 shadows reserving at once through a pool of 4 connections (the budget's own
    4 slots; the runtime's shared pool has 32 for every store): redis-py would fail the
    calls that find the pool empty; the budget's slots make them wait."""
    async def go() -> list[str | None]:
        shared = budget(redis_server.url, 1000.0, pool=4)
        try:
            return await asyncio.gather(*(shared.reserve(0.01) for _ in range(64)))
        finally:
            await shared.client.aclose()

    assert all(hour is not None for hour in asyncio.run(go()))


def test_judge_spend_is_counted_apart_from_shadow_spend(redis_server: RedisServer) -> None:
    async def go() -> tuple[str | None, str | None]:
        shadow = budget(redis_server.url, 1.0)
        judge = RedisBudget(shadow.client, shadow.prefix, 1.0, kind="judge")
        try:
            return await shadow.reserve(0.9), await judge.reserve(0.9)
        finally:
            await shadow.client.aclose()

    shadow_hour, judge_hour = asyncio.run(go())
    assert shadow_hour is not None and ":budget:shadow:" in shadow_hour
    assert judge_hour is not None and ":budget:judge:" in judge_hour


def test_an_unreachable_redis_is_budget_unavailable() -> None:
    async def go() -> None:
        shared = budget("redis://127.0.0.1:9/0", 1.0)
        try:
            with pytest.raises(BudgetUnavailable):
                await shared.reserve(0.1)
            with pytest.raises(BudgetUnavailable):
                await shared.spent()
            await shared.settle(hour_key("x"), 0.1, 0.2)  # logged, never raised
        finally:
            await shared.client.aclose()

    asyncio.run(go())


def test_a_lease_serves_many_reservations_and_settlements_without_a_round_trip(
        redis_server: RedisServer) -> None:
    """Limit $100, $0.01 a call: one lease of 16 calls' worth, taken once, serves 16
    reservations and their settlements; the 17th takes the next lease."""
    async def go() -> tuple[int, float, float, int, float, float]:
        shared = budget(redis_server.url, 100.0)
        try:
            before = await grants(shared)
            for _ in range(16):
                hour = await shared.reserve(0.01)
                assert hour is not None
                await shared.settle(hour, 0.01, 0.004)  # each call cost less
            one_lease = await grants(shared) - before
            held, spent = await in_redis(shared), await shared.spent()
            await shared.reserve(0.01)
            return (one_lease, held, spent, await grants(shared) - before,
                    await in_redis(shared), await shared.spent())
        finally:
            await shared.client.aclose()

    one_lease, held, spent, two_leases, held_after, spent_after = asyncio.run(go())
    assert one_lease == 1 and held == pytest.approx(0.16)
    assert spent == pytest.approx(16 * 0.004)  # its own unused lease is not spent
    # 16 x 0.004 spent left room for 24 more reservations: no second lease yet
    assert two_leases == 1 and held_after == pytest.approx(0.16)
    assert spent_after == pytest.approx(16 * 0.004 + 0.01)


def test_two_replicas_never_pass_the_limit_together(redis_server: RedisServer) -> None:
    """Two processes on one budget of $1, reserving $0.3 in turn, spending all of it:
    three calls fit, the fourth is refused whoever asks, and a reservation that fits in
    what is left is granted even though a whole lease does not fit."""
    async def go() -> tuple[list[bool], float]:
        a = budget(redis_server.url, 1.0)
        b = budget(redis_server.url, 1.0, prefix=a.prefix)
        try:
            granted = []
            for shared in (a, b, a, b):
                hour = await shared.reserve(0.3)
                granted.append(hour is not None)
            late = await b.reserve(0.1)  # 0.9 reserved: 0.1 is left
            granted.append(late is not None)
            return granted, await in_redis(a)
        finally:
            await a.client.aclose()
            await b.client.aclose()

    granted, total = asyncio.run(go())
    assert granted == [True, True, True, False, True]
    assert total == pytest.approx(1.0)


def test_a_cost_above_the_lease_is_charged_at_once(redis_server: RedisServer) -> None:
    """A call reserved $0.01 and cost $2: the other replicas see the $2 at once, and the
    next reservation of this one finds the budget spent."""
    async def go() -> tuple[float, str | None]:
        shared = budget(redis_server.url, 2.05)
        other = budget(redis_server.url, 2.05, prefix=shared.prefix)
        try:
            hour = await shared.reserve(0.01)
            assert hour is not None
            await shared.settle(hour, 0.01, 2.0)
            return await other.spent(), await shared.reserve(0.1)
        finally:
            await shared.client.aclose()
            await other.client.aclose()

    seen_by_other, next_reservation = asyncio.run(go())
    assert seen_by_other == pytest.approx(2.0, abs=0.021)  # plus at most its lease
    assert next_reservation is None


def test_the_unused_lease_goes_back_when_the_hour_turns_and_at_shutdown(
        redis_server: RedisServer) -> None:
    """A reservation made at 10:59 settles at 11:00; the first reservation of the new
    hour gives the old hour's unused lease back, and shutdown gives back the new one's:
    each hour's total ends at exactly what was spent in it."""
    now = [float(calendar.timegm((2026, 12, 4, 10, 59, 0)))]

    async def go() -> tuple[float, float, float, float]:
        shared = budget(redis_server.url, 100.0, clock=lambda: now[0])
        try:
            old = await shared.reserve(0.01)
            assert old is not None
            settled = await shared.reserve(0.01)
            assert settled == old
            await shared.settle(settled, 0.01, 0.003)
            held = await in_redis(shared, old)
            now[0] += 120  # 11:01
            new = await shared.reserve(0.02)
            assert new is not None and new != old
            old_after_turn = await in_redis(shared, old)
            await shared.settle(old, 0.01, 0.006)  # the 10:59 call ends at 11:01
            await shared.release()
            return held, old_after_turn, await in_redis(shared, old), await in_redis(
                shared, new)
        finally:
            await shared.client.aclose()

    held, old_after_turn, old_final, new_final = asyncio.run(go())
    assert held == pytest.approx(0.16)
    assert old_after_turn == pytest.approx(0.003 + 0.01)  # the one still in flight counts
    assert old_final == pytest.approx(0.003 + 0.006)
    assert new_final == pytest.approx(0.02)  # reserved, never settled: counted


def test_reservations_go_on_from_the_lease_while_redis_is_down(
        own_redis: RedisServer) -> None:
    async def go() -> tuple[int, BaseException | None]:
        shared = budget(own_redis.url, 100.0)
        try:
            assert await shared.reserve(0.01) is not None  # takes a lease of 16 calls
            own_redis.stop()
            served = 1
            try:
                while served < 100:
                    assert await shared.reserve(0.01) is not None
                    served += 1
            except BudgetUnavailable as exc:
                return served, exc
            return served, None
        finally:
            await shared.client.aclose()

    served, failure = asyncio.run(go())
    assert served == 16 and isinstance(failure, BudgetUnavailable)


def test_an_hours_lease_that_could_not_be_squared_is_tried_again() -> None:
    """Redis is down when a 10:59 call settles at 11:01: the old hour's unused lease
    cannot go back then; it goes back at the first reservation after Redis returns."""
    server = RedisServer(appendonly=True).start()
    now = [float(calendar.timegm((2026, 12, 4, 10, 59, 0)))]

    async def go() -> tuple[float, float]:
        shared = budget(server.url, 100.0, clock=lambda: now[0])
        try:
            old = await shared.reserve(0.01)
            assert old is not None
            now[0] += 120  # 11:01
            server.stop()
            await shared.settle(old, 0.01, 0.003)  # logged: budget not settled
            server.start()
            held = await in_redis(shared, old)
            assert await shared.reserve(0.01) is not None
            return held, await in_redis(shared, old)
        finally:
            await shared.client.aclose()

    try:
        held, squared = asyncio.run(go())
    finally:
        server.cleanup()
    assert held == pytest.approx(0.16)  # the whole lease, still counted
    assert squared == pytest.approx(0.003)  # what the call cost, once Redis is back
