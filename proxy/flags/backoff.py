"""Reconnect delays: exponential with jitter, reset after a success.

Layer: pure core. N replicas that lose Redis together must not reconnect in lock step
(a thundering herd on the Redis that just came back), and an auth failure must not turn
into a tight retry loop: every failed attempt doubles the delay up to a cap, and a random 0–50 % is
taken off so replicas spread out (LaunchDarkly's SDKs do the same).
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, base: float, cap: float, rand: Callable[[], float] = random.random):
        self.base = base
        self.cap = max(cap, base)
        self.failures = 0
        self._rand = rand

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next attempt."""
        self.failures += 1
        raw = min(self.cap, self.base * 2.0 ** min(self.failures - 1, 30))
        return raw * (1 - 0.5 * self._rand())

    def reset(self) -> None:
        self.failures = 0
