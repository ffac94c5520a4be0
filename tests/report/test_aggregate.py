"""Report entries to counters, counters to numbers: pure, no Redis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.comparison import Comparison
from proxy.report.aggregate import (
    MAX_BARS,
    Bucket,
    display_step,
    quantile,
    route_report,
    summarise,
    timeline,
)
from proxy.report.entry import (
    ModelUse,
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


def test_shadows_skipped_for_load_are_counted_by_reason() -> None:
    ints, _ = increments(ReportEntry("/openai", "", skipped="overload"))
    assert ints == {"skip:overload": 1}
    fields = {"skip:overload": 7, "skip:concurrency_full": 2, "compared": 3,
              "label:identical": 3}
    summary = summarise("/openai", [Bucket("/openai", 0.0, fields)], since=0.0,
                        until=3600.0, bucket_seconds=3600)
    assert summary.shadow_skipped == {"concurrency_full": 2, "overload": 7}
    assert summary.as_dict()["shadow_skipped"] == {"concurrency_full": 2, "overload": 7}


def test_labels_are_broken_down_by_reason() -> None:
    entries = [ReportEntry("/x", f"r{i}", comparison=Comparison(label, 1.0, reason=reason))  # type: ignore[arg-type]
               for i, (label, reason) in enumerate([
                   ("major", "fact_changed"), ("major", "fact_changed"),
                   ("major", "json_value_changed"), ("minor", "text_edit"),
                   ("identical", "identical")])]
    entries.append(ReportEntry("/x", "n", noise=Comparison("minor", 0.3, reason="text_edit")))
    fields: dict[str, float] = {}
    for entry in entries:
        for name, amount in increments(entry)[0].items():
            fields[name] = fields.get(name, 0) + amount
    s = summarise("/x", [Bucket("/x", 0.0, fields)], since=0.0, until=HOUR,
                  bucket_seconds=HOUR)
    assert s.reasons == {"major": {"fact_changed": 2, "json_value_changed": 1},
                         "minor": {"text_edit": 1}, "identical": {"identical": 1}}
    assert s.noise_reasons == {"minor": {"text_edit": 1}}
    assert sum(sum(c.values()) for c in s.reasons.values()) == s.compared


def test_orchestrator_model_rows() -> None:
    qwen_ok = ModelUse("qwen-max", "valid", 0.2, 0.001, used=True)
    deepseek_slow = ModelUse("deepseek-chat", "timeout", 30.0, None)
    deepseek_ok = ModelUse("deepseek-chat", "valid", 0.4, 0.0005, used=True)
    cancelled = ModelUse("mistral-large", "cancelled", 0.05, 0.0)
    entries = [
        ReportEntry("/x", "a", orchestrator="ok", models=(qwen_ok, deepseek_slow)),
        ReportEntry("/x", "a", comparison=Comparison("major", 1.0, reason="fact_changed"),
                    contributors=("qwen-max",)),
        ReportEntry("/x", "b", orchestrator="ok", models=(qwen_ok, deepseek_ok, cancelled)),
        ReportEntry("/x", "b", comparison=Comparison("identical", 0.0),
                    contributors=("qwen-max", "deepseek-chat")),
    ]
    fields: dict[str, float] = {}
    for entry in entries:
        ints, floats = increments(entry)
        for name, amount in {**ints, **floats}.items():
            fields[name] = fields.get(name, 0) + amount
    s = summarise("/x", [Bucket("/x", 0.0, fields)], since=0.0, until=HOUR,
                  bucket_seconds=HOUR)
    qwen, deepseek, mistral = (s.orchestrator_models[m]
                               for m in ("qwen-max", "deepseek-chat", "mistral-large"))
    assert (qwen.selected, qwen.selected_share, qwen.used, qwen.answers) == (2, 1.0, 2, 2)
    assert (qwen.compared, qwen.labels["major"], qwen.major_rate) == (2, 1, 0.5)
    assert qwen.usd == pytest.approx(0.002) and qwen.cost_per_call == pytest.approx(0.001)
    assert qwen.latency_p50_ms == pytest.approx(200, rel=0.1)
    assert (deepseek.selected, deepseek.timeouts, deepseek.error_rate) == (2, 1, 0.5)
    assert deepseek.unpriced == 1 and deepseek.cost_per_call == pytest.approx(0.0005)
    # A timed-out call's 30 s is not an answer's latency.
    assert deepseek.latency_p95_ms == pytest.approx(400, rel=0.1)
    assert (mistral.cancelled, mistral.error_rate, mistral.latency_p50_ms) == (1, None, None)


@pytest.mark.parametrize(("window", "bucket", "step"), [
    (60, 10, 10), (100, 5, 5), (7200, 10, 120), (3600, 10, 60), (86_400, 3600, 3600),
    (7 * 86_400, 3600, 3 * 3600), (600, 90, 90), (90 * 86_400, 3600, 172_800),
])
def test_display_step_fits_the_window(window: float, bucket: int, step: int) -> None:
    assert display_step(window, bucket) == step


@given(st.floats(1, 400 * 86_400), st.integers(1, 7200))
def test_display_step_is_a_whole_number_of_buckets_within_the_bar_limit(
        window: float, bucket: int) -> None:
    step = display_step(window, bucket)
    assert step % bucket == 0
    assert window / step <= MAX_BARS


def test_a_one_minute_window_in_fine_buckets_draws_several_bars() -> None:
    buckets = [Bucket("/x", float(start), {"compared": 1, "label:identical": 1})
               for start in range(0, 60, 10)]
    report = route_report("/x", buckets, since=0.0, until=60.0, bucket_seconds=10)
    assert report.timeline_seconds == 10 and len(report.timeline) == 6


def test_the_timeline_is_rebinned_to_its_step() -> None:
    buckets = [Bucket("/x", float(start), {"compared": 2, "label:major": 1,
                                           "label:identical": 1})
               for start in range(0, 7200, 10)]
    points = timeline(buckets, 120)
    assert len(points) == 60
    assert all(p.compared == 24 and p.labels["major"] == 12 for p in points)
    assert [p.start for p in points[:2]] == [0.0, 120.0]
