"""Report entries to counters, counters to numbers: pure, no Redis."""

from __future__ import annotations

import math

import pytest

from proxy.comparison import Comparison
from proxy.report.aggregate import Bucket, quantile, route_report, summarise
from proxy.report.entry import (
    ReportEntry,
    RoleCost,
    bin_centre_ms,
    increments,
    latency_bin,
)


def test_increments_of_a_full_entry() -> None:
    entry = ReportEntry(
        "/openai", "r1", model="gpt-4o|x", comparison=Comparison("minor", 0.3, truncated=True),
        latency_delta_s=0.25, noise=Comparison("identical", 0.0),
        costs=(RoleCost("legacy", 0.002), RoleCost("orchestrator", 0.001),
               RoleCost("orchestrator", None), RoleCost("orchestrator", 0.003)),
        orchestrator="failed", divert=True, fallback=True)
    ints, floats = increments(entry)
    assert ints == {
        "compared": 1, "label:minor": 1, "truncated": 1, "m|gpt-4o/x|compared": 1,
        "m|gpt-4o/x|minor": 1, f"lat:{latency_bin(250)}": 1, "lat:count": 1,
        "noise": 1, "noise:identical": 1, "reason:minor:text_edit": 1,
        "noise_reason:identical:identical": 1,
        "cost:legacy:calls": 1, "cost:legacy:requests": 1,
        "cost:orchestrator:calls": 3, "cost:orchestrator:unpriced": 1,
        "cost:orchestrator:requests": 1,
        "orch:requests": 1, "orch:failed": 1, "divert:requests": 1, "divert:fallbacks": 1,
    }
    assert floats == {"score_sum": 0.3, "cost:legacy:usd": 0.002,
                      "cost:orchestrator:usd": pytest.approx(0.004)}


def test_an_empty_entry_adds_nothing() -> None:
    assert increments(ReportEntry("/x", "r")) == ({}, {})


@pytest.mark.parametrize("ms", [0.5, 1, 1.5, 10, 99, 250, 1000, 12_345, 3_600_000])
def test_latency_bins_are_within_ten_percent(ms: float) -> None:
    for signed in (ms, -ms):
        index = latency_bin(signed)
        if abs(signed) < 1:
            assert index == 0
            continue
        assert math.copysign(1, index) == math.copysign(1, signed)
        assert abs(bin_centre_ms(index) - signed) <= 0.1 * abs(signed)


def test_latency_bin_saturates_and_ignores_nan() -> None:
    assert latency_bin(10**12) == 88
    assert latency_bin(float("nan")) == 0


def test_quantiles() -> None:
    hist = {latency_bin(-100): 10, latency_bin(200): 80, latency_bin(5000): 10}
    assert quantile(hist, 0.5) == pytest.approx(200, rel=0.1)
    assert quantile(hist, 0.05) == pytest.approx(-100, rel=0.1)
    assert quantile(hist, 0.95) == pytest.approx(5000, rel=0.1)
    assert quantile({}, 0.5) is None


HOUR = 3600


def test_summary_numbers() -> None:
    buckets = [
        Bucket("/openai", 0.0, {"compared": 60, "label:identical": 30, "label:minor": 20,
                                "label:major": 10, "score_sum": 12.0, "noise": 40,
                                "noise:identical": 36, "noise:minor": 4,
                                "cost:legacy:usd": 0.6, "cost:legacy:calls": 60,
                                "cost:legacy:requests": 60, "orch:requests": 60,
                                "orch:failed": 3, "divert:requests": 10,
                                "divert:fallbacks": 1, "m|gpt-4o|compared": 60,
                                "m|gpt-4o|major": 10},
               top=(("major|r9", 0.9), ("minor|r2", 0.3))),
        Bucket("/openai", HOUR, {"compared": 40, "label:equivalent": 40,
                                 "cost:legacy:usd": 0.4, "cost:legacy:calls": 40,
                                 "cost:legacy:requests": 40, "cost:noise:calls": 2,
                                 "cost:noise:unpriced": 2, "cost:noise:requests": 2},
               top=(("major|r1", 0.95),)),
        Bucket("/openai", 2 * HOUR, {}),
    ]
    s = summarise("/openai", buckets, since=0.0, until=3 * HOUR, bucket_seconds=HOUR, top=2)
    assert s.compared == 100
    assert s.labels == {"identical": 30, "equivalent": 40, "minor": 20, "major": 10}
    assert s.divergence_rate == pytest.approx(0.3)
    assert s.noise_floor == pytest.approx(0.1)
    assert s.excess.value == pytest.approx(0.2)
    assert s.excess.significant and s.excess.enough
    assert s.mean_score == pytest.approx(0.12)
    assert s.error_rate == pytest.approx(0.05)
    assert s.fallback_rate == pytest.approx(0.1)
    legacy = s.cost["legacy"]
    assert legacy.usd == pytest.approx(1.0) and legacy.per_request == pytest.approx(0.01)
    assert legacy.per_day == pytest.approx(1.0 / (3 / 24))
    assert s.cost["noise"].unpriced == 2 and s.cost["noise"].usd == 0.0
    assert "orchestrator" not in s.cost
    assert s.models == {"gpt-4o": {"compared": 60, "major": 10}}
    assert [(t.request_id, t.label) for t in s.top] == [("r1", "major"), ("r9", "major")]


def test_empty_window() -> None:
    s = summarise("/x", [], since=0.0, until=HOUR, bucket_seconds=HOUR)
    assert s.compared == 0 and s.divergence_rate is None and s.excess.value is None
    assert s.latency_delta_p50_ms is None and s.cost == {}


def test_route_report_timeline_skips_empty_buckets() -> None:
    buckets = [Bucket("/x", 0.0, {"compared": 2, "label:major": 1, "label:identical": 1,
                                  "noise": 1, "noise:minor": 1}),
               Bucket("/x", HOUR, {})]
    report = route_report("/x", buckets, since=0.0, until=2 * HOUR, bucket_seconds=HOUR)
    [point] = report.timeline
    assert point.divergence_rate == 0.5 and point.noise_floor == 1.0
