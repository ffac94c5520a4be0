"""Reports: the promised columns per model and task type, and the documented anomaly
detection (robust z-score, binomial tail) on each model's own history."""

from __future__ import annotations

import orjson

from proxy.orchestrator.learned import Evidence, ModelRecord, Sample
from proxy.orchestrator.performance import (
    binomial_tail,
    build_report,
    detect_anomalies,
    percentile,
    render_text,
)


def samples(latencies: list[float], outcome: str = "valid", cost: float = 0.001) -> list[Sample]:
    """Newest first, as the store keeps them."""
    return [Sample(1000.0 - i, outcome, latency, cost)  # type: ignore[arg-type]
            for i, latency in enumerate(latencies)]


STEADY = [0.5 + 0.01 * (i % 5) for i in range(60)]


def test_steady_history_has_no_anomaly() -> None:
    assert detect_anomalies("m", "simple_query", samples(STEADY)) == []


def test_latency_jump_is_flagged() -> None:
    window = samples([3.0] * 10 + STEADY)
    found = detect_anomalies("m", "simple_query", window)
    assert [a.metric for a in found] == ["latency"]
    assert found[0].recent == 3.0 and found[0].score > 3.5
    assert "latency median 3s" in found[0].message


def test_a_few_slow_calls_are_not_an_anomaly() -> None:
    window = samples([3.0, 3.0, 0.5, 0.52, 0.51, 0.5, 0.53, 0.5, 0.52, 0.51, *STEADY])
    assert detect_anomalies("m", "simple_query", window) == []


def test_cost_jump_is_flagged() -> None:
    window = [Sample(0, "valid", 0.5, 0.05) for _ in range(10)] + samples(STEADY)
    assert [a.metric for a in detect_anomalies("m", "t", window)] == ["cost"]


def test_error_burst_is_flagged_against_a_clean_history() -> None:
    burst = [Sample(0, "error", None, 0.0) for _ in range(6)] + samples([0.5] * 4)
    found = detect_anomalies("m", "t", burst + samples(STEADY))
    assert [a.metric for a in found] == ["error_rate"]
    flaky_history = [Sample(0, "error" if i % 2 else "valid", 0.5, 0.001) for i in range(60)]
    assert detect_anomalies("m", "t", burst + flaky_history) == []


def test_too_little_history_is_never_flagged() -> None:
    assert detect_anomalies("m", "t", samples([9.0] * 10 + [0.5] * 10)) == []


def test_binomial_tail_and_percentiles() -> None:
    assert abs(binomial_tail(10, 0, 0.3) - 1.0) < 1e-12
    assert abs(binomial_tail(10, 10, 0.5) - 0.5 ** 10) < 1e-15
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0
    assert percentile([], 50) is None


def test_report_has_every_promised_figure() -> None:
    records = {
        ("simple_query", "qwen-max"): ModelRecord(
            calls=10, answered=9, invalid=1, errors=1, feedback_correct=3,
            feedback_incorrect=1, latency_sum=9.0, latency_count=9, cost_sum=0.02),
        ("data_validation", "qwen-max"): ModelRecord(calls=2, answered=2, cost_sum=0.01),
        ("simple_query", "deepseek-chat"): ModelRecord(calls=4, timeouts=4),
    }
    window = {("simple_query", "qwen-max"): samples([0.4, 0.5, 0.6, 2.0])}
    report = build_report(records, window, Evidence(), generated_at="now", store="memory")
    row = next(r for r in report.rows if r.model == "qwen-max" and r.task_type == "simple_query")
    assert (row.calls, row.success_rate, row.feedback_accuracy) == (10, 0.8, 0.75)
    assert (row.latency_p50, row.latency_p95, row.cost_usd) == (0.5, 2.0, 0.02)
    text = render_text(report)
    for needle in ("qwen-max", "deepseek-chat", "simple_query", "data_validation", "80.0%",
                   "3/4 75.0%", "0.50s", "2.00s", "0.020000", "Anomalies:", "(none)"):
        assert needle in text
    document = orjson.loads(orjson.dumps(report.to_dict()))
    qwen = document["models"]["qwen-max"]
    assert qwen["task_types"]["simple_query"]["latency_p95"] == 2.0
    assert qwen["totals"]["calls"] == 12 and qwen["totals"]["cost_usd"] == 0.03
    assert document["models"]["deepseek-chat"]["task_types"]["simple_query"]["timeouts"] == 4
    assert "anomaly_method" in document
