"""The shared hourly budget of shadow (and judge) spend, on a real redis-server: a
reservation never lets the hour's total pass the limit, settling replaces it by the real
cost in the hour it was made, many shadows at once wait for the budget's few Redis slots
instead of failing, and an unreachable Redis is `BudgetUnavailable` (the shadow is
skipped, never run unbudgeted)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from proxy.redisclient import redis_client
from proxy.shadow.budget import BudgetUnavailable, RedisBudget, hour_key
from tests.fakes.servers import RedisServer

pytestmark = pytest.mark.integration


def budget(url: str, limit: float, *, pool: int = 8, kind: str = "shadow") -> RedisBudget:
    client = redis_client(url, connect_timeout=1.0, socket_timeout=1.0, max_connections=pool)
    return RedisBudget(client, f"budget-{uuid.uuid4().hex[:8]}", limit, kind=kind)


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
