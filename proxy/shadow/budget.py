"""The shadow budget: US dollars per hour that shadow and noise calls may spend, shared by
every replica. The judge (`proxy.judge`) spends from a budget of the same kind under its
own key (`kind="judge"`), so neither can starve the other.

Layer: adapter (Redis; `memory://` when there is no Redis). A call reserves its
estimated cost before it starts and settles the real cost after, so concurrent replicas
cannot overspend by more than the estimates in flight. Keys are per UTC hour
(`{keyspace}:budget:shadow:YYYYMMDDHH`) and expire after two hours. Redis is never called
on the request path: shadow tasks reserve in the background, and when the budget cannot
be confirmed (Redis unreachable, or failing over) the shadow is skipped, not run
unbudgeted. Failures are mapped by `proxy.redisfailure` to `BudgetUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from proxy.redisclient import Client
from proxy.redisfailure import RedisUnavailable, redis_failures

log = logging.getLogger("llm_shadow.budget")

# Reserve `ARGV[1]` dollars if the hour's total stays within `ARGV[2]`; returns 1 or 0.
_RESERVE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 7200)
return 1
"""


class BudgetUnavailable(RedisUnavailable):
    """The shared budget could not be read; the shadow is skipped."""


class Budget(Protocol):
    limit: float  # USD per hour; a reload may change it

    async def reserve(self, usd: float) -> str | None:
        """The hour the amount was reserved in, or None when the budget is spent."""

    async def settle(self, hour: str, reserved: float, actual: float) -> None:
        """Replace the reservation made in `hour` by the real cost (0 when the call
        failed), in that same hour even if the clock moved on."""

    async def spent(self) -> float: ...


def hour_key(prefix: str, now: float | None = None, kind: str = "shadow") -> str:
    return f"{prefix}:budget:{kind}:{time.strftime('%Y%m%d%H', time.gmtime(now))}"


class RedisBudget:
    def __init__(self, client: Client, prefix: str, usd_per_hour: float,
                 kind: str = "shadow", slots: int = 4):
        self.client = client
        self.prefix = prefix
        self.limit = usd_per_hour
        self.kind = kind
        self._reserve = client.register_script(_RESERVE)
        # At most `slots` budget commands at once: the shared client's pool is smaller
        # than the number of shadows that may run, and redis-py fails at once (it does
        # not wait) when its pool is exhausted; a background call can wait its turn.
        self._slots = asyncio.Semaphore(slots)

    async def reserve(self, usd: float) -> str | None:
        key = hour_key(self.prefix, kind=self.kind)
        async with self._slots, redis_failures(f"reserve {self.kind} budget",
                                               BudgetUnavailable):
            granted = await self._reserve(keys=[key], args=[f"{usd:.8f}", f"{self.limit:.8f}"])
        return key if granted else None

    async def settle(self, hour: str, reserved: float, actual: float) -> None:
        difference = actual - reserved
        if abs(difference) < 1e-12:
            return
        try:
            async with self._slots, redis_failures(f"settle {self.kind} budget",
                                                   BudgetUnavailable):
                pipe = self.client.pipeline(transaction=False)
                pipe.incrbyfloat(hour, round(difference, 8))
                pipe.expire(hour, 7200)
                await pipe.execute()
        except BudgetUnavailable as exc:
            log.warning("%s budget not settled (%s)", self.kind, exc)

    async def spent(self) -> float:
        async with redis_failures(f"read {self.kind} budget", BudgetUnavailable):
            value = await self.client.get(hour_key(self.prefix, kind=self.kind))
        return float(value or 0)

