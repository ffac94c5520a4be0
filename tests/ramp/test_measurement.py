"""A step's numbers from report buckets: the step's share of a bucket it started in, the
noise floor over its own window, costs and latency carried over."""

from __future__ import annotations

import pytest

from proxy.ramp.measurement import Baseline, measure, since_baseline
from proxy.report.aggregate import Bucket
from proxy.report.entry import latency_bin

HOUR = 3600.0


def bucket(start: float, **fields: float) -> Bucket:
    return Bucket("/r", start, {k.replace("__", ":"): v for k, v in fields.items()})


@pytest.mark.parametrize(("since", "baseline", "expected"), [
    # the step started on a boundary: every bucket counts whole
    (HOUR, None, [(HOUR, 5.0), (2 * HOUR, 7.0)]),
    # mid-bucket with the copy taken at the step's start: only what came after it
    (HOUR + 600, Baseline(start=HOUR, fields={"compared": 3}), [(HOUR, 2.0), (2 * HOUR, 7.0)]),
    # mid-bucket without a copy: that bucket is dropped, never guessed
    (HOUR + 600, None, [(2 * HOUR, 7.0)]),
    # a copy of another bucket does not apply
    (HOUR + 600, Baseline(start=0.0, fields={"compared": 3}), [(2 * HOUR, 7.0)]),
    # a counter that shrank (the bucket expired and came back) counts from zero
    (HOUR + 600, Baseline(start=HOUR, fields={"compared": 9}), [(HOUR, 0.0), (2 * HOUR, 7.0)]),
])
def test_since_baseline(since: float, baseline: Baseline | None,
                        expected: list[tuple[float, float]]) -> None:
    buckets = [bucket(HOUR, compared=5), bucket(2 * HOUR, compared=7)]
    kept = since_baseline(buckets, since, baseline)
    assert [(b.start, b.fields["compared"]) for b in kept] == expected


def test_measure_reads_every_number_the_guardrails_need() -> None:
    step = [bucket(HOUR, compared=10, label__identical=6, label__minor=2, label__major=2,
                   orch__requests=10, orch__failed=1, divert__requests=4,
                   divert__fallbacks=1, **{f"lat__{latency_bin(250)}": 10.0},
                   lat__count=10, cost__orchestrator__usd=0.05,
                   cost__orchestrator__calls=12, cost__orchestrator__unpriced=2,
                   cost__orchestrator__requests=10, cost__legacy__usd=0.02,
                   cost__legacy__calls=10, cost__legacy__requests=10,
                   # noise in the step's buckets is not what the noise window says
                   noise=1, noise__major=1)]
    noise = [bucket(0.0, noise=30, noise__identical=24, noise__minor=4, noise__major=2),
             bucket(HOUR, noise=1, noise__major=1)]
    m = measure("/r", step, noise, since=HOUR, until=HOUR + 60, bucket_seconds=3600)
    assert (m.compared, m.divergent, m.major) == (10, 4, 2)
    assert (m.noise_samples, m.noise_divergent, m.noise_major) == (31, 7, 3)
    assert (m.orchestrator_requests, m.orchestrator_errors) == (10, 1)
    assert (m.divert_requests, m.divert_fallbacks) == (4, 1)
    assert m.latency_histogram == {latency_bin(250): 10}
    assert (m.orchestrator_usd, m.orchestrator_cost_requests) == (0.05, 10)
    assert (m.orchestrator_calls, m.orchestrator_unpriced) == (12, 2)
    assert (m.legacy_usd, m.legacy_cost_requests) == (0.02, 10)


def test_no_buckets_measure_zero() -> None:
    m = measure("/r", [], [], since=HOUR, until=HOUR + 60, bucket_seconds=3600)
    assert m.compared == 0 and m.noise_samples == 0 and m.latency == ()
