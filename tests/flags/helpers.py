"""Shared builders for the flag tests: views, snapshots and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from proxy.config import parse_config
from proxy.config.model import Config
from proxy.flags.snapshot import FlagSnapshot
from proxy.flags.view import FlagView, LocalLayer, State

T = TypeVar("T")

# Fast timings for tests: every state is reached in well under a second.
FAST_FLAGS = {"poll_interval": 0.05, "stale_after": 0.3, "max_stale": 0.6,
              "reconnect_max_delay": 0.2, "ping_interval": 0.2,
              "subscriber_watchdog": 0.8, "heartbeat_interval": 0.1,
              "heartbeat_ttl": 1.0, "config_reload_interval": 0.05}


def config(**sections: Any) -> Config:
    return parse_config(sections)


def snapshot(**fields: Any) -> FlagSnapshot:
    return FlagSnapshot.model_validate(fields)


def view(state: State = "ready", local: LocalLayer | None = None, **fields: Any) -> FlagView:
    return FlagView.build(snapshot(**fields), local or LocalLayer(), state, "redis", 0.0)


class FakeClock:
    """A monotonic clock the test moves by hand: staleness without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)
