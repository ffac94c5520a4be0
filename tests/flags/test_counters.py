"""Decision counters."""

from __future__ import annotations

from proxy.decision import Decision
from proxy.flags.counters import DecisionCounters


def test_counts_by_action_and_reason() -> None:
    counters = DecisionCounters()
    for decision in [Decision("legacy", "kill")] * 3 + [Decision("divert", "divert_band", 1)]:
        counters.record(decision)
    assert counters.snapshot() == {"legacy": {"kill": 3}, "shadow": {},
                                   "divert": {"divert_band": 1}}
    assert (counters.total(), counters.total("legacy"), counters.total("shadow")) == (4, 3, 0)
