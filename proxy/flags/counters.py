"""In-memory counters of traffic decisions, by action and reason, for `/flagz`.

Layer: pure core. The request path calls `record(decision)`: one dict update, no lock
(one event loop), no I/O. Metric export reads `snapshot()` later (telemetry helper), so
the counter names here are the glossary's words: legacy, shadow, divert, and the
decision's reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class _Decided(Protocol):
    @property
    def action(self) -> str: ...

    @property
    def reason(self) -> str: ...


class DecisionCounters:
    """Counts every decision; monotonic, never reset (rates come from differences)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, decision: _Decided) -> None:
        self._counts[decision.action, decision.reason] += 1

    def total(self, action: str | None = None) -> int:
        return sum(n for (a, _), n in self._counts.items() if action is None or a == action)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """`{"legacy": {"kill": 3, "outside_bands": 90}, "shadow": {...}, ...}`."""
        out: dict[str, dict[str, int]] = {"legacy": {}, "shadow": {}, "divert": {}}
        for (action, reason), count in sorted(self._counts.items()):
            out.setdefault(action, {})[reason] = count
        return out
