"""Learned records: counters, posteriors, and their Redis encoding."""

from __future__ import annotations

import pytest

from proxy.orchestrator.learned import (
    Evidence,
    ModelRecord,
    Sample,
    availability,
    call_delta,
    correctness,
    reliability,
)


@pytest.mark.parametrize(("outcome", "fields"), [
    ("valid", {"calls": 1, "answered": 1, "latency_count": 1}),
    ("invalid", {"calls": 1, "answered": 1, "invalid": 1, "latency_count": 1}),
    ("error", {"calls": 1, "errors": 1, "latency_count": 1}),
    ("timeout", {"calls": 1, "timeouts": 1, "latency_count": 1}),
    ("cancelled", {"calls": 1, "cancelled": 1}),
])
def test_each_outcome_counts_where_it_should(outcome: str, fields: dict[str, int]) -> None:
    record = ModelRecord().plus(call_delta(outcome, latency=0.5, cost=0.1))  # type: ignore[arg-type]
    for name in ("calls", "answered", "invalid", "errors", "timeouts", "cancelled",
                 "latency_count"):
        assert getattr(record, name) == fields.get(name, 0), name
    assert record.cost_sum == 0.1


def test_rates_and_posteriors() -> None:
    record = ModelRecord(calls=10, answered=8, invalid=2, errors=1, timeouts=1,
                         feedback_correct=3, feedback_incorrect=1, agreed=4, disagreed=2)
    assert record.valid == 6 and record.success_rate == 0.6 and record.feedback_accuracy == 0.75
    evidence = Evidence()
    assert correctness(record, evidence) == (2 + 9 + 4 + 1.5, 2 + 3 + 2 + 2)
    assert availability(record) == (12, 3)
    assert reliability(ModelRecord(), evidence) == 0.5
    assert reliability(ModelRecord(feedback_correct=10), evidence) > 0.9
    assert reliability(ModelRecord(feedback_incorrect=10), evidence) < 0.1


def test_redis_hash_round_trip_ignores_unknown_fields() -> None:
    record = ModelRecord.from_counters({b"calls": b"3", b"latency_sum": b"1.5",
                                        b"from_a_newer_replica": b"7", "answered": "2"})
    assert (record.calls, record.answered, record.latency_sum) == (3, 2, 1.5)


def test_samples_round_trip_and_reject_garbage() -> None:
    sample = Sample(12.5, "valid", 0.25, 0.001)
    assert Sample.from_list(sample.to_list()) == sample
    assert Sample.from_list([1, "exploded", 0.1, 0]) is None
    assert Sample.from_list(["x"]) is None  # type: ignore[list-item]
