"""The shadow budget: US dollars per hour that shadow and noise calls may spend, shared by
every replica. The judge (`proxy.judge`) spends from a budget of the same kind under its
own key (`kind="judge"`), so neither can starve the other.

Layer: adapter (Redis; `memory://` when there is no Redis). A call reserves its
estimated cost before it starts and settles the real cost after, so concurrent replicas
cannot overspend by more than the estimates in flight. Keys are per UTC hour
(`{keyspace}:budget:shadow:YYYYMMDDHH`) and expire after two hours.

Reservations are served from a **lease**: when a process has no room left it takes a
slice of the hour's budget from Redis in one atomic step (room for `LEASE_CALLS`
reservations of the size asked, never more than `LEASE_SHARE` of the hourly limit, and
never past the limit), then reserves and settles against that slice in memory. A shadow
therefore costs Redis one round trip per `LEASE_CALLS` calls instead of two per call;
that round trip was nearly all of what a shadow added to a legacy request answered in
under a millisecond (`bench/shedding.py`, one at a time). What the lease changes:

- Redis counts a lease as spent when it is taken. The unused part goes back when the
  hour turns (at the next reservation) and at shutdown; `spent()` leaves out this
  process's own unused part, but another replica's counts until it gives it back: at
  most one lease per replica, at most 1 % of the hourly limit each. A replica killed
  without shutting down leaves its unused lease counted in that hour.
- A real cost above the reservation is charged to Redis at once when the lease cannot
  cover it, so the shared total never reads below what was spent.
- While Redis is unreachable, reservations go on from a lease already held, then stop.

Redis is never called on the request path: shadow tasks reserve in the background, and
when the budget cannot be confirmed (Redis unreachable, or failing over, and no lease
left) the shadow is skipped, not run unbudgeted. Failures are mapped by
`proxy.redisfailure` to `BudgetUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from proxy.redisclient import Client
from proxy.redisfailure import RedisUnavailable, redis_failures

log = logging.getLogger("llm_shadow.budget")

# A lease holds room for this many reservations of the size asked...
LEASE_CALLS = 16
# ... and never more than this share of the hourly limit.
LEASE_SHARE = 0.01
# Amounts go to Redis with 8 decimals: smaller differences are rounding.
_EPSILON = 1e-8

# Grant a lease of `ARGV[2]` dollars, or what is left below the limit `ARGV[3]` when that
# is less, provided at least `ARGV[1]` is left; returns the amount granted, or nil.
_GRANT = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[3])
if spent + tonumber(ARGV[1]) > limit then return false end
local take = string.format('%.8f', math.min(tonumber(ARGV[2]), limit - spent))
redis.call('INCRBYFLOAT', KEYS[1], take)
redis.call('EXPIRE', KEYS[1], 7200)
return take
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

    async def release(self) -> None:
        """Give back what this process holds and has not spent (at shutdown)."""


def hour_key(prefix: str, now: float | None = None, kind: str = "shadow") -> str:
    return f"{prefix}:budget:{kind}:{time.strftime('%Y%m%d%H', time.gmtime(now))}"


@dataclass
class Lease:
    """One hour's slice of the shared budget held by this process."""

    granted: float = 0.0  # taken from Redis (counted there as spent)
    used: float = 0.0  # reserved or spent out of it (may pass `granted` until charged)

    @property
    def room(self) -> float:
        return self.granted - self.used

    def take(self, usd: float) -> bool:
        if self.used + usd > self.granted + _EPSILON:
            return False
        self.used += usd
        return True


class RedisBudget:
    def __init__(self, client: Client, prefix: str, usd_per_hour: float,
                 kind: str = "shadow", slots: int = 4,
                 clock: Callable[[], float] = time.time):
        self.client = client
        self.prefix = prefix
        self.limit = usd_per_hour
        self.kind = kind
        self._grant = client.register_script(_GRANT)
        # At most `slots` budget commands at once: the shared client's pool is smaller
        # than the number of shadows that may run, and redis-py fails at once (it does
        # not wait) when its pool is exhausted; a background call can wait its turn.
        self._slots = asyncio.Semaphore(slots)
        self._leases: dict[str, Lease] = {}
        self._refill = asyncio.Lock()  # one lease request at a time; the others wait
        self._clock = clock

    def _hour(self) -> str:
        return hour_key(self.prefix, self._clock(), kind=self.kind)

    async def reserve(self, usd: float) -> str | None:
        key = self._hour()
        lease = self._leases.get(key)
        if lease is not None and lease.take(usd):
            return key  # no Redis call, and no await
        async with self._refill:
            await self._give_back_past(key)
            lease = self._leases.setdefault(key, Lease())
            if lease.take(usd):  # another reservation refilled it meanwhile
                return key
            need = usd - lease.room  # also covers a cost not yet charged
            size = max(need, min(LEASE_CALLS * usd, LEASE_SHARE * self.limit))
            async with self._slots, redis_failures(f"reserve {self.kind} budget",
                                                   BudgetUnavailable):
                granted = await self._grant(
                    keys=[key], args=[f"{need:.8f}", f"{size:.8f}", f"{self.limit:.8f}"])
            if granted is None:
                return None
            lease.granted += float(granted)
            lease.used += usd  # Redis granted at least `need`
            return key

    async def settle(self, hour: str, reserved: float, actual: float) -> None:
        difference = actual - reserved
        if abs(difference) < 1e-12:
            return
        lease = self._leases.get(hour)
        if lease is None:  # that hour's lease was given back: Redis takes the difference
            await self._write(hour, difference)
            return
        lease.used += difference
        owed = -lease.room
        if owed > _EPSILON or (hour != self._hour() and abs(owed) > _EPSILON):
            await self._square(hour, lease)

    async def spent(self) -> float:
        key = self._hour()
        async with redis_failures(f"read {self.kind} budget", BudgetUnavailable):
            value = await self.client.get(key)
        lease = self._leases.get(key)
        return float(value or 0) - (lease.room if lease is not None else 0.0)

    async def release(self) -> None:
        for hour, lease in list(self._leases.items()):
            if abs(lease.room) > _EPSILON:
                await self._square(hour, lease)

    async def _give_back_past(self, current: str) -> None:
        """Square the leases of hours gone by with Redis and forget them; a reservation
        of theirs still in flight settles straight in Redis."""
        for hour, lease in list(self._leases.items()):
            if hour == current:
                continue
            if abs(lease.room) > _EPSILON:
                await self._square(hour, lease)
            if abs(lease.room) <= _EPSILON:
                del self._leases[hour]

    async def _square(self, hour: str, lease: Lease) -> None:
        """Make Redis count exactly what the lease used: charge a cost beyond it, or give
        back its unused part. Counted as granted before the write, so that settlements
        running meanwhile do not write the same amount twice."""
        amount = -lease.room
        lease.granted += amount
        if not await self._write(hour, amount):
            lease.granted -= amount
            # Forgotten meanwhile as square (a past hour): kept, so it is tried again.
            self._leases.setdefault(hour, lease)

    async def _write(self, hour: str, amount: float) -> bool:
        try:
            async with self._slots, redis_failures(f"settle {self.kind} budget",
                                                   BudgetUnavailable):
                pipe = self.client.pipeline(transaction=False)
                pipe.incrbyfloat(hour, round(amount, 8))
                pipe.expire(hour, 7200)
                await pipe.execute()
        except BudgetUnavailable as exc:
            log.warning("%s budget not settled (%s)", self.kind, exc)
            return False
        return True
